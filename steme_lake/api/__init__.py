"""Agents' interfaces: the HTTP API (FastAPI) and the MCP server, over one lake.

Install with ``pip install 'steme_lake[api]'``; see ``docs/api.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from steme_lake._utils.extras import require

if TYPE_CHECKING:
    from steme_lake.api._ops import Operations, ServerOptions

__all__ = ["Operations", "ServerOptions", "create_app", "create_mcp_server"]


def __getattr__(name: str) -> Any:
    # The server libraries are an extra: import them only when asked for.
    if name in ("Operations", "ServerOptions"):
        require("pydantic", extra="api", purpose="the HTTP API and MCP server")
        from steme_lake.api import _ops

        return getattr(_ops, name)
    if name == "create_app":
        require("fastapi", extra="api", purpose="the HTTP API")
        from steme_lake.api._http import create_app

        return create_app
    if name == "create_mcp_server":
        require("mcp", extra="api", purpose="the MCP server")
        from steme_lake.api._mcp import create_mcp_server

        return create_mcp_server
    raise AttributeError(name)
