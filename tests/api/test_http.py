"""The HTTP API in-process: the ADK tool shapes, identity, and bad input as 4xx."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient

import steme_lake as sl
from steme_lake.api import ServerOptions, create_app
from steme_lake.api._ops import Asker
from steme_lake.client import Client
from steme_lake.lake import _rows as rows
from tests.api.conftest import Agents, counts

SRC = "ab" * 32


def _assert_body(agent: str = "research-agent", value: Any = "ES256") -> dict[str, Any]:
    return {
        "subject": "auth/jwt",
        "predicate": "signing_algorithm",
        "object": value,
        "source_hash": SRC,
        "confidence": 0.87,
        "agent": agent,
    }


def _sign(body: dict[str, Any], key: sl.AgentKey, *, at: int | None = None) -> dict[str, Any]:
    from steme_lake._utils.timeparse import now_us

    row = rows.assertion_row(
        body["subject"],
        body["predicate"],
        body["object"],
        agent=body["agent"],
        confidence=body["confidence"],
        source_hash=body["source_hash"],
    )
    sig = key.sign_content(row.content_id(), now_us() if at is None else at)
    return {**body, "signatures": [sig.as_dict()]}


class TestToolShapes:
    """The operations agents call, signed by the client, answered in the ADK shapes."""

    def test_the_incident_through_http(
        self, research: Client, http: TestClient, agents: Agents, tmp_lake: sl.Lake
    ) -> None:
        es = research.assert_(
            "auth/jwt",
            "signing_algorithm",
            "ES256",
            confidence=0.87,
            source="https://rfc-editor.org/rfc/rfc7518",
        )
        assert tmp_lake.get(es).agent == "research-agent"  # type: ignore[attr-defined]
        deploy = Client("http://test", "deploy-agent", key=agents.deploy, http=http)
        rs = deploy.assert_(
            "auth/jwt",
            "signing_algorithm",
            "RS256",
            confidence=0.92,
            lifecycle="approved",
            source="adr-17",
        )
        answer = deploy.query("auth/jwt", "signing_algorithm")
        assert answer["value"] == "RS256" and len(answer["query_id"]) == 64
        assert set(answer) >= {"value", "confidence", "lifecycle", "sources", "query_id"}
        deploy.vote(rs, weight=1.0)
        research.set_lifecycle(es, "under_review", reason="needs review")
        fix = deploy.supersede(es, kind="invalidate", reason="ES256 broke auth")
        deploy.add_constraint("auth/jwt", reason="incident", forbidden="ES256", must_use="RS256")
        check = research.check_constraints("auth/jwt", proposed="ES256")
        assert check["ok"] is False
        assert check["constraints"][0]["subject"] == "auth/jwt"
        assert check["constraints"][0]["must_use"] == "RS256"
        trace = deploy.trace("deploy-agent", "-1h")
        assert [q["query_id"] for q in trace["queries"]] == [answer["query_id"]]
        assert trace["queries"][0]["contributing_assertions"]
        assert deploy.provenance(answer["query_id"])["chain"]
        assert deploy.impact(es)["hash"] == es
        impact = deploy.impact(rs, depth=1)  # the answer the deploy agent got
        assert impact["depth"] == 1
        ((asked),) = impact["queries"]
        assert (asked["query_id"], asked["via"], asked["depth"]) == (answer["query_id"], [rs], 1)
        assert deploy.blame("auth/jwt", "signing_algorithm")["answer"]["value"] == "RS256"
        diff = deploy.diff("-1h", subject="auth/*")
        assert any(r["id"] == fix for r in diff["records"])
        assert deploy.get(fix)["kind"] == "supersession"
        audit = tmp_lake.audit.collect()
        assert set(audit["agent"]) == {"deploy-agent", "research-agent"}

    def test_get_query_with_parameters(
        self, research: Client, http: TestClient, tmp_lake: sl.Lake
    ) -> None:
        research.assert_("auth/jwt", "alg", "RS256", source="adr", lifecycle="approved")
        r = http.get(
            "/query",
            params={
                "subject": "auth/jwt",
                "predicate": "alg",
                "lifecycle": "approved",
                "agent": "curl",
            },
        )
        assert r.status_code == 200 and r.json()["value"] == "RS256"
        # No token and no signature: audited as anonymous, never as the name claimed.
        assert r.json()["agent"] == "anonymous"
        (row,) = tmp_lake.audit.collect().iter_rows(named=True)
        assert row["agent"] == "anonymous"
        assert json.loads(row["params"])["claimed_agent"] == "curl"

    def test_openapi_describes_every_endpoint(self, http: TestClient) -> None:
        doc = http.get("/openapi.json").json()
        expected = {
            ("post", "/assert", "assert"),
            ("post", "/vote", "vote"),
            ("post", "/query", "query"),
            ("post", "/constraints/check", "check_constraints"),
            ("get", "/trace", "trace"),
            ("post", "/supersede", "supersede"),
            ("get", "/diff", "diff"),
            ("get", "/blame", "blame"),
            ("get", "/impact", "impact"),
            ("get", "/provenance/{query_id}", "provenance"),
            ("get", "/health", "health"),
            ("post", "/lifecycle", "set_lifecycle"),
            ("post", "/constraints", "add_constraint"),
            ("get", "/records/{record_id}", "get_record"),
        }
        found = {
            (m, p, op["operationId"]) for p, ops in doc["paths"].items() for m, op in ops.items()
        }
        assert expected <= found
        # one query operation: GET /query still answers, but is not a second tool
        assert ("get", "/query") not in {(m, p) for m, p, _ in found}
        assert http.get("/query", params={"subject": "a", "predicate": "b"}).status_code == 200
        props = doc["components"]["schemas"]["AssertIn"]["properties"]
        assert {
            "subject", "predicate", "object", "source", "source_hash", "confidence",
            "lifecycle", "parent_hash", "meta", "agent",
        } <= set(props)  # fmt: skip
        assert "signatures" not in props  # the signing hook adds them; no model can

    def test_health(self, http: TestClient) -> None:
        body = http.get("/health").json()
        assert body["status"] == "ok" and body["require_signatures"] is True


class TestIdentity:
    """Only an agent's own registered key writes as it; nothing refused reaches the lake."""

    def _refused(
        self, http: TestClient, lake: sl.Lake, body: dict[str, Any], status: int, message: str
    ) -> None:
        before = counts(lake)
        r = http.post("/assert", json=body)
        assert r.status_code == status, r.text
        assert message in r.json()["error"]
        assert counts(lake) == before

    def test_unsigned(self, http: TestClient, agents: Agents, tmp_lake: sl.Lake) -> None:
        self._refused(http, tmp_lake, _assert_body(), 401, "needs a signature")

    def test_forged(self, http: TestClient, agents: Agents, tmp_lake: sl.Lake) -> None:
        body = _sign(_assert_body(), agents.research)
        body["object"] = "none"  # signed ES256, sends another value
        self._refused(http, tmp_lake, body, 401, "does not verify")
        body = _sign(_assert_body(), agents.research)
        sig = body["signatures"][0]
        sig["signature"] = ("0" if sig["signature"][0] != "0" else "1") + sig["signature"][1:]
        self._refused(http, tmp_lake, body, 401, "does not verify")

    def test_replayed(self, http: TestClient, agents: Agents, tmp_lake: sl.Lake) -> None:
        body = _sign(_assert_body(), agents.research)
        assert http.post("/assert", json=body).status_code == 201
        self._refused(http, tmp_lake, body, 401, "replay")

    def test_stale(self, http: TestClient, agents: Agents, tmp_lake: sl.Lake) -> None:
        from steme_lake._utils.timeparse import now_us

        body = _sign(_assert_body(), agents.research, at=now_us() - 3600 * 10**6)
        self._refused(http, tmp_lake, body, 401, "outside the accepted window")

    def test_cross_agent(self, http: TestClient, agents: Agents, tmp_lake: sl.Lake) -> None:
        """deploy-agent's valid signature on a record claiming research-agent."""
        body = _sign(_assert_body("research-agent"), agents.deploy)
        self._refused(http, tmp_lake, body, 403, "can only write as itself")

    def test_cross_agent_vote(
        self, research: Client, http: TestClient, agents: Agents, tmp_lake: sl.Lake
    ) -> None:
        es = research.assert_("a", "b", "c", source="s")
        mallory = Client("http://test", "research-agent", key=agents.deploy, http=http)
        with pytest.raises(sl.AuthError) as refused:
            mallory.vote(es)
        assert refused.value.status == 403
        assert tmp_lake.votes.collect().height == 0

    def test_unregistered_and_revoked_keys(
        self, http: TestClient, agents: Agents, tmp_lake: sl.Lake
    ) -> None:
        from steme_lake.keys import AgentRegistry

        body = _sign(_assert_body(), agents.stranger)
        self._refused(http, tmp_lake, body, 403, "not registered to any agent")
        AgentRegistry(tmp_lake.path).revoke("research-agent", agents.research.public_key)
        self._refused(http, tmp_lake, _sign(_assert_body(), agents.research), 403, "not registered")

    def test_read_tokens(self, tmp_lake: sl.Lake, agents: Agents) -> None:
        app = create_app(tmp_lake, ServerOptions(read_tokens=True))
        q = {"subject": "a", "predicate": "b"}
        with TestClient(app) as http:
            assert http.post("/query", json=q).status_code == 401
            bad = {"Authorization": "Bearer nope"}
            assert http.post("/query", json=q, headers=bad).status_code == 401
            good = {"Authorization": f"Bearer {agents.deploy_token}"}
            claimed = http.post("/query", json={**q, "agent": "research-agent"}, headers=good)
            assert claimed.status_code == 403
            r = http.post("/query", json=q, headers=good)
            assert r.status_code == 200 and r.json()["agent"] == "deploy-agent"
            assert http.get("/trace", params={"agent": "x", "since": "-1h"}).status_code == 401
        assert tmp_lake.audit.collect()["agent"].to_list() == ["deploy-agent"]


class TestBadInput:
    """Every kind of bad input is a 4xx with a JSON body saying what is wrong."""

    @pytest.fixture
    def open_http(self, tmp_lake: sl.Lake) -> Any:
        app = create_app(tmp_lake, ServerOptions(require_signatures=False, max_body_bytes=4096))
        with TestClient(app) as client:
            yield client

    @pytest.mark.parametrize(
        ("path", "raw", "status", "message"),
        [
            ("/query", b"{bad", 422, "not valid JSON"),
            ("/query", b'{"subject": 1, "predicate": "b"}', 422, "subject"),
            ("/query", b'{"subject": "a", "predicate": "b", "min_confidence": NaN}', 422, "finite"),
            (
                "/query",
                b'{"subject": "a", "predicate": "b", "min_confidence": Infinity}',
                422,
                "finite",
            ),
            (
                "/query",
                b'{"subject": "a", "predicate": "b", "lifecyle": "approved"}',
                422,
                "lifecyle",
            ),
            ("/query", b'{"subject": "a", "predicate": "b", "lens": "vibes"}', 422, "lens"),
            (
                "/query",
                b'{"subject": "a", "predicate": "b", "as_of": "yesterday-ish"}',
                400,
                "yesterday-ish",
            ),
            (
                "/assert",
                json.dumps({**_assert_body(), "confidence": "0.9"}).encode(),
                422,
                "confidence",
            ),
            (
                "/assert",
                json.dumps({**_assert_body(), "confidence": 1.5}).encode(),
                422,
                "confidence",
            ),
            (
                "/assert",
                json.dumps(_assert_body()).replace('"ES256"', "[NaN]").encode(),
                400,
                "nan",
            ),
            (
                "/assert",
                json.dumps({**_assert_body(), "object": None})
                .replace("null", "[" * 100 + "]" * 100)
                .encode(),
                400,
                "nested deeper",
            ),
            ("/query", b"[" * 1800 + b"]" * 1800, 400, "error parsing the body"),
            (
                "/vote",
                json.dumps({"hash": "12" * 32, "agent": "a"}).encode(),
                404,
                "not in this lake",
            ),
            (
                "/assert",
                json.dumps({**_assert_body(), "object": "x" * 5000}).encode(),
                413,
                "too large",
            ),
        ],
    )
    def test_refused(
        self, open_http: TestClient, path: str, raw: bytes, status: int, message: str
    ) -> None:
        r = open_http.post(path, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == status, r.text
        body = r.json()
        assert body["success"] is False and body["status"] == status
        assert message.lower() in body["error"].lower(), body

    @pytest.mark.parametrize(
        ("path", "status"),
        [
            (f"/provenance/{'12' * 32}", 404),
            ("/provenance/not-an-id", 422),
            (f"/impact?hash={'12' * 32}", 404),
            (f"/impact?hash={'12' * 32}&depth=0", 422),
            (f"/impact?hash={'12' * 32}&depth=11", 422),
            (f"/records/{'12' * 32}", 404),
            ("/trace?agent=a&since=-1h&until=-2h", 400),
            ("/nowhere", 404),
        ],
    )
    def test_refused_reads(self, open_http: TestClient, path: str, status: int) -> None:
        r = open_http.get(path)
        assert r.status_code == status, r.text
        assert r.json()["success"] is False

    def test_trace_says_since_and_until_like_everything_else(self, open_http: TestClient) -> None:
        """``/trace`` took ``from``/``to`` while every other surface says ``since``/``until``."""
        ok = open_http.get("/trace", params={"agent": "a", "since": "-1h", "until": "-1m"})
        assert ok.status_code == 200, ok.text
        old = open_http.get("/trace", params={"agent": "a", "from": "-1h"})
        assert old.status_code in (400, 422), old.text
        assert "did you mean 'since'" in old.text


class TestHotPaths:
    """`POST /assert` and `POST /query` are served ahead of FastAPI (`api/_fast.py`);
    a client must not be able to tell: same statuses, same JSON bodies."""

    CASES: ClassVar[list[tuple[str, bytes, str | None]]] = [
        ("/query", b'{"subject": "auth/jwt", "predicate": "signing_algorithm"}', None),
        ("/query", b"{bad", "application/json"),
        ("/query", b"", "application/json"),
        ("/query", b'{"subject": "a", "predicate": "b"}', "text/plain"),
        ("/query", b'{"subject": "a", "predicate": "b"}', "application/vnd.api+json"),
        ("/query", b"[1, 2]", "application/json"),
        ("/query", b'{"subject": 1, "predicate": "b", "lens": "vibes"}', "application/json"),
        ("/query", b'{"subject": "a", "predicate": "b", "min_confidence": NaN}', None),
        ("/query", b'{"subject": "a", "predicate": "b", "as_of": "soon-ish"}', None),
        ("/query", b"[" * 1800 + b"]" * 1800, "application/json"),
        ("/assert", json.dumps({**_assert_body(), "confidence": "0.9"}).encode(), None),
        ("/assert", json.dumps({**_assert_body(), "extra": 1}).encode(), None),
        ("/assert", json.dumps(_assert_body()).replace('"ES256"', "[NaN]").encode(), None),
        ("/assert", json.dumps({**_assert_body(), "object": "x" * 5000}).encode(), None),
        ("/assert", json.dumps(_assert_body()).encode(), None),
    ]

    GETS: ClassVar[list[str]] = [
        "subject=auth/jwt&predicate=signing_algorithm",
        "subject=auth/jwt&predicate=signing_algorithm&lens=consensus&lifecycle=approved"
        "&min_confidence=0.5&include_superseded=true&max_candidates=3&agent=me",
        "subject=auth/jwt&predicate=signing_algorithm&include_superseded=yes&agent=a&agent=b",
        "subject=auth/jwt",
        "",
        "subject=&predicate=p",
        "subject=a&predicate=b&lens=vibes&lifecycle=maybe",
        "subject=a&predicate=b&min_confidence=nan",
        "subject=a&predicate=b&min_confidence=2&max_candidates=-1",
        "subject=a&predicate=b&min_confidence=&include_superseded=perhaps",
        "subject=a&predicate=b&max_candidates=1.5",
        "subject=a&predicate=b&as_of=soon-ish",
        "subject=a&predicate=b&as_of=" + "9" * 65,
        "subject=a&predicate=b&unknown=1",
        "subject=a%26b&predicate=%E2%9C%93",
        "subject=a&predicate=b&agent=" + "x" * 300,
    ]

    @staticmethod
    def _both_paths(
        tmp_path: Any, options: ServerOptions, send: Callable[[TestClient], Any]
    ) -> None:
        """``send`` down the hot path and the framework's: the same answer."""
        answers = []
        for hot in (True, False):
            lake = sl.open(tmp_path / f"lake-{hot}")
            app = create_app(lake, options)
            if not hot:
                app.hot = None  # type: ignore[attr-defined]
            with TestClient(app) as client:
                r = send(client)
            lake.close()
            body = r.json()
            if "query_id" in body:  # differs by time: compare the shape
                body = sorted(body)
            answers.append((r.status_code, body, r.headers.get("cache-control")))
        assert answers[0] == answers[1]
        assert answers[0][2] == "no-store"

    @pytest.mark.parametrize("query", GETS)
    def test_get_query_same_answers_as_the_framework(self, tmp_path: Any, query: str) -> None:
        self._both_paths(tmp_path, ServerOptions(), lambda c: c.get("/query?" + query))

    @pytest.mark.parametrize(("path", "raw", "content_type"), CASES)
    def test_same_answers_as_the_framework(
        self, tmp_path: Any, path: str, raw: bytes, content_type: str | None
    ) -> None:
        options = ServerOptions(require_signatures=True, max_body_bytes=4096)
        headers = {"content-type": content_type or "application/json"}
        self._both_paths(tmp_path, options, lambda c: c.post(path, content=raw, headers=headers))


class TestBatches:
    """The hot paths run the requests that arrive together as one batch: one
    commit for all, and each request still gets its own answer or refusal."""

    def test_a_mixed_batch(self, tmp_lake: sl.Lake, agents: Agents) -> None:
        from steme_lake.api._fast import ROUTES

        app = create_app(tmp_lake, ServerOptions())
        hot = app.hot  # type: ignore[attr-defined]
        json_headers = {b"content-type": b"application/json"}

        def item(path: str, body: Any) -> tuple[Any, bytes, dict[bytes, bytes]]:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            return ROUTES["POST", path], raw, json_headers

        good = [_sign(_assert_body(value=f"v{i}"), agents.research) for i in range(3)]
        forged = {**_sign(_assert_body(value="x"), agents.research), "object": "y"}
        question = {"subject": "auth/jwt", "predicate": "signing_algorithm", "agent": "q"}
        batch = [
            item("/assert", good[0]),
            item("/query", question),
            item("/assert", forged),
            item("/assert", good[1]),
            item("/assert", good[0]),  # the same signed write again: a replay
            item("/query", b"{bad"),
            item("/assert", good[2]),
            item("/query", question),
        ]
        before = counts(tmp_lake)
        replies = hot._run_batch(batch)
        statuses = [status for status, _ in replies]
        assert statuses == [201, 200, 401, 201, 401, 422, 201, 200]
        bodies = [json.loads(payload) for _, payload in replies]
        assert "does not verify" in bodies[2]["error"]
        assert "replay" in bodies[4]["error"]
        written = [bodies[i]["hash"] for i in (0, 3, 6)]
        assert len(set(written)) == 3
        assert counts(tmp_lake)["assertions"] == before["assertions"] + 3
        stored = set(tmp_lake.assertions.select("id").collect()["id"])
        assert set(written) <= stored
        # The questions were answered before the batch's writes were durable (they
        # arrived together: either order is a correct one), and both are audited.
        query_ids = [bodies[1]["query_id"], bodies[7]["query_id"]]
        assert len(set(query_ids)) == 2
        assert set(tmp_lake.trace("anonymous", "-1h")["query_id"].to_list()) == set(query_ids)
        assert bodies[1]["status"] == "no_answer"
        hot.close()

    def test_hostile_requests_inside_a_batch(self, tmp_lake: sl.Lake, agents: Agents) -> None:
        """Lone surrogates (JSON allows the escape; UTF-8 cannot store it) in a
        write's object, meta or subject, or a question's subject or agent, are
        refused with the field named; every good request of the batch is answered."""
        app = create_app(tmp_lake, ServerOptions())
        hot = app.hot  # type: ignore[attr-defined]
        good = [_sign(_assert_body(value=f"v{i}"), agents.research) for i in range(3)]
        # Only the agent's public key and any 128 hex digits: no valid signature.
        fake_sig = [
            {"public_key": agents.research.public_key, "signature": "cd" * 64, "signed_at": 1}
        ]
        question = {"subject": "auth/jwt", "predicate": "signing_algorithm", "agent": "q"}
        hostile = [
            ("/assert", {**_assert_body(value="\udc00"), "signatures": fake_sig}, "object"),
            ("/assert", {**good[0], "meta": {"reason": "\udc00"}}, "meta"),
            ("/assert", {**good[1], "subject": "auth/\udc00"}, "subject"),
            ("/query", {**question, "subject": "auth/\udc00"}, "subject"),
            ("/query", {**question, "agent": "\ud800x"}, "agent"),
        ]
        batch = []
        for i, (path, body, _) in enumerate(hostile):
            batch.append(_item("/assert", good[i]) if i < 3 else _item("/query", question))
            batch.append(_item(path, body))
        before = counts(tmp_lake)
        replies = hot._run_batch(batch)
        for (status, payload), (path, _, field) in zip(replies[1::2], hostile, strict=True):
            # 422 where the request model refuses it (plain text fields), 400 where
            # the lake does (text inside JSON values); either way the field is named.
            assert status in (400, 422), (path, field, payload)
            body = json.loads(payload)
            assert body["error"].startswith(f"{field}:"), body
            assert "surrogate" in body["error"] or "unicode" in body["error"]
        assert [status for status, _ in replies[0::2]] == [201, 201, 201, 200, 200]
        assert counts(tmp_lake)["assertions"] == before["assertions"] + 3
        hot.close()

    def test_a_bug_in_one_request_fails_it_alone(
        self, tmp_lake: sl.Lake, agents: Agents, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Fault injection (a test seam): one write's id raises an unexpected error
        under the commit lock, in a group shared with good writes and questions.
        It alone gets a 500 (InternalError); the rest commit and are answered."""
        original = rows.PendingRow.id_at

        def id_at(self: rows.PendingRow, recorded_at: int) -> str:
            if "poison" in self.content:
                raise RuntimeError("injected")
            return original(self, recorded_at)

        monkeypatch.setattr(rows.PendingRow, "id_at", id_at)
        app = create_app(tmp_lake, ServerOptions())
        hot = app.hot  # type: ignore[attr-defined]
        question = {"subject": "auth/jwt", "predicate": "signing_algorithm", "agent": "q"}
        writes = [_sign(_assert_body(value=v), agents.research) for v in ("a", "poison", "b")]
        batch = [_item("/assert", writes[0]), _item("/query", question)]
        batch += [_item("/assert", writes[1]), _item("/query", question)]
        batch += [_item("/assert", writes[2])]
        before = counts(tmp_lake)
        replies = hot._run_batch(batch)
        assert [status for status, _ in replies] == [201, 200, 500, 200, 201]
        assert json.loads(replies[2][1])["type"] == "InternalError"
        assert counts(tmp_lake)["assertions"] == before["assertions"] + 2
        assert tmp_lake.trace("anonymous", "-1h").height == 2
        hot.close()


def _item(path: str, body: Any) -> tuple[Any, bytes, dict[bytes, bytes]]:
    """A hot-path request as the batch worker receives it."""
    from steme_lake.api._fast import ROUTES

    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ROUTES["POST", path], raw, {b"content-type": b"application/json"}


class TestEncoding:
    """The hot paths encode answers with datetimes in them (orjson); the other
    transports get `jsonable` data. Both must be the same JSON."""

    def test_raw_and_jsonable_answers_agree(self, tmp_lake: sl.Lake) -> None:
        from steme_lake.api._models import QueryIn
        from steme_lake.api._ops import Operations, jsonable, to_json

        for i, value in enumerate(["RS256", {"alg": "ES256", "bits": 256}, 2**70, 0.1]):
            tmp_lake.assert_("auth/jwt", "alg", value, agent=f"a{i}", source=f"s{i}")
        ops = Operations(tmp_lake, ServerOptions(require_signatures=False))
        plan = ops.query_plan(QueryIn(subject="auth/jwt", predicate="alg"), Asker("asker"))
        raw = plan.finish(["ab" * 32])
        wire = json.loads(to_json(raw))
        assert wire == jsonable(raw)
        assert wire["as_of"].endswith("Z") and len(wire["candidates"]) == 4
        assert all(c["recorded_at"].endswith("Z") for c in wire["candidates"])
        assert {"alg": "ES256", "bits": 256} in [c["value"] for c in wire["candidates"]]
        assert wire["value"] == 0.1 and wire["query_id"] == "ab" * 32
        # Each candidate is sent with every field of `Candidate`, in its order.
        from dataclasses import fields

        from steme_lake.query._answer import Candidate

        names = [f.name for f in fields(Candidate)]
        assert all(list(c) == names for c in wire["candidates"])
        # A value beyond 64 bits (orjson refuses it) takes the standard library's path.
        big = ops.query_plan(
            QueryIn(subject="auth/jwt", predicate="alg", lens="consensus"), Asker("a")
        )
        encoded = json.loads(to_json(big.finish(["cd" * 32])))
        assert 2**70 in [c["value"] for c in encoded["candidates"]]


class TestBusyKeys:
    """A question about a busy key (more than ``HOT_ROWS`` assertions: milliseconds
    of Polars at 10M) is answered beside its batch, in the busy-key pool: the rest
    of the batch does not wait for it, and its answer and audit are the same."""

    @pytest.fixture
    def busy_lake(self, lake_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sl.Lake]:
        from steme_lake.query import _index

        monkeypatch.setattr(_index, "HOT_ROWS", 20)  # 30 assertions make a busy key
        # The index answers point questions (and finds busy keys) from the start.
        with sl.open(lake_path, options=sl.LakeOptions(state_index="eager")) as lake:
            self._fill(lake)
            yield lake

    @staticmethod
    def _fill(tmp_lake: sl.Lake) -> None:
        tmp_lake.assert_many(
            [
                {"subject": "auth/jwt", "predicate": "alg", "object": f"v{i}"}
                | {"agent": f"a{i % 3}", "source": f"s{i}"}
                for i in range(30)
            ]
        )
        tmp_lake.assert_("svc/x", "alg", "RS256", agent="a0", source="s")

    def test_the_batch_does_not_wait(self, busy_lake: sl.Lake) -> None:
        import concurrent.futures
        import threading

        from steme_lake.api._fast import ROUTES

        expected = busy_lake.query(
            "auth/jwt", "alg", agent="ops"
        )  # the lake learns the key is busy
        assert busy_lake._is_busy("auth/jwt", "alg") and not busy_lake._is_busy("svc/x", "alg")
        app = create_app(busy_lake, ServerOptions(require_signatures=False))
        hot = app.hot  # type: ignore[attr-defined]
        gate = threading.Event()
        for _ in range(2):  # both of the pool's threads held until the gate opens
            hot._busy.submit(gate.wait, 30)

        def ask(subject: str) -> Any:
            body = json.dumps({"subject": subject, "predicate": "alg", "agent": "q"}).encode()
            return ROUTES["POST", "/query"], body, {b"content-type": b"application/json"}

        by_get = ROUTES["GET", "/query"], b"subject=auth%2Fjwt&predicate=alg&agent=q", {}
        replies = hot._run_batch([ask("auth/jwt"), ask("svc/x"), by_get])
        busy, cold, busy_get = replies
        # The cold question is answered (and audited) while both busy ones wait.
        assert cold[0] == 200 and json.loads(cold[1])["value"] == "RS256"
        for later in (busy, busy_get):
            assert isinstance(later, concurrent.futures.Future) and not later.done()
        gate.set()
        for later in (busy, busy_get):
            status, payload = later.result(timeout=30)
            body = json.loads(payload)
            assert status == 200
            assert (body["value"], body["assertion"]) == (expected.value, expected.assertion)
            assert body["candidate_count"] == 30
        asked = busy_lake.trace("anonymous", "-1h")["query_id"].to_list()
        assert len(asked) == 3
        hot.close()

    def test_over_http(self, busy_lake: sl.Lake) -> None:
        expected = busy_lake.query("auth/jwt", "alg", agent="ops")
        app = create_app(busy_lake, ServerOptions(require_signatures=False))
        with TestClient(app) as http:
            for _ in range(3):
                r = http.post("/query", json={"subject": "auth/jwt", "predicate": "alg"})
                assert r.status_code == 200 and r.json()["value"] == expected.value
                r = http.get("/query", params={"subject": "auth/jwt", "predicate": "alg"})
                assert r.status_code == 200 and r.json()["assertion"] == expected.assertion
                bad = http.get(
                    "/query", params={"subject": "auth/jwt", "predicate": "alg", "lens": "x"}
                )
                assert bad.status_code == 422
            # They went through the busy-key pool (its threads start on first use).
            import threading

            assert any(t.name.startswith("steme-api-busy-keys") for t in threading.enumerate())


class TestBatchWait:
    """Under load the batch worker waits (briefly) for the requests about to arrive,
    as many as were in the server at once during the last batch; a lone client
    never waits, and the wait follows clients that go away. Driven with a real
    worker thread and event loop; the lake's work is a 2 ms sleep."""

    @staticmethod
    def _drive(wait: float, requests: list[int]) -> tuple[Any, list[int], float]:
        """Client n sends ``requests[n]`` requests one after another, taking n % 4
        milliseconds over each answer (as clients over a network come back at
        different times); the worker's batches, their sizes and the seconds it
        all took."""
        import asyncio
        import time

        from steme_lake.api._fast import _Batches

        sizes: list[int] = []

        def run(items: list[Any]) -> list[tuple[int, bytes]]:
            sizes.append(len(items))
            time.sleep(0.002)
            return [(200, b"{}")] * len(items)

        batches = _Batches(run, wait)

        async def client(n: int, count: int) -> None:
            for _ in range(count):
                assert await batches.submit("request") == (200, b"{}")
                await asyncio.sleep(0.001 * (n % 4))

        async def main() -> None:
            await asyncio.gather(*(client(n, count) for n, count in enumerate(requests)))

        started = time.monotonic()
        asyncio.run(main())
        elapsed = time.monotonic() - started
        batches.close()
        return batches, sizes, elapsed

    def test_busy_clients_share_one_batch(self) -> None:
        batches, sizes, _ = self._drive(0.25, [30] * 8)
        assert sum(sizes) == 240
        # After the first batches, every batch holds one request of each client.
        assert sizes[-20:] == [8] * 20
        assert batches.timed_out <= 1

    def test_a_lone_client_never_waits(self) -> None:
        batches, sizes, elapsed = self._drive(0.5, [20])
        assert sizes == [1] * 20
        assert batches.timed_out == 0
        assert elapsed < 5  # twenty waits of half a second would take ten

    def test_the_wait_follows_a_client_that_went_away(self) -> None:
        batches, sizes, _ = self._drive(0.25, [5] + [30] * 7)
        assert sum(sizes) == 5 + 210
        assert sizes[-20:] == [7] * 20
        assert batches.timed_out <= 2

    def test_no_wait_when_turned_off(self) -> None:
        batches, sizes, _ = self._drive(0.0, [30] * 8)
        assert sum(sizes) == 240
        # Each request is taken as soon as it comes: the clients' different times
        # split them over several batches.
        assert len(sizes) > 60
        assert batches.timed_out == 0

    @pytest.mark.parametrize("bad", [-1, 101, float("nan"), True, "1"])
    def test_the_option_is_checked(self, bad: Any) -> None:
        with pytest.raises(sl.ValidationError, match="batch_wait_ms must be 0"):
            ServerOptions(batch_wait_ms=bad)


class TestServeProcess:
    """What ``steme serve``'s workers build (`app_from_env`): the options from the
    environment, and the startup objects frozen out of the collector's passes."""

    def test_options_and_frozen_startup(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import gc

        from steme_lake.api._http import app_from_env

        lake = tmp_path / "lake"
        sl.open(lake).close()
        monkeypatch.setenv("STEME_LAKE", str(lake))
        monkeypatch.setenv("STEME_SERVE_OPTIONS", "0,0,4096,2.5")
        app = app_from_env()
        assert app.hot._batches._wait == 0.0025  # type: ignore[attr-defined]
        assert app.hot.limit == 4096  # type: ignore[attr-defined]
        gc.unfreeze()
        try:
            with TestClient(app) as client:
                assert gc.get_freeze_count() > 0
                assert client.get("/health").status_code == 200
        finally:
            gc.unfreeze()

    def test_a_library_app_leaves_the_collector_alone(self, tmp_lake: sl.Lake) -> None:
        import gc

        gc.unfreeze()
        with TestClient(create_app(tmp_lake, ServerOptions())) as client:
            assert client.get("/health").status_code == 200
            assert gc.get_freeze_count() == 0


class TestWorkerDeath:
    """If the batch worker dies of something no request caused, its requests are
    answered 500 at once, and the next request starts a new worker: nothing
    waits for ever."""

    def test_requests_are_answered_and_a_new_worker_starts(self) -> None:
        import asyncio
        import json as _json

        from steme_lake.api._fast import _Batches

        class Death(BaseException):
            pass

        calls: list[int] = []

        def run(items: list[Any]) -> list[tuple[int, bytes]]:
            calls.append(len(items))
            if len(calls) == 1:
                raise Death("the worker's own bug")
            return [(200, b"{}")] * len(items)

        batches = _Batches(run, 0.0)

        async def main() -> list[tuple[int, bytes]]:
            replies = []
            for _ in range(3):
                replies.append(await asyncio.wait_for(batches.submit("request"), timeout=30))
            return replies

        replies = asyncio.run(main())
        batches.close()
        assert [status for status, _ in replies] == [500, 200, 200]
        assert "Death" in _json.loads(replies[0][1])["error"]
        assert calls == [1, 1, 1]


def test_docs_pages_need_no_internet(tmp_lake: sl.Lake) -> None:
    """``/docs`` and ``/redoc`` loaded Swagger UI from a CDN: blank offline."""
    app = create_app(tmp_lake, ServerOptions(require_signatures=False))
    with TestClient(app) as client:
        for page, assets in (
            ("/docs", ["swagger-ui-bundle.js", "swagger-ui.css"]),
            ("/redoc", ["redoc.standalone.js"]),
        ):
            html = client.get(page)
            assert html.status_code == 200 and "text/html" in html.headers["content-type"]
            assert "cdn." not in html.text and "fonts.googleapis" not in html.text, page
            for asset in assets:
                assert f'"/docs-assets/{asset}"' in html.text, (page, asset)
                got = client.get(f"/docs-assets/{asset}")
                assert got.status_code == 200 and len(got.content) > 10_000, asset
        assert "/docs-assets" not in client.get("/openapi.json").json()["paths"]
