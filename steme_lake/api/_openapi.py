"""The OpenAPI document as clients use it unchanged (ADK's OpenAPIToolset,
openapi-python-client, Swagger UI).

FastAPI derives the document from the routes and models; here it is finished:
``servers`` is the address the caller fetched it from, security is declared
only where this server requires it (no read tokens: no security on reads, so a
tool set does not ask for a bearer token that nothing checks), every error has
one model (`ErrorOut`), and every parameter and request field without a
description or an example takes them from the one vocabulary
(`steme_lake._vocabulary.WORDS`).
"""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

from fastapi import FastAPI

from steme_lake._vocabulary import WORDS
from steme_lake.api._ops import ServerOptions
from steme_lake.api._out import ErrorOut

__all__ = ["ERRORS", "document"]

_STATUS = {
    400: "bad input: the error says what to change",
    401: "no valid signature or read token",
    403: "the key or token belongs to another agent",
    404: "an id that names no record",
    409: "a write out of order (e.g. a time before the lake's last)",
    413: "the request body is too large",
    422: "the request does not match the schema (per field in detail)",
    503: "the lake cannot take requests now (closed, or its log failed)",
}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text} for status, text in _STATUS.items()
}

_SIGNED_READ = {
    "type": "apiKey",
    "in": "header",
    "name": "X-Steme-Signature",
    "description": "a read signed by a registered agent's key (docs/api.md, 'Signed reads')",
}
_lock = threading.Lock()


def document(app: FastAPI, options: ServerOptions, base_url: str) -> dict[str, Any]:
    """The finished document, ``servers`` set to ``base_url``."""
    with _lock:
        cached: dict[str, Any] | None = getattr(app.state, "steme_openapi", None)
        if cached is None:
            cached = _finish(copy.deepcopy(app.openapi()), options)
            app.state.steme_openapi = cached
    return {**cached, "servers": [{"url": base_url.rstrip("/"), "description": "this server"}]}


def _finish(doc: dict[str, Any], options: ServerOptions) -> dict[str, Any]:
    schemes = doc.get("components", {}).get("securitySchemes", {})
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            if "security" in operation:
                if options.read_tokens and operation.get("operationId") != "health":
                    operation["security"] = [{name: []} for name in (*schemes, "SignedRead")]
                else:
                    del operation["security"]
            for parameter in operation.get("parameters", ()):
                _describe(parameter["name"], parameter, parameter.setdefault("schema", {}))
    if options.read_tokens:
        schemes["SignedRead"] = _SIGNED_READ
    else:
        doc.get("components", {}).pop("securitySchemes", None)
    schemas = doc.get("components", {}).get("schemas", {})
    text = json.dumps(doc)
    for name in [n for n in schemas if f'"#/components/schemas/{n}"' not in text]:
        del schemas[name]  # e.g. SignatureIn: a field the document does not show
    for name, schema in schemas.items():
        if name.endswith("In"):  # the request bodies
            for field, prop in schema.get("properties", {}).items():
                _describe(field, prop, prop)
    return doc


def _describe(name: str, holder: dict[str, Any], schema: dict[str, Any]) -> None:
    """Fill a missing description and example from the vocabulary."""
    word = WORDS.get(name)
    if word is None:
        return
    if not holder.get("description") and not schema.get("description"):
        holder["description"] = word.meaning
    if holder is schema:
        schema.setdefault("examples", [word.example])
    else:
        holder.setdefault("example", word.example)
