"""steme_lake against DuckDB and SQLite on the same data, in the same run.

    python benchmarks/lake_bench.py --size 1M [--seed 42] [--out benchmarks/results]

1. **Ingest.** A seeded lake (`generate.py`) is written through the public bulk
   API and flushed to Parquet. The same assertions then go into SQLite (WAL
   mode, ``synchronous=FULL``, the indexes below) in batches of the same size.
2. **Single durable writes.** `Lake.assert_` against an SQLite ``INSERT`` and
   ``COMMIT``, one at a time.
3. **Questions.** Each system runs in its own fresh process, so that open time
   and peak memory are its own. The questions are the same seeded set for
   every system:
   - current point query (recency lens), with its audit record written
     durably (DuckDB reads the lake's files and cannot write: no audit);
   - as-of point query;
   - snapshot of the whole lake as of T;
   - a 24-hour belief diff on a subject glob;
   - one agent's audit trace over 6 hours;
   - the impact of one assertion.
   The answers must agree: the benchmark counts disagreements.

DuckDB runs over the lake's own Parquet files, with the best SQL we could
write for it (``arg_max`` over ``(recorded_at, id)``). SQLite gets the
indexes a competent engineer would add: (subject, predicate, recorded_at),
supersession targets and sources, (agent, recorded_at) on the audit, and a
normalized table of the assertions each audit record cites.

Results: ``<out>/lake-<size>-<date>.json`` (machine, versions, sizes, every
figure with percentiles) and ``.md`` (the table with ratios).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import platform
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))

import generate

import steme_lake as sl

SYSTEMS = ("steme_lake", "duckdb", "sqlite")
TABLES = ("assertions", "votes", "lifecycle", "supersessions", "constraints", "audit")

# ---------------------------------------------------------------- measuring


def percentiles(samples: Iterable[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds (``n`` samples)."""
    data = np.sort(np.asarray(list(samples), dtype=float)) * 1000
    if data.size == 0:
        return {"n": 0}
    pick = lambda q: round(float(np.quantile(data, q, method="higher")), 3)  # noqa: E731
    return {
        "n": int(data.size),
        "p50_ms": pick(0.50),
        "p90_ms": pick(0.90),
        "p99_ms": pick(0.99),
        "max_ms": round(float(data[-1]), 3),
    }


def timed(calls: Iterable[Callable[[], Any]]) -> tuple[dict[str, float], list[Any]]:
    samples, answers = [], []
    for call in calls:
        t = time.perf_counter()
        answers.append(call())
        samples.append(time.perf_counter() - t)
    return percentiles(samples), answers


def peak_rss_mib() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries
    ru_maxrss over from the parent into a child started with fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


# ---------------------------------------------------------------- the questions


def lake_files(lake_path: Path, table: str) -> list[str]:
    """The table's live Parquet files. Never a glob of the folder: it also holds
    files compaction replaced (kept an hour for older readers), counted twice."""
    lake = sl.open(lake_path, options=sl.LakeOptions(state_index="off"))
    try:
        return lake.files(table)
    finally:
        lake.close()


def workload(lake_path: Path, plan: generate.Plan, n_points: int) -> dict[str, Any]:
    """The seeded questions every system answers (from the lake's own data)."""
    rng = np.random.default_rng(plan.seed + 1)
    keys = (
        pl.scan_parquet(lake_files(lake_path, "assertions"))
        .select("id", "subject", "predicate", "recorded_at")
        .collect()
    )
    rows = rng.integers(0, keys.height, n_points)
    picked = keys[rows.tolist()]
    span = us(plan.end) - us(plan.start)
    as_of = [us(plan.start) + int(x) for x in rng.integers(span // 10, span, n_points)]
    end = plan.end
    return {
        "points": [[s, p] for s, p in zip(picked["subject"], picked["predicate"], strict=True)],
        "as_of_us": as_of,
        "snapshot_us": [us(plan.start + (plan.end - plan.start) * f) for f in (0.5, 0.75, 1.0)],
        "diff": [
            [f"svc/{k}/*", us(end - timedelta(days=d + 1)), us(end - timedelta(days=d))]
            for k, d in ((0, 1), (1, 3), (2, 5), (3, 7), (5, 9))
        ],
        "trace": [
            [f"agent-{a:04d}", us(end - timedelta(hours=h + 6)), us(end - timedelta(hours=h))]
            for a, h in ((0, 10), (1, 30), (2, 50), (5, 70), (10, 90))
        ],
        "impact": [str(keys["id"][int(i)]) for i in rng.integers(0, keys.height, 5)],
        "impact_until_us": us(end),
    }


# ---------------------------------------------------------------- SQLite

# Record ids and hashes are 32-byte BLOBs (the lake's 64-hex text, decoded): half
# the size of text, as a careful engineer would store them.
SQLITE_SCHEMA = """
create table assertions (id blob primary key, recorded_at integer not null, subject text,
  predicate text, object text, confidence real, source_hash blob, agent text, lifecycle text,
  parent blob);
create table votes (id blob primary key, recorded_at integer, target blob, agent text,
  weight real);
create table lifecycle (id blob primary key, recorded_at integer, target blob, agent text,
  stage text);
create table supersessions (id blob primary key, recorded_at integer, scope text, target blob,
  source_hash blob, target_agent text, kind text);
create table constraints (id blob primary key, recorded_at integer, context text,
  forbidden text, must_use text, reason text);
create table audit (id blob not null, recorded_at integer, agent text, op text,
  subject text, predicate text, lens text, status text, value text, confidence real,
  winner blob, latency_us integer);
create table audit_cites (audit_id blob, assertion_id blob);
"""
# The lake's columns that SQLite stores as BLOBs.
HEX_COLUMNS = ("id", "source_hash", "parent", "target", "winner")
# The audit table (ten rows per assertion) gets its unique id index after the bulk
# load, as one sorted build: kept up to date row by row, its random 32-byte keys
# rewrite most of the index's pages on every commit once it outgrows the cache.
SQLITE_INDEXES = """
create index assertions_key on assertions(subject, predicate, recorded_at);
create unique index audit_id on audit(id);
create index assertions_source on assertions(source_hash);
create index assertions_parent on assertions(parent);
create index votes_target on votes(target);
create index lifecycle_target on lifecycle(target, recorded_at);
create index supersessions_target on supersessions(target);
create index supersessions_source on supersessions(source_hash);
create index audit_agent on audit(agent, recorded_at);
create index audit_time on audit(recorded_at);
create index audit_cites_assertion on audit_cites(assertion_id);
create index assertions_agent on assertions(agent, recorded_at);
"""
COLUMNS = {
    "assertions": ["id", "recorded_at", "subject", "predicate", "object", "confidence",
                   "source_hash", "agent", "lifecycle", "parent"],
    "votes": ["id", "recorded_at", "target", "agent", "weight"],
    "lifecycle": ["id", "recorded_at", "target", "agent", "stage"],
    "supersessions": ["id", "recorded_at", "scope", "target", "source_hash", "target_agent",
                      "kind"],
    "constraints": ["id", "recorded_at", "context", "forbidden", "must_use", "reason"],
    "audit": ["id", "recorded_at", "agent", "op", "subject", "predicate", "lens", "status",
              "value", "confidence", "winner", "latency_us"],
}  # fmt: skip


def sqlite_connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    con.execute("pragma journal_mode=wal")
    con.execute("pragma synchronous=full")
    return con


def _batches(lake_path: Path, table: str, columns: list[str]) -> Iterable[pa.RecordBatch]:
    """The rows of a lake table as SQLite stores them: integer times, BLOB ids."""
    for f in lake_files(lake_path, table):
        frame = pl.from_arrow(pq.read_table(f, columns=columns))
        assert isinstance(frame, pl.DataFrame)
        frame = frame.with_columns(
            pl.col("recorded_at").dt.epoch("us"),
            *(pl.col(c).str.decode("hex") for c in columns if c in HEX_COLUMNS),
            *(
                [pl.col("contributing").list.eval(pl.element().str.decode("hex"))]
                if "contributing" in columns
                else []
            ),
        )
        yield from frame.to_arrow().to_batches(max_chunksize=100_000)


def sqlite_load(lake_path: Path, db: Path, batch_rows: int) -> dict[str, Any]:
    """Copy the lake into SQLite: every table, then the indexes; assertions timed alone."""
    con = sqlite_connect(db)
    # A bulk load's settings: a 1 GiB page cache and sorts in memory (index builds at
    # 10M would otherwise spill several GiB of temporary files next to the database).
    con.execute("pragma cache_size=-1048576")
    con.execute("pragma temp_store=memory")
    con.executescript(SQLITE_SCHEMA)
    out: dict[str, Any] = {}
    # Assertions: durable batches of the generator's batch size, indexes in place
    # (as a live system has them), so the rate compares with the lake's ingest.
    con.executescript(SQLITE_INDEXES.split(";")[0] + ";")
    seconds, n = 0.0, 0
    insert = f"insert into assertions values ({','.join('?' * len(COLUMNS['assertions']))})"
    for batch in _batches(lake_path, "assertions", COLUMNS["assertions"]):
        rows = list(zip(*(c.to_pylist() for c in batch.columns), strict=True))
        for i in range(0, len(rows), batch_rows):
            chunk = rows[i : i + batch_rows]
            t = time.perf_counter()
            con.execute("begin")
            con.executemany(insert, chunk)
            con.execute("commit")
            seconds += time.perf_counter() - t
            n += len(chunk)
    out["assertions"] = {"rows": n, "seconds": round(seconds, 3),
                         "rows_per_second": round(n / max(seconds, 1e-9), 1)}  # fmt: skip
    t = time.perf_counter()
    for table in TABLES[1:]:
        cols = COLUMNS[table]
        sql = f"insert into {table} values ({','.join('?' * len(cols))})"
        extra = ["contributing"] if table == "audit" else []
        for batch in _batches(lake_path, table, cols + extra):
            data = [c.to_pylist() for c in batch.columns]
            con.execute("begin")
            con.executemany(sql, zip(*data[: len(cols)], strict=True))
            if extra:
                con.executemany(
                    "insert into audit_cites values (?, ?)",
                    ((qid, a) for qid, cited in zip(data[0], data[-1], strict=True)
                     for a in cited or ()),
                )  # fmt: skip
            con.execute("commit")
    # The bulk index builds in rollback-journal mode: in WAL mode each new index is
    # written to the WAL before the database, and at 10M the largest (200M
    # citations, about 9 GB) would not fit beside the 51 GB database here.
    con.execute("pragma journal_mode=delete")
    con.executescript(";".join(SQLITE_INDEXES.split(";")[1:]))
    con.execute("analyze")
    con.execute("pragma journal_mode=wal")
    out["other_tables_and_indexes_s"] = round(time.perf_counter() - t, 3)
    con.close()
    out["bytes"] = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    return out


# What trace and impact return from the peers: the columns the lake's answers carry.
AUDIT_OUT = "id, recorded_at, agent, op, subject, predicate, lens, status, value, winner"

LIVE = """
  {a}.recorded_at <= {t}
  and not exists (select 1 from supersessions s where s.scope = 'assertion'
                  and s.target = {a}.id and s.recorded_at <= {t})
  and not exists (select 1 from supersessions s where s.scope = 'source'
                  and s.source_hash = {a}.source_hash and s.recorded_at <= {t}
                  and {a}.recorded_at <= s.recorded_at)
"""


def sqlite_point(con: sqlite3.Connection, subject: str, predicate: str, t: int) -> str | None:
    # lower(hex()) gives back the lake's id text; BLOBs sort as their hex does.
    row = con.execute(
        "select lower(hex(id)) from assertions a where subject = :s and predicate = :p and "
        + LIVE.format(a="a", t=":t")
        + " order by recorded_at desc, id desc limit 1",
        {"s": subject, "p": predicate, "t": t},
    ).fetchone()
    return None if row is None else str(row[0])


# ---------------------------------------------------------------- the systems


class Ours:
    name = "steme_lake"

    def __init__(self, path: Path) -> None:
        self.path = path

    def open(self) -> None:
        self.lake = sl.open(self.path)

    def warm_up(self) -> bool:
        """Wait for the current-state index (built in the background after open):
        until then point queries scan the files. Measured as ``warm_up_s``."""
        while self.lake.status().state_index == "building":
            time.sleep(0.05)
        return True

    def checkpoint(self) -> str | None:
        """The state index checkpoint the index was loaded from (or wrote), if any."""
        return self.lake.status().state_checkpoint

    def point(self, s: str, p: str) -> str | None:
        return self.lake.query(s, p, agent="bench").assertion

    def point_as_of(self, s: str, p: str, t: int) -> str | None:
        return self.lake.query(s, p, agent="bench", as_of=_dt(t)).assertion

    def snapshot(self, t: int) -> int:
        return self.lake.snapshot(_dt(t)).collect().height

    def diff(self, glob: str, since: int, until: int) -> tuple[int, int]:
        d = self.lake.diff(_dt(since), _dt(until), glob)
        # The lake lists every record in the window; the peers count the assertions.
        return d.beliefs.height, d.records.filter(pl.col("table") == "assertions").height

    def trace(self, agent: str, since: int, until: int) -> int:
        return self.lake.trace(agent, _dt(since), _dt(until)).height

    def impact(self, aid: str) -> int:
        # the direct impact, as the peers answer it (transitive impact, depth 3, is
        # compared against a reference implementation in tests/lake/test_impact.py;
        # in this benchmark against the peers: not yet)
        return self.lake.impact(aid, depth=1).queries.height

    def impact_deep(self, aid: str, until: int) -> list[list[int]]:
        found = self.lake.impact(aid, depth=IMPACT_DEPTH, until=_dt(until))
        return [
            [int((frame["depth"] == d).sum()) for d in range(1, IMPACT_DEPTH + 1)]
            for frame in (found.queries, found.assertions)
        ]

    def close(self) -> None:
        self.lake.close()


def _dt(t: int) -> datetime:
    return datetime.fromtimestamp(t // 1_000_000, tz=UTC).replace(microsecond=t % 1_000_000)


IMPACT_DEPTH = 3
FRONTIER_LIMIT = 20_000  # steme_lake.lake._impact.FRONTIER_LIMIT: the same rules
# (the lake also stops at a level cited by more than _impact.QUERY_LIMIT, 200,000,
# audit records; no level comes near that at the sizes the peers are compared at:
# 100k in `make test`, and at 1M with `make bench SKIP=`)


def downstream(peer: Any, root: str, until: int, depth: int = IMPACT_DEPTH) -> list[list[int]]:
    """Transitive impact on a SQL peer, plainly (the rules of `Lake.impact`, one
    level at a time with the peer's own queries): how many queries and derived
    assertions each level finds. Which path reached a row does not change which
    rows a level holds, so the counts compare exactly."""
    seen_q: set[str] = set()
    seen_a = {root}
    frontier = [root]
    counts: list[list[int]] = [[], []]
    for _ in range(depth):
        if len(frontier) > FRONTIER_LIMIT:  # not followed further, as the lake does
            counts[0].append(0)
            counts[1].append(0)
            continue
        queries: dict[str, tuple[str, int, str | None]] = {}
        hits: dict[str, set[str]] = {}
        if frontier:
            for qid, agent, t, winner, cited in peer.cited_by(frontier, until):
                if qid not in seen_q:
                    queries[qid] = (agent, t, winner)
                    hits.setdefault(qid, set()).add(cited)
        seen_q.update(queries)
        found: set[str] = set()
        current = list(frontier)
        while current:
            kids = [c for c in peer.children(current, until) if c not in seen_a and c not in found]
            found.update(kids)
            current = kids
        receipts: dict[tuple[str, str], int] = {}
        for qid, (agent, t, winner) in queries.items():
            if winner is not None and winner in hits[qid]:
                receipts[(agent, winner)] = min(t, receipts.get((agent, winner), t))
        subjects = peer.subjects({w for _, w in receipts}) if receipts else {}
        asks = [(agent, t, subjects[won], won) for (agent, won), t in receipts.items()]
        for x, won in peer.written_after(asks, until) if asks else []:
            if x != won and x not in seen_a:
                found.add(x)
        counts[0].append(len(queries))
        counts[1].append(len(found))
        seen_a.update(found)
        frontier = sorted(found)
    return counts


class _Peer:
    """What the two SQL peers share: a path, no warm-up, one connection."""

    con: Any

    def __init__(self, path: Path) -> None:
        self.path = path

    def warm_up(self) -> None:
        return None

    def close(self) -> None:
        self.con.close()


class Sqlite(_Peer):
    name = "sqlite"

    def open(self) -> None:
        self.con = sqlite_connect(self.path)

    def point(self, s: str, p: str) -> str | None:
        # The same work as the lake: answer, then write the audit record durably.
        winner = sqlite_point(self.con, s, p, 2**62)
        now = time.time_ns() // 1000
        self.con.execute("begin")
        self.con.execute(
            "insert into audit values (?,?,?,?,?,?,?,?,?,?,?,?)",
            (os.urandom(32), now, "bench", "query", s, p, "recency", "answered",
             None, None, None if winner is None else bytes.fromhex(winner), 0),
        )  # fmt: skip
        self.con.execute("commit")
        return winner

    def point_as_of(self, s: str, p: str, t: int) -> str | None:
        return sqlite_point(self.con, s, p, t)

    def _snap(self, t: int, glob: str | None = None) -> str:
        where = "" if glob is None else f" and subject glob '{glob}'"
        # SQLite's bare-column rule: with max(), the other columns come from that row.
        return (
            "select subject, predicate, id, max(recorded_at) from assertions a where "
            + LIVE.format(a="a", t=t)
            + where
            + " group by subject, predicate"
        )

    def snapshot(self, t: int) -> int:
        return len(self.con.execute(self._snap(t)).fetchall())

    def diff(self, glob: str, since: int, until: int) -> tuple[int, int]:
        sql = (
            f"select count(*) from ({self._snap(until, glob)}) n full join "
            f"({self._snap(since, glob)}) o using (subject, predicate) "
            "where o.id is not n.id"
        )
        changed = self.con.execute(sql).fetchone()[0]
        written = self.con.execute(
            "select count(*) from assertions where subject glob ? and recorded_at > ? "
            "and recorded_at <= ?",
            (glob, since, until),
        ).fetchone()[0]
        return int(changed), int(written)

    def trace(self, agent: str, since: int, until: int) -> int:
        return len(
            self.con.execute(
                f"select {AUDIT_OUT} from audit where agent = ? and recorded_at >= ? "
                "and recorded_at <= ? order by recorded_at, id",
                (agent, since, until),
            ).fetchall()
        )

    def impact(self, aid: str) -> int:
        return len(
            self.con.execute(
                f"select {AUDIT_OUT.replace('id,', 'a.id,')} from audit_cites c "
                "join audit a on a.id = c.audit_id where c.assertion_id = ?",
                (bytes.fromhex(aid),),
            ).fetchall()
        )

    def impact_deep(self, aid: str, until: int) -> list[list[int]]:
        return downstream(self, aid, until)

    def _in(self, ids: Iterable[str]) -> tuple[str, list[bytes]]:
        keys = [bytes.fromhex(i) for i in ids]
        return ",".join("?" * len(keys)), keys

    def cited_by(self, ids: list[str], until: int) -> list[tuple[str, str, int, str | None, str]]:
        marks, keys = self._in(ids)
        rows = self.con.execute(
            "select a.id, a.agent, a.recorded_at, a.winner, c.assertion_id from audit_cites c "
            f"join audit a on a.id = c.audit_id where c.assertion_id in ({marks}) "
            "and a.recorded_at <= ?",
            (*keys, until),
        ).fetchall()
        return [(q.hex(), g, t, w.hex() if w else None, c.hex()) for q, g, t, w, c in rows]

    def children(self, ids: list[str], until: int) -> list[str]:
        marks, keys = self._in(ids)
        rows = self.con.execute(
            f"select id from assertions where parent in ({marks}) and recorded_at <= ?",
            (*keys, until),
        ).fetchall()
        return sorted(r[0].hex() for r in rows)

    def subjects(self, ids: set[str]) -> dict[str, str]:
        marks, keys = self._in(ids)
        rows = self.con.execute(
            f"select id, subject from assertions where id in ({marks})", keys
        ).fetchall()
        return {i.hex(): s for i, s in rows}

    def written_after(
        self, asks: list[tuple[str, int, str, str]], until: int
    ) -> list[tuple[str, str]]:
        """For each (agent, t, subject, won): what the agent wrote after t on the
        subject or under it (one indexed lookup each)."""
        out = []
        for agent, t, subject, won in asks:
            rows = self.con.execute(
                "select id from assertions where agent = ? and recorded_at > ? "
                "and recorded_at <= ? and (subject = ? or substr(subject, 1, ?) = ?)",
                (agent, t, until, subject, len(subject) + 1, subject + "/"),
            ).fetchall()
            out += [(r[0].hex(), won) for r in rows]
        return out


class Duck(_Peer):
    name = "duckdb"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        # Listed before the clock starts: a reader of the lake's files is handed
        # the list (here, from the lake's manifest).
        self.files = {table: lake_files(path, table) for table in TABLES}

    def open(self) -> None:
        import duckdb

        self.con = duckdb.connect()
        for table in TABLES:
            listed = ", ".join(f"'{f}'" for f in self.files[table])
            self.con.execute(
                f"create view {table} as select * exclude (recorded_at), "
                f"epoch_us(recorded_at) as recorded_at from read_parquet([{listed}])"
            )

    def _live(self, t: int) -> str:
        return LIVE.format(a="a", t=t)

    def point(self, s: str, p: str) -> str | None:
        return self.point_as_of(s, p, 2**62)

    def point_as_of(self, s: str, p: str, t: int) -> str | None:
        row = self.con.execute(
            "select arg_max(id, (recorded_at, id)) from assertions a "
            "where subject = $s and predicate = $p and " + self._live(t),
            {"s": s, "p": p},
        ).fetchall()
        return None if not row or row[0][0] is None else str(row[0][0])

    def _snap(self, t: int, glob: str | None = None) -> str:
        where = "" if glob is None else f" and subject glob '{glob}'"
        return (
            "select subject, predicate, arg_max(id, (recorded_at, id)) as id from assertions a "
            "where " + self._live(t) + where + " group by all"
        )

    def snapshot(self, t: int) -> int:
        return int(self.con.execute(f"select count(*) from ({self._snap(t)})").fetchall()[0][0])

    def diff(self, glob: str, since: int, until: int) -> tuple[int, int]:
        changed = self.con.execute(
            f"select count(*) from ({self._snap(until, glob)}) n full join "
            f"({self._snap(since, glob)}) o using (subject, predicate) "
            "where o.id is distinct from n.id"
        ).fetchall()[0][0]
        written = self.con.execute(
            "select count(*) from assertions where subject glob $g and recorded_at > $a "
            "and recorded_at <= $b",
            {"g": glob, "a": since, "b": until},
        ).fetchall()[0][0]
        return int(changed), int(written)

    def trace(self, agent: str, since: int, until: int) -> int:
        return len(
            self.con.execute(
                f"select {AUDIT_OUT} from audit where agent = $a "
                "and recorded_at between $s and $u order by recorded_at, id",
                {"a": agent, "s": since, "u": until},
            ).fetchall()
        )

    def impact(self, aid: str) -> int:
        return len(
            self.con.execute(
                f"select {AUDIT_OUT} from audit where list_contains(contributing, $i)",
                {"i": aid},
            ).fetchall()
        )

    def impact_deep(self, aid: str, until: int) -> list[list[int]]:
        return downstream(self, aid, until)

    def cited_by(self, ids: list[str], until: int) -> list[tuple[str, str, int, str | None, str]]:
        rows = self.con.execute(
            "select id, agent, recorded_at, winner, cited from (select id, agent, recorded_at, "
            "winner, unnest(contributing) as cited from audit "
            "where list_has_any(contributing, $ids) and recorded_at <= $u) "
            "where list_contains($ids, cited)",
            {"ids": ids, "u": until},
        ).fetchall()
        return [tuple(r) for r in rows]

    def children(self, ids: list[str], until: int) -> list[str]:
        rows = self.con.execute(
            "select id from assertions where list_contains($ids, parent) and recorded_at <= $u",
            {"ids": ids, "u": until},
        ).fetchall()
        return sorted(r[0] for r in rows)

    def subjects(self, ids: set[str]) -> dict[str, str]:
        rows = self.con.execute(
            "select id, subject from assertions where list_contains($ids, id)", {"ids": list(ids)}
        ).fetchall()
        return dict(rows)

    def written_after(
        self, asks: list[tuple[str, int, str, str]], until: int
    ) -> list[tuple[str, str]]:
        """For each (agent, t, subject, won): what the agent wrote after t on the
        subject or under it (one join over the files for all of them)."""
        asked = pa.table({
            "agent": [a[0] for a in asks], "t": [a[1] for a in asks],
            "subject": [a[2] for a in asks], "won": [a[3] for a in asks],
        })  # fmt: skip
        self.con.register("asked", asked)
        try:
            rows = self.con.execute(
                "select a.id, k.won from assertions a join asked k on a.agent = k.agent "
                "and a.recorded_at > k.t and a.recorded_at <= $u "
                "and (a.subject = k.subject or starts_with(a.subject, k.subject || '/'))",
                {"u": until},
            ).fetchall()
        finally:
            self.con.unregister("asked")
        return [(i, w) for i, w in rows]


def run_system(
    name: str, lake_path: Path, db: Path, work: dict[str, Any], skip: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """Every question on one system, in this (fresh) process, but those in ``skip``."""
    system: Any = {"steme_lake": Ours, "duckdb": Duck, "sqlite": Sqlite}[name](
        db if name == "sqlite" else lake_path
    )
    out: dict[str, Any] = {}
    points = work["points"]
    t = time.perf_counter()
    system.open()
    out["open_s"] = round(time.perf_counter() - t, 4)
    system.point(*points[0])
    out["open_and_first_query_s"] = round(time.perf_counter() - t, 4)
    warm = system.warm_up()
    if warm is not None:
        out["warm_up_s"] = round(time.perf_counter() - t, 4)
        out["state_checkpoint"] = system.checkpoint()
    # Analysis first: the point queries below write audit records of their own.
    out["impact"], impacts = timed(lambda a=a: system.impact(a) for a in work["impact"])
    until = work.get("impact_until_us", 2**62)  # work.json from before it was kept: no limit
    deep: list[Any] | None = None
    if "impact_depth3" in skip:
        out["impact_depth3"] = None
    else:
        out["impact_depth3"], deep = timed(
            lambda a=a: system.impact_deep(a, until) for a in work["impact"]
        )
    out["trace_6h"], traces = timed(lambda d=d: system.trace(*d) for d in work["trace"])
    out["diff_24h"], diffs = timed(lambda d=d: system.diff(*d) for d in work["diff"])
    out["snapshot"], snaps = timed(lambda x=x: system.snapshot(x) for x in work["snapshot_us"])
    out["point_as_of"], past = timed(
        lambda s=s, p=p, x=x: system.point_as_of(s, p, x)
        for (s, p), x in zip(points, work["as_of_us"], strict=True)
    )
    out["point"], current = timed(lambda s=s, p=p: system.point(s, p) for s, p in points)
    system.close()
    out["peak_rss_mib"] = peak_rss_mib()
    out["answers"] = {
        "point": current,
        "point_as_of": past,
        "snapshot": snaps,
        "diff_24h": [list(d) for d in diffs],
        "trace_6h": traces,
        "impact": impacts,
        "impact_depth3": deep,
    }
    return out


# ---------------------------------------------------------------- single writes


def single_writes(lake_path: Path, db: Path, n: int) -> dict[str, Any]:
    """Durable one-at-a-time writes: the lake's assert_ against SQLite insert+commit."""
    lake = sl.open(lake_path)
    ours, _ = timed(
        lambda i=i: lake.assert_(
            f"bench/{i % 50}", "single_write", i, agent="bench", source=f"bench-{i}"
        )
        for i in range(n)
    )
    lake.close()
    con = sqlite_connect(db)

    def one(i: int) -> None:
        now = time.time_ns() // 1000
        con.execute("begin")
        con.execute(
            "insert into assertions values (?,?,?,?,?,?,?,?,?,?)",
            (os.urandom(32), now, f"bench/{i % 50}", "single_write", str(i), 0.9,
             os.urandom(32), "bench", "proposed", None),
        )  # fmt: skip
        con.execute("commit")

    theirs, _ = timed(lambda i=i: one(i) for i in range(n))
    con.close()
    return {"steme_lake": ours, "sqlite": theirs}


# ---------------------------------------------------------------- the run


def agreement(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Where the systems' answers differ (they must not); a workload skipped on
    either side (``--skip``) is not compared."""
    ours = results["steme_lake"]["answers"]
    out: dict[str, Any] = {}
    for name in ("duckdb", "sqlite"):
        theirs = results[name]["answers"]
        diffs: dict[str, Any] = {}
        for key in ours:
            if ours[key] is None or theirs.get(key) is None:
                diffs[key] = "skipped"
                continue
            pairs = list(zip(ours[key], theirs[key], strict=True))
            bad = [i for i, (x, y) in enumerate(pairs) if x != y]
            diffs[key] = len(bad)
            if bad:
                diffs[f"{key}_examples"] = [[i, *pairs[i]] for i in bad[:3]]
        out[name] = diffs
    return out


def _machine() -> dict[str, Any]:
    import duckdb

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "versions": {
            "steme_lake": sl.__version__,
            "polars": pl.__version__,
            "pyarrow": pa.__version__,
            "duckdb": duckdb.__version__,
            "sqlite": sqlite3.sqlite_version,
        },
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1M", help="100k, 1M, 10M or a number of assertions")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--points", type=int, default=500, help="point queries per kind")
    parser.add_argument("--single-writes", type=int, default=300)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    parser.add_argument("--workdir", help="where to build the lake (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the lake and database")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --workdir: ask the questions again on the lake and database kept there "
        "(and keep them again)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--skip",
        default="",
        metavar="SYSTEM:WORKLOAD,...",
        help="workloads not to run, e.g. duckdb:impact_depth3,sqlite:impact_depth3 (the "
        "peers' level-by-level impact takes hours at 1M and up); reported as skipped. "
        f"Skippable: {', '.join(SKIPPABLE)}",
    )
    parser.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    skips = _skips(parser, args.skip)

    if args.system:  # a child process: one system's questions
        spec = json.loads(Path(args.work).read_text())
        result = run_system(
            args.system,
            Path(spec["lake"]),
            Path(spec["db"]),
            spec["work"],
            frozenset(w for system, w in skips if system == args.system),
        )
        print(json.dumps(result))
        return result

    plan = generate.plan_for(args.size, args.seed)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="steme-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    lake_path, db = root / "lake", root / "sqlite" / "bench.db"
    db.parent.mkdir(exist_ok=True)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    try:
        result = _run(args, plan, root, lake_path, db, say)
    finally:
        if not (args.keep or args.reuse):  # what is reused is kept for the next run
            shutil.rmtree(root, ignore_errors=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"lake-{args.size}-{time.strftime('%Y-%m-%d', time.gmtime())}"
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (out / f"{stem}.md").write_text(markdown(result))
    say(markdown(result))
    say(f"results: {out / stem}.json and .md")
    return result


def _run(
    args: argparse.Namespace,
    plan: generate.Plan,
    root: Path,
    lake_path: Path,
    db: Path,
    say: Callable[..., None],
) -> dict[str, Any]:
    prepared_file = root / "prepared.json"
    if args.reuse and prepared_file.exists():
        say(f"reusing the lake, database and ingest figures in {root}")
        prepared = json.loads(prepared_file.read_text())
    else:
        prepared = _prepare(args, plan, root, lake_path, db, say)
        prepared_file.write_text(json.dumps(prepared))
    # The lake's questions write audit records: ask them of a copy, so that every run
    # (and --reuse) finds the same data in all three systems.
    spec = json.loads((root / "work.json").read_text())
    asked = root / "lake-asked"
    shutil.rmtree(asked, ignore_errors=True)
    # Parquet files are never written in place (new files are renamed in, old ones
    # unlinked), so the copy links them: at 10M a full copy would need 11 GB more disk.
    shutil.copytree(spec["lake"], asked, copy_function=_link_or_copy)
    (root / "work-asked.json").write_text(json.dumps({**spec, "lake": str(asked)}))
    systems: dict[str, dict[str, Any]] = {}
    for name in ("duckdb", "sqlite", "steme_lake"):
        say(f"questions: {name} ...")
        work_file = root / ("work-asked.json" if name == "steme_lake" else "work.json")
        command = [sys.executable, __file__, "--system", name, "--work", str(work_file)]
        child = subprocess.run(
            [*command, "--skip", args.skip],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            raise SystemExit(f"{name} run failed:\n{child.stderr[-4000:]}")
        systems[name] = json.loads(child.stdout)
    shutil.rmtree(asked, ignore_errors=True)
    return {
        "benchmark": "lake",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": _machine(),
        "size": args.size,
        **prepared,
        "questions": {
            k: {kk: vv for kk, vv in v.items() if kk != "answers"} for k, v in systems.items()
        },
        "disagreements": agreement(systems),
    }


SKIPPABLE = ("impact_depth3",)


def _skips(parser: argparse.ArgumentParser, text: str) -> set[tuple[str, str]]:
    """``--skip`` as (system, workload) pairs; a misspelling names the close match."""
    out = set()
    for item in filter(None, (part.strip() for part in text.split(","))):
        system, _, work = item.partition(":")
        for got, known, what in ((system, SYSTEMS, "system"), (work, SKIPPABLE, "workload")):
            if got not in known:
                close = difflib.get_close_matches(got, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                parser.error(
                    f"--skip {item!r}: unknown {what} {got!r}{hint} "
                    f"(systems: {', '.join(SYSTEMS)}; workloads: {', '.join(SKIPPABLE)})"
                )
        out.add((system, work))
    return out


def _link_or_copy(src: str, dst: str) -> None:
    if src.endswith((".parquet", ".arrow")):  # never written in place (state checkpoints too)
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


def _prepare(
    args: argparse.Namespace,
    plan: generate.Plan,
    root: Path,
    lake_path: Path,
    db: Path,
    say: Callable[..., None],
) -> dict[str, Any]:
    """Generate the lake, load SQLite, time single writes; write the questions."""
    from tqdm import tqdm

    say(f"generating {plan.assertions:,} assertions into {lake_path} ...")
    lake = sl.open(lake_path)
    bar = tqdm(total=plan.hours, unit="h", disable=args.quiet, desc="generate")

    def progress(done: int, total: int) -> None:
        bar.update(done - bar.n)

    t = time.perf_counter()
    ingest = generate.generate(lake, plan, progress)
    bar.close()
    generate_s = time.perf_counter() - t
    t = time.perf_counter()
    lake.flush()
    flush_s = time.perf_counter() - t
    status = lake.status()
    lake.close()
    ingest_peak = peak_rss_mib()
    say("loading SQLite ...")
    sqlite_ingest = sqlite_load(lake_path, db, max(1, plan.assertions // plan.hours))
    work = workload(lake_path, plan, args.points)  # from the generated data only
    say("single durable writes ...")
    singles = single_writes(lake_path, db, args.single_writes)
    lake = sl.open(lake_path)
    lake.flush()  # DuckDB reads the files: it sees what the lake sees
    lake.close()
    (root / "work.json").write_text(
        json.dumps({"lake": str(lake_path), "db": str(db), "work": work})
    )
    return {
        "plan": {
            "assertions": plan.assertions,
            "seed": plan.seed,
            "audit_per_assertion": plan.audit_per_assertion,
            "agents": plan.agents,
            "subjects": plan.n_subjects,
            "days": plan.hours // 24,
        },
        "rows": {k: v["rows"] for k, v in status.tables.items() if v["rows"]},
        "bytes": {
            "steme_lake_parquet": sum(v["bytes"] for v in status.tables.values()),
            "sqlite": sqlite_ingest.pop("bytes"),
        },
        "ingest": {
            "steme_lake": ingest.to_dict(),
            "steme_lake_generate_s": round(generate_s, 2),
            "steme_lake_flush_s": round(flush_s, 2),
            "steme_lake_peak_rss_mib": ingest_peak,
            "sqlite": sqlite_ingest,
            "batch_rows": max(1, plan.assertions // plan.hours),
        },
        "single_writes": singles,
    }


# ---------------------------------------------------------------- the report

TARGETS: list[tuple[str, str, str, float | None, str]] = [
    # (label, key, figure, target in ms (or /s, or MiB), peer rule)
    ("current point query + audit", "point", "p99_ms", 2.0, "not slower than SQLite"),
    ("as-of point query", "point_as_of", "p99_ms", 50.0, ">= 10x faster than DuckDB"),
    ("whole-lake snapshot as of T", "snapshot", "p50_ms", 1500.0, "not slower than DuckDB"),
    ("24 h belief diff, subject glob", "diff_24h", "p50_ms", 300.0, "not slower than DuckDB"),
    ("agent trace, 6 h", "trace_6h", "p50_ms", 500.0, "not slower than DuckDB"),
    ("impact of one assertion (direct)", "impact", "p50_ms", None, ""),
    ("impact, 3 levels down", "impact_depth3", "p50_ms", 100.0, ""),
]


def _fmt(x: float | None, unit: str = "ms") -> str:
    if x is None:
        return "-"
    return f"{x:,.1f} {unit}" if x >= 10 else f"{x:,.2f} {unit}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    if not theirs or not ours:
        return "-"
    r = ours / theirs
    return f"{r:.2f}x ({'ours faster' if r < 1 else 'theirs faster'})"


def markdown(r: dict[str, Any]) -> str:
    q = r["questions"]
    ing = r["ingest"]
    lines = [
        f"# steme_lake vs DuckDB and SQLite: {r['size']} assertions ({r['date']})",
        "",
        f"Machine: {r['machine']['cpus']} cores, {r['machine']['processor']}, "
        f"{r['machine']['memory_gib']} GiB; Python {r['machine']['python']}; "
        + ", ".join(f"{k} {v}" for k, v in r["machine"]["versions"].items())
        + ".",
        "",
        "Rows: " + ", ".join(f"{k} {v:,}" for k, v in r["rows"].items()) + ".",
        "",
        "Ratios are ours / theirs: below 1 means steme_lake is faster.",
        "",
        "| workload | steme_lake | DuckDB | SQLite | ours / DuckDB | ours / SQLite "
        "| target | met? |",
        "|---|---|---|---|---|---|---|---|",
    ]
    a = ing["steme_lake"]["assertions"]["rows_per_second"]
    s = ing["sqlite"]["assertions"]["rows_per_second"]
    met = "yes" if a >= 300_000 and a >= 3 * s else "**no**"
    lines.append(
        f"| durable batch ingest ({ing['batch_rows']:,} rows a batch) | {a:,.0f} rows/s | - "
        f"| {s:,.0f} rows/s | - | {a / s:.2f}x (higher is better) "
        f"| >= 300,000/s and >= 3x SQLite | {met} |"
    )
    sw = r["single_writes"]
    lines.append(
        f"| single durable write | p50 {_fmt(sw['steme_lake']['p50_ms'])}, p99 "
        f"{_fmt(sw['steme_lake']['p99_ms'])} | - | p50 {_fmt(sw['sqlite']['p50_ms'])}, p99 "
        f"{_fmt(sw['sqlite']['p99_ms'])} | - "
        f"| {_ratio(sw['steme_lake']['p99_ms'], sw['sqlite']['p99_ms'])} | | |"
    )
    for label, key, fig, target, rule in TARGETS:
        o, d, sq = (q[n][key] or {} for n in ("steme_lake", "duckdb", "sqlite"))
        cell = lambda x: (  # noqa: E731
            f"p50 {_fmt(x['p50_ms'])}, p99 {_fmt(x['p99_ms'])}" if x else "skipped"
        )
        mine, duck, lite = o.get(fig), d.get(fig), sq.get(fig)
        ok = mine is not None and (target is None or mine <= target)
        if "SQLite" in rule:
            ok = ok and lite is not None and mine <= lite
        elif "10x" in rule:
            ok = ok and duck is not None and mine * 10 <= duck
        elif "DuckDB" in rule:
            ok = ok and duck is not None and mine <= duck
        tgt = "" if target is None else f"{fig.split('_')[0]} <= {_fmt(target)}; {rule}"
        lines.append(
            f"| {label} | {cell(o)} | {cell(d)} | {cell(sq)} | {_ratio(mine, duck)} "
            f"| {_ratio(mine, lite)} | {tgt} | {('yes' if ok else '**no**') if tgt else ''} |"
        )
    o, d, sq = (q[n] for n in ("steme_lake", "duckdb", "sqlite"))
    lines.append(
        f"| open + first query | {_fmt(o['open_and_first_query_s'] * 1000)} "
        f"| {_fmt(d['open_and_first_query_s'] * 1000)} "
        f"| {_fmt(sq['open_and_first_query_s'] * 1000)} "
        f"| | | <= 3 s | {'yes' if o['open_and_first_query_s'] <= 3 else '**no**'} |"
    )
    if "warm_up_s" in o:
        lines.append(
            f"| open until point queries use the index | {_fmt(o['warm_up_s'] * 1000)} "
            "| - | - | | | | |"
        )
    peak = max(o["peak_rss_mib"], ing["steme_lake_peak_rss_mib"])
    lines.append(
        f"| peak memory (questions / ingest) | {o['peak_rss_mib']:,.0f} / "
        f"{ing['steme_lake_peak_rss_mib']:,.0f} MiB | {d['peak_rss_mib']:,.0f} MiB "
        f"| {sq['peak_rss_mib']:,.0f} MiB | | | <= 6 GiB | {'yes' if peak <= 6144 else '**no**'} |"
    )
    lines += [
        "",
        "Other ingest (steme_lake, rows/s): "
        + ", ".join(
            f"{k} {v['rows_per_second']:,.0f}"
            for k, v in ing["steme_lake"].items()
            if k != "assertions"
        )
        + f"; flush to Parquet {ing['steme_lake_flush_s']} s. "
        f"Sizes: lake Parquet {r['bytes']['steme_lake_parquet'] / 2**20:,.0f} MiB, "
        f"SQLite {r['bytes']['sqlite'] / 2**20:,.0f} MiB.",
        "",
        "Disagreements between the systems' answers (must be 0): "
        + "; ".join(
            f"{name}: " + ", ".join(f"{k} {v}" for k, v in d.items() if "examples" not in k)
            for name, d in r["disagreements"].items()
        )
        + ".",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
