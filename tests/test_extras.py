"""A missing optional part names the extra to install."""

from __future__ import annotations

import pytest

from steme_lake import MissingExtraError
from steme_lake._utils.extras import require


class TestExtras:
    """require() imports, or says which extra to install."""

    def test_present(self) -> None:
        assert require("json", extra="none", purpose="json").dumps([]) == "[]"

    def test_missing(self) -> None:
        with pytest.raises(MissingExtraError, match=r"pip install 'steme_lake\[server\]'"):
            require("no_such_module_xyz", extra="server", purpose="the HTTP API")
        with pytest.raises(ImportError):  # still an ImportError for callers that expect one
            require("no_such_module_xyz", extra="server", purpose="the HTTP API")
