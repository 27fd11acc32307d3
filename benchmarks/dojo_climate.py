"""The Dojo's quality on real labels: CLIMATE-FEVER's claims, graded.

Imports CLIMATE-FEVER (``../shared/datasets/climate-fever.jsonl``) as a review
workload (`steme_lake.io.climate_fever.climate_fever_review_events`: claims as
subjects, evidence sentences as proposed verdicts, annotators' labels as
votes, a reviewer who approves only one-sided evidence, agents who ask and
act). The claims' own labels never enter the lake. Exports, then grades every
sample against the dataset's label of its claim:

- ``chosen_agrees``: the chosen answer is the claim's label, or an abstention
  ("no settled answer") on a NOT_ENOUGH_INFO or DISPUTED claim;
- ``rejected_agrees``: the same for the rejected side (it should be rare);
- ``confident``: the chosen answer is SUPPORTS or REFUTES. On NOT_ENOUGH_INFO
  and DISPUTED claims it must be zero.

    python benchmarks/dojo_climate.py [--limit N] [--out FILE.json]

Reports; never asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import steme_lake as sl  # noqa: E402
from steme_lake._utils.progress import Bars  # noqa: E402
from steme_lake.io.climate_fever import climate_fever_review_events  # noqa: E402

DATA = REPO.parent / "shared" / "datasets" / "climate-fever.jsonl"
UNSURE = ("NOT_ENOUGH_INFO", "DISPUTED")
VERDICTS = ("SUPPORTS", "REFUTES")


def grade(lake: sl.Lake, manifest: pl.LazyFrame, labels: dict[str, str]) -> pl.DataFrame:
    """One row per sample: its claim's label, the chosen and rejected values
    (``None``: an abstention / no rejected side) and the grades."""
    values = lake.assertions.select(
        "id", pl.col("object").str.json_decode(pl.String).alias("value")
    ).collect()
    return (
        manifest.select(
            "sample_id",
            "kind",
            "label",
            "subject",
            "chosen_assertion",
            "rejected_assertion",
            "split",
        )
        .collect()
        .with_columns(pl.col("subject").replace_strict(labels, default=None).alias("claim_label"))
        .join(
            values.rename({"id": "chosen_assertion", "value": "chosen"}),
            on="chosen_assertion",
            how="left",
        )
        .join(
            values.rename({"id": "rejected_assertion", "value": "rejected"}),
            on="rejected_assertion",
            how="left",
        )
        .with_columns(
            pl.col("chosen").is_in(VERDICTS).alias("confident"),
            (
                (pl.col("chosen") == pl.col("claim_label"))
                | (pl.col("chosen").is_null() & pl.col("claim_label").is_in(UNSURE))
            ).alias("chosen_agrees"),
            (pl.col("rejected") == pl.col("claim_label")).alias("rejected_agrees"),
        )
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--limit", type=int, help="only the first N claims")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    claims = [json.loads(line) for line in Path(args.data).read_text().splitlines()]
    claims = claims[: args.limit] if args.limit else claims
    labels = {f"climate/claim/{c['claim_id']}": c["claim_label"] for c in claims}
    with tempfile.TemporaryDirectory() as tmp:
        lake = sl.open(Path(tmp) / "lake")
        t0 = time.perf_counter()
        with Bars("CLIMATE-FEVER") as bars:
            events = list(climate_fever_review_events(args.data, limit=args.limit))
            counts = lake.import_events(events, progress=bars)
        imported = time.perf_counter() - t0
        t1 = time.perf_counter()
        manifest = lake.dojo.export(Path(tmp) / "export")
        exported = time.perf_counter() - t1
        graded = grade(lake, manifest, labels)
        lake.close()
    by = (
        graded.group_by("kind", "claim_label")
        .agg(
            pl.len().alias("samples"),
            pl.col("chosen_agrees").sum(),
            pl.col("rejected_agrees").sum(),
            pl.col("confident").sum(),
        )
        .sort("kind", "claim_label")
    )
    pairs = graded.filter(pl.col("label") == "negative")
    unsure = graded.filter(pl.col("claim_label").is_in(UNSURE))
    result = {
        "benchmark": "dojo_climate_fever",
        "claims": len(claims),
        "claims_by_label": dict(
            sorted(pl.Series(list(labels.values())).value_counts().iter_rows())
        ),
        "events": counts,
        "import_s": round(imported, 2),
        "export_s": round(exported, 2),
        "samples": graded.height,
        "preference_pairs": pairs.height,
        "pairs_chosen_agrees": int(pairs["chosen_agrees"].sum()),
        "pairs_chosen_agrees_rate": round(float(pairs["chosen_agrees"].mean() or 0.0), 4),
        "pairs_rejected_agrees": int(pairs["rejected_agrees"].sum()),
        "positives_chosen_agrees_rate": round(
            float(graded.filter(pl.col("label") == "positive")["chosen_agrees"].mean() or 0.0), 4
        ),
        "unsure_claim_samples": unsure.height,
        "unsure_claim_confident_chosen": int(unsure["confident"].sum()),
        "by_kind_and_claim_label": by.to_dicts(),
        "disagreements": graded.filter(~pl.col("chosen_agrees"))
        .select("kind", "subject", "claim_label", "chosen", "rejected")
        .head(20)
        .to_dicts(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return result


if __name__ == "__main__":
    main()
