"""Long work reports its progress: an import by stage, a flush by rows written."""

from __future__ import annotations

import json

import steme_lake as sl


def test_import_reports_each_stage(tmp_lake: sl.Lake) -> None:
    lines = [
        json.dumps({"op": "assert", "ref": f"r{i}", "at": f"2026-01-01T00:00:00.{i:06d}Z",
                    "agent": "a", "subject": f"s/{i}", "predicate": "p", "object": i,
                    "source": "src", "confidence": 0.5})
        for i in range(2500)
    ] + [json.dumps({"op": "query", "at": "2026-01-01T01:00:00Z", "agent": "b",
                     "subject": "s/1", "predicate": "p"})]  # fmt: skip
    seen: list[tuple[str, int, int]] = []
    counts = tmp_lake.import_events(lines, progress=lambda *a: seen.append(a))
    assert counts == {"assert": 2500, "query": 1}
    stages = [s for s, _, _ in seen]
    assert stages.index("read") < stages.index("replay") < stages.index("commit")
    reads = [(d, t) for s, d, t in seen if s == "read"]
    assert reads[0] == (1000, 2501) and reads[-1] == (2501, 2501)
    assert ("replay", 1, 1) in seen and seen[-1] == ("commit", 2501, 2501)


def test_flush_reports_the_rows_written(tmp_lake: sl.Lake) -> None:
    for day in (1, 2, 3):
        tmp_lake.assert_("a/b", "p", day, agent="x", source="s", at=f"2026-01-0{day}T00:00:00Z")
    tmp_lake.vote(tmp_lake.assertions.collect()["id"][0], agent="y")
    seen: list[tuple[int, int]] = []
    flushed = tmp_lake.flush(progress=lambda done, total: seen.append((done, total)))
    assert flushed == 4
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # one tick per file written
    assert seen[-1] == (4, 4) and len(seen) == 4  # three days of assertions, one of votes
