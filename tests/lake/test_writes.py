"""The public write API: validation, time order, signatures."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import steme_lake as sl
from steme_lake import (
    AgentKey,
    LakeClosedError,
    OutOfOrderError,
    SignatureError,
    UnknownRecordError,
    ValidationError,
)

SRC = "https://wiki/auth-decision"


def _assert(lake: sl.Lake, **overrides: object) -> str:
    args: dict = dict(agent="platform-team", confidence=0.92, lifecycle="approved", source=SRC)
    args.update(overrides)
    subject = args.pop("subject", "auth/jwt")
    predicate = args.pop("predicate", "signing_algorithm")
    value = args.pop("object", "RS256")
    return lake.assert_(subject, predicate, value, **args)


class TestValidation:
    """Bad input raises a StemeLakeError that says what to change; nothing is written."""

    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"lifecycle": "approvd"}, "unknown lifecycle stage 'approvd'; use one of"),
            ({"confidence": 1.5}, "between 0 and 1"),
            ({"confidence": float("nan")}, "between 0 and 1"),
            ({"confidence": True}, "number between 0 and 1"),
            ({"subject": ""}, "subject must not be empty"),
            ({"subject": "   "}, "subject must not be empty"),
            ({"predicate": 5}, "predicate must be text"),
            ({"object": {1, 2}}, "not JSON-serialisable"),
            ({"object": float("inf")}, "not valid JSON"),
            ({"object": {"a": float("nan")}}, "not valid JSON"),
            ({"source": None}, "needs its evidence"),
            ({"source": None, "source_hash": "abc"}, "64 lowercase hex"),
            ({"parent": "not-an-id"}, "record id"),
            ({"meta": ["x"]}, "meta must be a dict"),
            ({"agent": ""}, "agent must not be empty"),
            ({"at": "yesterday-ish"}, "cannot read"),
        ],
    )
    def test_assert_refusals(self, tmp_lake: sl.Lake, overrides: dict, message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            _assert(tmp_lake, **overrides)
        assert tmp_lake.assertions.collect().height == 0

    def test_errors_share_one_root(self) -> None:
        for name in sl.__all__:
            obj = getattr(sl, name)
            if isinstance(obj, type) and name.endswith("Error"):
                assert issubclass(obj, sl.StemeLakeError), name

    def test_vote_for_unknown_assertion(self, tmp_lake: sl.Lake) -> None:
        with pytest.raises(UnknownRecordError, match="not in this lake"):
            tmp_lake.vote("ab" * 32, agent="x")
        with pytest.raises(ValidationError, match="record id"):
            tmp_lake.vote("nope", agent="x")

    def test_unknown_target_after_flush_and_reopen(self, lake_path: Path) -> None:
        with sl.open(lake_path) as lake:
            aid = _assert(lake)
            lake.flush()
        with sl.open(lake_path) as lake:
            lake.vote(aid, agent="x", weight=-2.5)  # found among flushed ids
            lake.set_lifecycle(aid, "deprecated", agent="h", reason="superseded by ADR-18")
            with pytest.raises(UnknownRecordError):
                lake.set_lifecycle("cd" * 32, "approved", agent="h")

    def test_supersession_scope(self, tmp_lake: sl.Lake) -> None:
        aid = _assert(tmp_lake)
        with pytest.raises(ValidationError, match="exactly one of"):
            tmp_lake.supersede(aid, agent="h", kind="invalidate", reason="r", source="x")
        with pytest.raises(ValidationError, match="unknown supersession kind"):
            tmp_lake.supersede(aid, agent="h", kind="delete", reason="r")
        with pytest.raises(ValidationError, match="window"):
            tmp_lake.supersede(agent="h", kind="invalidate", reason="r", target_agent="bad-bot")
        tmp_lake.supersede(aid, agent="h", kind="invalidate", reason="ES256 broke prod")
        tmp_lake.supersede(agent="h", kind="replace", reason="bad feed", source=SRC)
        tmp_lake.supersede(
            agent="h",
            kind="invalidate",
            reason="rogue",
            target_agent="bad-bot",
            window=("2026-01-15T00:00:00Z", "2026-01-16T00:00:00Z"),
        )
        scopes = tmp_lake.supersessions.collect()["scope"].to_list()
        assert scopes == ["assertion", "source", "agent_window"]

    def test_constraint_needs_a_rule(self, tmp_lake: sl.Lake) -> None:
        with pytest.raises(ValidationError, match="forbidden=, must_use="):
            tmp_lake.add_constraint("auth/jwt", agent="h", reason="r")
        cid = tmp_lake.add_constraint(
            "auth/jwt", forbidden="ES256", must_use="RS256", reason="401s", agent="h"
        )
        record = tmp_lake.get(cid)
        assert isinstance(record, sl.Constraint)
        assert (record.forbidden, record.must_use) == ("ES256", "RS256")


class TestUnicode:
    """Text that UTF-8 cannot store is refused with its field named; text in two
    normal forms is one subject, one agent, one constraint context."""

    @pytest.mark.parametrize(
        ("call", "field"),
        [
            (lambda lake: _assert(lake, object="\udc00"), "object"),
            (lambda lake: _assert(lake, object={"k": ["\ud800"]}), "object"),
            (lambda lake: _assert(lake, meta={"reason": "x\udc00"}), "meta"),
            (lambda lake: _assert(lake, meta={"\udc00": 1}), "meta"),
            (lambda lake: _assert(lake, subject="auth/\udc00"), "subject"),
            (lambda lake: _assert(lake, agent="\udfff"), "agent"),
            (lambda lake: _assert(lake, source="https://\udc00"), "source"),
            (
                lambda lake: lake.assert_many(
                    [dict(subject="a", predicate="p", object="\udc00", agent="x", source="s")]
                ),
                "object",
            ),
            (lambda lake: lake.query("auth/\udc00", "p", agent="sre"), "subject"),
            (lambda lake: lake.query("auth/jwt", "p", agent="sre\udc00"), "agent"),
            (lambda lake: lake.check_constraints("auth", agent="a", proposed="\udc00"), "proposed"),
            (lambda lake: lake.diff("-1h", subject="auth/\udc00"), "subject"),
        ],
    )
    def test_lone_surrogates_refused(self, tmp_lake: sl.Lake, call: object, field: str) -> None:
        with pytest.raises(ValidationError, match=f"^{field}: character .* lone surrogate"):
            call(tmp_lake)  # type: ignore[operator]
        assert tmp_lake.assertions.collect().height == 0
        assert tmp_lake.audit.collect().height == 0
        assert tmp_lake.status().last_seq == 0  # nothing reached the log

    def test_normal_forms_are_one(self, tmp_lake: sl.Lake) -> None:
        nfd, nfc = "cafe\u0301", "caf\u00e9"
        aid = _assert(tmp_lake, subject=f"menu/{nfd}", agent=f"chef-{nfd}")
        stored = tmp_lake.get(aid)
        assert stored.subject == f"menu/{nfc}" and stored.agent == f"chef-{nfc}"
        assert tmp_lake.query(f"menu/{nfc}", "signing_algorithm", agent="sre").value == "RS256"
        assert tmp_lake.diff("-1h", subject=f"menu/{nfd}").beliefs.height == 1
        tmp_lake.add_constraint(f"menu/{nfd}", agent="sre", reason="r", forbidden=nfc)
        assert not tmp_lake.check_constraints(f"menu/{nfc}", agent="a", proposed=nfd).ok
        tmp_lake.add_constraint("drinks", agent="sre", reason="r", must_use=[nfd])
        assert tmp_lake.check_constraints("drinks", agent="a", proposed=[nfc]).ok


class TestTime:
    """Lake times strictly increase; imported history keeps its times, in order."""

    def test_stamped_times_strictly_increase(self, tmp_lake: sl.Lake) -> None:
        tmp_lake.assert_many(
            [{"subject": "s", "predicate": "p", "object": 1, "agent": "a", "source": "x"}] * 5
        )
        for _ in range(5):
            _assert(tmp_lake)
        times = tmp_lake.assertions.collect()["recorded_at"].to_list()
        assert all(a < b for a, b in itertools.pairwise(times))

    def test_history_in_order_only(self, tmp_lake: sl.Lake) -> None:
        _assert(tmp_lake, at="2026-01-15T14:30:00Z")
        _assert(tmp_lake, at=datetime(2026, 1, 15, 14, 30))  # naive means UTC; same time is fine
        with pytest.raises(OutOfOrderError, match="earlier than the last committed"):
            _assert(tmp_lake, at="2026-01-15T14:29:59Z")
        later = _assert(tmp_lake)  # stamped now, after the history
        assert tmp_lake.get(later).recorded_at > datetime.fromisoformat("2026-01-16T00:00:00+00:00")

    def test_future_refused(self, tmp_lake: sl.Lake) -> None:
        with pytest.raises(ValidationError, match="future"):
            _assert(tmp_lake, at=datetime.now() + timedelta(days=1))

    def test_relative_time(self, tmp_lake: sl.Lake) -> None:
        aid = _assert(tmp_lake, at="-2h")
        age = datetime.now().astimezone() - tmp_lake.get(aid).recorded_at
        assert timedelta(hours=1, minutes=59) < age < timedelta(hours=2, minutes=1)


class TestSignedWrites:
    """Signatures are checked against the id at commit; bad ones write nothing."""

    def test_sign_at_commit_and_multisig(self, tmp_lake: sl.Lake) -> None:
        keys = [AgentKey.generate(), AgentKey.generate()]
        aid = _assert(tmp_lake, sign_with=keys)
        record = tmp_lake.get(aid)
        assert isinstance(record, sl.Assertion)
        assert {s.public_key for s in record.signatures} == {k.public_key for k in keys}
        assert all(sl.verify_signature(aid, s) for s in record.signatures)

    def test_presigned_with_at(self, tmp_lake: sl.Lake) -> None:
        from steme_lake.lake._rows import assertion_row

        key = AgentKey.generate()
        at = "2026-01-15T14:30:00Z"
        row = assertion_row(
            "auth/jwt",
            "signing_algorithm",
            "ES256",
            agent="research-agent",
            confidence=0.87,
            source="https://rfc.example/jwt-es256",
            at=at,
        )
        expected = row.id_at(row.at or 0)
        sig = key.sign(expected)
        aid = tmp_lake.assert_(
            "auth/jwt",
            "signing_algorithm",
            "ES256",
            agent="research-agent",
            confidence=0.87,
            source="https://rfc.example/jwt-es256",
            at=at,
            signatures=[sig],
        )
        assert aid == expected
        # Replayed on other content, or at another time: refused, nothing written.
        with pytest.raises(SignatureError):
            tmp_lake.assert_(
                "auth/jwt",
                "signing_algorithm",
                "HS256",
                agent="research-agent",
                confidence=0.87,
                source="https://rfc.example/jwt-es256",
                at=at,
                signatures=[sig],
            )
        with pytest.raises(SignatureError):
            tmp_lake.assert_(
                "auth/jwt",
                "signing_algorithm",
                "ES256",
                agent="research-agent",
                confidence=0.87,
                source="https://rfc.example/jwt-es256",
                at="2026-01-15T14:31:00Z",
                signatures=[sig],
            )
        assert tmp_lake.assertions.collect().height == 1

    def test_presigned_needs_at(self, tmp_lake: sl.Lake) -> None:
        sig = AgentKey.generate().sign("ab" * 32)
        with pytest.raises(ValidationError, match="at="):
            _assert(tmp_lake, signatures=[sig])


class TestLifecycleOfTheObject:
    """Open, reopen, close; errors after close."""

    def test_closed(self, lake_path: Path) -> None:
        lake = sl.open(lake_path)
        lake.close()
        lake.close()  # idempotent
        with pytest.raises(LakeClosedError):
            _assert(lake)
        with pytest.raises(LakeClosedError):
            lake.assertions  # noqa: B018

    def test_not_a_lake_folder(self, tmp_path: Path) -> None:
        (tmp_path / "notes.txt").write_text("hello")
        with pytest.raises(ValidationError, match="not a steme_lake"):
            sl.open(tmp_path)
        with pytest.raises(ValidationError, match="is a file"):
            sl.open(tmp_path / "notes.txt")

    def test_remote_uri_explains(self) -> None:
        with pytest.raises(ValidationError, match="local"):
            sl.open("memory://lake")

    def test_unknown_table(self, tmp_lake: sl.Lake) -> None:
        with pytest.raises(ValidationError, match="assertions, votes"):
            tmp_lake.table("beliefs")

    def test_status_and_html(self, tmp_lake: sl.Lake) -> None:
        _assert(tmp_lake)
        status = tmp_lake.status()
        assert status.last_seq == 1 and status.tables["assertions"]["rows"] == 1
        assert "<table>" in tmp_lake._repr_html_()
        assert "auth/jwt" in tmp_lake.get(tmp_lake.assertions.collect()["id"][0])._repr_html_()


class TestCanonicalSubjects:
    """``auth/../x`` would match ``diff(subject="auth")``: subjects are canonical paths."""

    @pytest.mark.parametrize(
        ("subject", "hint"),
        [("auth/../x", "auth/x"), ("auth//jwt", "auth/jwt"), ("auth/jwt/", "auth/jwt"),
         ("/auth", "auth"), ("./auth", "auth"), ("..", None)],
    )  # fmt: skip
    def test_refused_with_the_canonical_form_named(
        self, tmp_lake: sl.Lake, subject: str, hint: str | None
    ) -> None:
        message = "not a canonical path" + (f".*did you mean '{hint}'" if hint else "")
        with pytest.raises(sl.ValidationError, match=message):
            tmp_lake.assert_(subject, "p", 1, agent="a", source="s")
        with pytest.raises(sl.ValidationError, match=message):
            tmp_lake.assert_many(
                [{"subject": "ok/one", "predicate": "p", "object": 1, "agent": "a", "source": "s"},
                 {"subject": subject, "predicate": "p", "object": 2, "agent": "a", "source": "s"}]
            )  # fmt: skip
        with pytest.raises(sl.ValidationError, match=message):
            tmp_lake.query(subject, "p", agent="a")
        assert tmp_lake.assertions.collect().is_empty()  # nothing of a refused batch is kept

    def test_dots_inside_a_name_are_fine(self, tmp_lake: sl.Lake) -> None:
        tmp_lake.assert_("svc/.well-known/a..b", "p", 1, agent="a", source="s")
        assert tmp_lake.query("svc/.well-known/a..b", "p", agent="a").value == 1
