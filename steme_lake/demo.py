"""``make demo``: build a lake from the shipped incident and the shared real data.

Run: ``python -m steme_lake.demo --lake demo-lake``. The lake is rebuilt each
time. It grows with the product: the postmortem arrives with the
investigation calls.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import polars as pl

import steme_lake as sl
from steme_lake._utils.progress import Bars
from steme_lake.io.climate_fever import climate_fever_events

REPO = Path(__file__).resolve().parents[1]
JWT_EVENTS = REPO / "datasets" / "jwt_incident.jsonl"
SHARED = REPO.parent / "shared" / "datasets"
# The demo runs on the incident's clock: the investigation starts at 03:00 that night,
# so its questions and the correction are stamped then, not on the day it is run.
STORY_CLOCK = "2026-01-16T03:00:00Z"


def _say(text: str) -> None:
    print(text, flush=True)


def build(lake_path: Path, *, shared: Path = SHARED) -> sl.Lake:
    if lake_path.exists():
        if not (lake_path / "steme_lake.json").exists():
            raise SystemExit(f"{lake_path} exists and is not a steme_lake; choose another --lake")
        shutil.rmtree(lake_path)
    lake = sl.open(lake_path, options=sl.LakeOptions(clock_start=STORY_CLOCK))
    climate = shared / "climate-fever.jsonl"
    if climate.exists():
        started = time.perf_counter()
        with Bars("CLIMATE-FEVER") as bars:
            counts = lake.import_events(list(climate_fever_events(climate)), progress=bars)
        took = time.perf_counter() - started
        _say(f"CLIMATE-FEVER (Diggelmann et al. 2020): {counts} in {took:.1f} s, one transaction")
    else:
        _say(f"(no {climate}: skipping the CLIMATE-FEVER import)")
    started = time.perf_counter()
    counts = lake.import_events(JWT_EVENTS)
    _say(f"JWT incident ({JWT_EVENTS.name}): {counts} in {time.perf_counter() - started:.2f} s")
    lake.flush()
    started = time.perf_counter()
    with Bars("semantic search") as bars:
        embedded = lake.vectors.sync(progress=lambda done, total: bars("embed", done, total))
    took = time.perf_counter() - started
    _say(f"Embedded {embedded} assertions for semantic search in {took:.0f} s")
    return lake


def report(lake: sl.Lake) -> None:
    status = lake.status()
    _say(
        f"\nLake at {status.path}: manifest v{status.manifest_version}, "
        f"last sequence {status.last_seq}, last record {status.last_time}"
    )
    table = pl.DataFrame([{"table": name, **stats} for name, stats in status.tables.items()]).drop(
        "unflushed_rows"
    )
    _say(str(table))
    with pl.Config(tbl_rows=20, fmt_str_lengths=40, tbl_width_chars=140):
        _say("\nEverything ever asserted about auth/jwt signing_algorithm:")
        _say(
            str(
                lake.assertions.filter(
                    pl.col("subject") == "auth/jwt", pl.col("predicate") == "signing_algorithm"
                )
                .select("recorded_at", "agent", "object", "confidence", "lifecycle")
                .sort("recorded_at")
                .collect()
            )
        )
        _say(
            "\nWhat the agents were told on 2026-01-15 (the audit log; note: no lifecycle filter):"
        )
        _say(
            str(
                lake.audit.filter(pl.col("subject").str.starts_with("auth/"))
                .select(
                    "recorded_at",
                    "agent",
                    "predicate",
                    "lens",
                    "lifecycle_filter",
                    "value",
                    pl.col("confidence").round(3),
                )
                .sort("recorded_at")
                .collect()
            )
        )
        _say("\nThe same question as of 20:55, through each lens:")
        at = "2026-01-15T20:55:00Z"
        for lens, stages in [
            ("recency", None),
            ("recency", "approved"),
            ("consensus", None),
            ("authority", None),
            ("skeptic", None),
        ]:
            ans = lake.query(
                "auth/jwt", "signing_algorithm", agent="demo", lens=lens, lifecycle=stages, as_of=at
            )
            conf = "-" if ans.confidence is None else f"{ans.confidence:.3f}"
            label = f"{lens}, lifecycle={stages}"
            said = f"{ans.value!s:6} ({ans.status}, confidence {conf}, {ans.lifecycle})"
            _say(f"  {label:32} -> {said}")
        hits = lake.vectors.search(
            "which algorithm signs our tokens?", k=3, agent="demo", as_of=at, lifecycle="approved"
        )
        _say("\nSearching by meaning (approved, as of 20:55): 'which algorithm signs our tokens?'")
        for h in hits.iter_rows(named=True):
            _say(f"  {h['score']:.3f}  {h['subject']} {h['predicate']} = {h['value']}")
        check = lake.check_constraints("http/client/retries", agent="demo", proposed="request")
        _say(
            f"\nPre-flight: may http/client use 'request'? {'yes' if check.ok else 'no'}: "
            f"{check.violations[0].reason if check.violations else ''}"
        )
        _say("\nWhat was derived from the ES256 proposal (parent chain):")
        assertions = lake.assertions.select("id", "subject", "object", "agent", "parent").collect()
        rfc = assertions.filter(pl.col("object") == '"ES256"', pl.col("subject") == "auth/jwt")
        chain, frontier = [], set(rfc["id"])
        while frontier:
            children = assertions.filter(pl.col("parent").is_in(list(frontier)))
            chain.append(children)
            frontier = set(children["id"])
        _say(str(pl.concat([rfc, *chain]).select("subject", "object", "agent")))
        if status.tables["votes"]["rows"] > 100:
            _say("\nMost contested CLIMATE-FEVER evidence (annotators' votes, -1 = disagree):")
            _say(
                str(
                    lake.votes.group_by("target")
                    .agg(pl.len().alias("votes"), pl.col("weight").sum().alias("net"))
                    .filter(pl.col("votes") >= 4)
                    .sort("net", "target")
                    .head(5)
                    .join(
                        lake.assertions.select("id", "subject", "object"),
                        left_on="target",
                        right_on="id",
                    )
                    .select("subject", "votes", "net", pl.col("object").str.slice(0, 60))
                    .sort("net", "subject")
                    .collect()
                )
            )


def postmortem_findings(lake: sl.Lake) -> None:
    """The key findings of the incident investigation (the full report: steme postmortem)."""
    from steme_lake.report import postmortem

    report = postmortem(lake, subject="auth/*", at="2026-01-15T21:04:00Z", agent="deploy-agent")
    _say(
        "\nPostmortem findings (auth/* at 21:04; full report: steme postmortem --lake "
        f"{lake.path} --subject 'auth/*' --at 2026-01-15T21:04:00Z --agent deploy-agent):"
    )
    for b in report["beliefs"]:
        if b["approved_value"] is not None and b["approved_value"] != b["value"]:
            _say(
                f"  - at 21:04 '{b['subject']} {b['predicate']}' resolved to {b['value']} "
                f"({b['lifecycle']}); the approved decision is {b['approved_value']}"
            )
    unfiltered = [
        q for q in report["asked"] if q["op"] == "query" and q["lifecycle_filter"] is None
    ]
    _say(
        f"  - the deploy agent asked {len(report['asked'])} questions before the deploy, "
        f"{len(unfiltered)} without a lifecycle filter"
    )
    for b in report["blame"]:
        _say(f"  - introduced by {b['agent']} at {b['recorded_at']} ({b['lifecycle']})")
    for i in report["impact"]:
        _say(
            f"  - it won {i['queries won directly']} queries (agents: {', '.join(i['agents'])}); "
            f"derived: {'; '.join(i['derived'])}; {i['queries further down']} more "
            "question(s) used what was derived from it"
        )


def gardener(lake: sl.Lake) -> None:
    """The correction loop: mark ES256 incorrect, run the Gardener, show what moved."""
    blamed = ["research-agent", "lead-orchestrator", "implementation-agent", "deploy-agent"]
    before = lake.trust.run()
    was = lake.query(
        "auth/jwt",
        "signing_algorithm",
        agent="demo",
        lens="authority",
        as_of="2026-01-15T20:55:00Z",
    )
    es = lake.query(
        "auth/jwt", "signing_algorithm", agent="demo", as_of="2026-01-15T20:55:00Z"
    ).assertion
    fix = lake.supersede(
        es, agent="human-sre", kind="invalidate", reason="ES256 broke every token: a proposal "
        "deployed as a decision"
    )  # fmt: skip
    after = lake.trust.run()
    fixed_at = lake.get(fix).recorded_at

    def trust(frame: pl.DataFrame, topic: str, agent: str) -> str:
        found = frame.filter(pl.col("topic") == topic, pl.col("agent") == agent)["score"]
        return f"{found[0]:.2f}" if len(found) else "0.50 (no evidence yet)"

    _say(
        f"\nThe Gardener (steme garden): the SRE marks ES256 incorrect at {fixed_at:%H:%M} "
        f"on {fixed_at:%Y-%m-%d} (the incident's night); trust on auth:"
    )
    for agent in [*blamed, "platform-team"]:
        _say(f"  {agent:22} {trust(before, 'auth', agent):>22} -> {trust(after, 'auth', agent)}")
    db_same = before.filter(pl.col("topic") == "db").equals(after.filter(pl.col("topic") == "db"))
    _say(f"  other topics untouched (db scores identical: {db_same})")
    (rule,) = lake.constraints.filter(pl.col("agent") == "gardener").collect().iter_rows(named=True)
    _say(
        f"  negative constraint stored: {rule['context']} {rule['predicate']}: never "
        f"{rule['forbidden']}, must use {rule['must_use']}"
    )
    now = lake.query("auth/jwt", "signing_algorithm", agent="demo", lens="authority")
    _say(f"  authority lens: as of 20:55 {was.value}; now {now.value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default="demo-lake", help="folder for the demo lake")
    args = parser.parse_args(argv)
    lake = build(Path(args.lake))
    try:
        report(lake)
        postmortem_findings(lake)
        gardener(lake)
    finally:
        lake.close()
    _say(
        "\nNext: open the lake in Python: import steme_lake as sl; lake = sl.open("
        f"{args.lake!r}); lake.assertions.collect()"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
