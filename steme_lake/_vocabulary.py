"""One vocabulary for every surface: Python, the CLI, HTTP and MCP.

A parameter has one name and one meaning everywhere (``since``/``until`` for a
window, ``agent`` for who, ``kind`` for a supersession's kind, ``as_of`` for
time travel). `WORDS` gives each name its meaning and an example, which the
OpenAPI document and the MCP tools' schemas take where a parameter has none of
its own; `SYNONYMS` are the names other tools use for ours, refused with ours
named (``from`` -> ``since``). ``tests/api/test_vocabulary.py`` walks every
surface and fails on a synonym or on one name meaning two things.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, NamedTuple

__all__ = ["SYNONYMS", "WORDS", "Word", "close_match", "unknown_parameter"]

TIME = "ISO-8601 (a naive time means UTC) or relative, e.g. '-6h', '-30m', '-2d'"


class Word(NamedTuple):
    meaning: str
    example: Any


_HEX = "e5bdd30730e08126d78b3a45c295561a4f8251a117837204cdfe64d6dd518706"
_SOURCE = "f31cefd5b7a42a22050e0b5f72eeb12aa6b10a319035acc5c14cb397040de1af"

WORDS: dict[str, Word] = {
    "subject": Word("the entity, a canonical path such as auth/jwt", "auth/jwt"),
    "predicate": Word("the relation, such as signing_algorithm", "signing_algorithm"),
    "object": Word("the value claimed: any JSON value", "RS256"),
    "context": Word(
        "the subject about to be acted on (its constraints and its parents')", "auth/jwt"
    ),
    "agent": Word("the agent's name", "deploy-agent"),
    "target_agent": Word(
        "supersede every assertion of this agent (in the window)", "research-agent"
    ),
    "since": Word("from this time: " + TIME, "-6h"),
    "until": Word("up to this time (default: now): " + TIME, "2026-01-15T21:00:00Z"),
    "depth": Word("how many levels downstream to follow (1: what it touched directly)", 3),
    "as_of": Word("time travel, as of this time (default: now): " + TIME, "2026-01-15T21:00:00Z"),
    "lens": Word(
        "how the candidates become one answer: recency, consensus, authority, "
        "skeptic or constraints",
        "authority",
    ),
    "lifecycle": Word(
        "a lifecycle stage: proposed, under_review, approved or deprecated; "
        "filter with 'approved' before acting",
        "approved",
    ),
    "stage": Word("the lifecycle stage to move to", "approved"),
    "min_confidence": Word("leave out candidates below this effective confidence, 0..1", 0.5),
    "include_superseded": Word("also weigh superseded assertions", False),
    "max_candidates": Word("how many weighed candidates to return, best first", 10),
    "confidence": Word("how sure the agent is, 0..1", 0.9),
    "source": Word(
        "the evidence, a URL or its text: the server stores its BLAKE3 hash",
        "https://wiki.example.com/auth-decision",
    ),
    "source_hash": Word(
        "BLAKE3 of the evidence, 64 hex (or send source and let the server hash it)",
        "f31cefd5b7a42a22050e0b5f72eeb12aa6b10a319035acc5c14cb397040de1af",
    ),
    "parent_hash": Word("the assertion this one refines or derives from (64 hex)", _HEX),
    "epoch": Word("a named era of the system (e.g. a schema version)", "v2"),
    "visual_hash": Word("a perceptual hash of image evidence, hex", "ffd8c0e0f0f8fcfe"),
    "meta": Word(
        "extra JSON, e.g. {reason, context, forbidden_alternative}",
        {"reason": "RFC 7518 recommends it"},
    ),
    "hash": Word("a record id: 64 lowercase hex, as a write returns it", _HEX),
    "weight": Word("the vote's weight: > 0 for, < 0 against", 1.0),
    "reason": Word("why, in a sentence (kept with the record)", "ES256 broke auth-service"),
    "kind": Word(
        "invalidate (it was wrong), refine or replace (a better one exists), "
        "paradigm_shift (the ground moved)",
        "invalidate",
    ),
    "replacement": Word("the assertion to use now (64 hex)", _HEX),
    "forbidden": Word("a value that must not be used", "ES256"),
    "must_use": Word("the value to use", "RS256"),
    "cites": Word("the assertion the constraint comes from (64 hex)", _HEX),
    "proposed": Word("the value about to be used (checked against the constraints)", "ES256"),
    "query_id": Word("a question's audit id (64 hex), from an answer or a trace", _HEX),
    "record_id": Word("any record's id (64 hex)", _HEX),
    "topic": Word("a trust topic: a subject prefix such as auth ('' for global)", "auth"),
    "top": Word("only the first N agents of each topic", 10),
    "kinds": Word(
        "Dojo sample kinds, comma-separated (default: all)", "proposal_as_decision,approved_answer"
    ),
    "limit": Word("at most this many", 20),
    "text": Word("what to search for, in words", "which algorithm signs our tokens?"),
    "k": Word("how many results, best first (1 to 1000)", 10),
    "check_contradictions": Word(
        "also return the existing assertions this claim would "
        "contest (near-identical text, another value)",
        True,
    ),
    "hybrid": Word("fuse full-text and vector ranks (true), or vectors only (false)", True),
    "path": Word("a folder, relative to the server's export folder", "exports/jwt"),
    "test_after": Word(
        "incidents from this time on go to the test split: " + TIME, "2026-01-15T00:00:00Z"
    ),
    "overwrite": Word("replace a non-empty folder", False),
    "openai": Word("also write OpenAI fine-tuning JSONL", False),
    "signatures": Word(
        "signatures of the record by the writing agent's key; the signing "
        "hook adds them (docs/api.md, 'Signing a write')",
        [],
    ),
}

# Names other tools (or older versions) use for ours.
SYNONYMS: dict[str, str] = {
    "agent_id": "agent",
    "from": "since",
    "to": "until",
    "start": "since",
    "end": "until",
    "window_from": "since",
    "window_to": "until",
    "type": "kind",
    "asof": "as_of",
    "at_time": "as_of",
    "min_conf": "min_confidence",
}


def close_match(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` most likely means: ours for a synonym, else the closest."""
    known = list(known)
    if SYNONYMS.get(name) in known:
        return SYNONYMS[name]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_parameter(name: str, known: Iterable[str]) -> str:
    """The refusal of an unknown parameter, naming the close match if there is one.

    Examples
    --------
    >>> unknown_parameter("lifecyle", ["lifecycle", "lens"])
    "unknown parameter 'lifecyle'; did you mean 'lifecycle'? (known: lens, lifecycle)"
    >>> unknown_parameter("agent_id", ["agent", "since"])
    "unknown parameter 'agent_id'; did you mean 'agent'? (known: agent, since)"
    """
    known = sorted(known)
    close = close_match(name, known)
    hint = f"; did you mean {close!r}?" if close else ";"
    return f"unknown parameter {name!r}{hint} (known: {', '.join(known)})"
