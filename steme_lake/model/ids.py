"""Record ids: BLAKE3 over a canonical, documented encoding of the content.

``id = BLAKE3( "steme_lake/<table>/v1" LF canonical_json(content) LF recorded_at_us )``
as 64 lowercase hex characters, where ``content`` is the object of the kind's
content fields (``model.schema``) with JSON columns as their JSON values and
time columns as integer UTC microseconds. The content part does not depend on
the commit time, so it is encoded before the commit lock is taken; the time is
appended under it. Same content and time, same id, on every machine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import blake3

from steme_lake._utils.canonical import canonical_json_trusted, check_unicode
from steme_lake._utils.timeparse import datetime_to_us
from steme_lake.model.schema import RecordKind, spec

__all__ = [
    "ID_PATTERN",
    "content_id",
    "content_json",
    "is_record_id",
    "record_id",
    "source_hash_of",
]

ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")


def is_record_id(value: object) -> bool:
    """True when ``value`` is 64 lowercase hex characters."""
    return isinstance(value, str) and ID_PATTERN.match(value) is not None


def _prefix(kind: RecordKind) -> bytes:
    return f"steme_lake/{kind.table}/v1\n".encode()


_PREFIXES = {kind: _prefix(kind) for kind in RecordKind}


# The canonical encoder's own string encoder (C; no escaping of non-ASCII): called
# directly for the common column types, a fifth of the encoder's cost per value.
_string = json.encoder.encode_basestring

# Per kind: (name, '"name":', how to encode), in sorted key order, computed once.
_JSON, _TIME, _PLAIN = 0, 1, 2
_LAYOUT = {
    kind: tuple(
        (
            name,
            json.dumps(name) + ":",
            _JSON
            if name in spec(kind).json_columns
            else _TIME
            if name in spec(kind).time_columns
            else _PLAIN,
        )
        for name in sorted(spec(kind).content_names)
    )
    for kind in RecordKind
}


def content_json(kind: RecordKind, row: Mapping[str, Any]) -> str:
    """The canonical JSON of a record's content, from its stored form.

    ``row`` holds the stored column values: JSON columns as canonical JSON
    text, time columns as ``int`` microseconds or ``datetime``, the rest as-is.
    """
    parts = []
    for name, key, how in _LAYOUT[kind]:
        value = row.get(name)
        if value is None:
            encoded = "null"
        elif how == _JSON:
            encoded = value  # already canonical text
        elif how == _TIME and isinstance(value, datetime):
            encoded = str(datetime_to_us(value))
        elif type(value) is str:
            encoded = _string(value)  # what the encoder writes for a string, without it
        elif type(value) is float:
            encoded = repr(value)  # what the JSON encoder writes for a finite float
        elif type(value) is int:
            encoded = int.__repr__(value)
        elif type(value) is bool:
            encoded = "true" if value else "false"
        elif type(value) is list and all(type(v) is str for v in value):
            encoded = "[" + ",".join(map(_string, value)) + "]"  # e.g. an audit's citations
        else:
            encoded = canonical_json_trusted(value)
        parts.append(key + encoded)
    return "{" + ",".join(parts) + "}"


def record_id(kind: RecordKind, content: str, recorded_at_us: int) -> str:
    """The id of a record from its canonical content JSON and commit time."""
    hasher = blake3.blake3(_PREFIXES[kind])
    hasher.update(content.encode("utf-8"))
    hasher.update(b"\n%d" % recorded_at_us)
    return str(hasher.hexdigest())


def content_id(kind: RecordKind, content: str) -> str:
    """The hash of a record's content alone, without its commit time.

    A client signs this (with its signing time, see `steme_lake.model.signing`)
    before the lake has assigned the record's time, and so its id.
    """
    hasher = blake3.blake3(_PREFIXES[kind])
    hasher.update(content.encode("utf-8"))
    return str(hasher.hexdigest())


def source_hash_of(source: str | bytes) -> str:
    """BLAKE3 of evidence: the bytes as given, or the UTF-8 of a URL or text.

    Examples
    --------
    >>> len(source_hash_of("https://wiki/auth-decision"))
    64
    """
    if isinstance(source, str):
        check_unicode("source", source)
        data = source.encode("utf-8")
    else:
        data = bytes(source)
    return str(blake3.blake3(data).hexdigest())
