"""Lazy imports of optional parts, with an error that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from steme_lake._exceptions import MissingExtraError


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise `MissingExtraError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the optional package {module!r}; "
            f"install it with: pip install 'steme_lake[{extra}]'"
        ) from exc
