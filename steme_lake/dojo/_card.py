"""The export's dataset card: a Hugging Face YAML header (configs per folder,
license, task categories, size) and a datasheet (Gebru et al.: motivation,
composition, collection, preprocessing, uses, maintenance) whose counts are the
manifest's."""

from __future__ import annotations

from typing import Any

__all__ = ["card"]

_KIND_TEXT = {
    "proposal_as_decision": (
        "negative: an unapproved proposal answered while an approved decision existed"
    ),
    "invalidated_answer": "negative: an answer whose assertion was later superseded",
    "contested_acted_on": "negative: a contested or low-agreement answer the asker then acted on",
    "constraint_violation": "negative: a proposal or write that a constraint in force forbade",
    "approved_answer": "positive: an approved answer that stayed unsuperseded through the holdout",
    "constraint_honoured": "positive: a pre-flight check whose proposal honoured the constraints",
    "corrected_path": "positive: the corrected answer of an incident, with the correction's reason",
}


def _size(n: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if n < limit:
            return name
    return "10M<n<100M"


def card(info: dict[str, Any], samples: int) -> str:
    counts = info["counts"]
    rows: dict[str, dict[str, int]] = counts["rows"]
    params = info["parameters"]
    yaml = ["---", f"license: {params['license']}", f"pretty_name: {info['name']}"]
    yaml += ["task_categories:", "- text-generation", "language:", "- en", "tags:"]
    yaml += [f"- {t}" for t in ("dpo", "kto", "sft", "preference", "agents", "steme_lake")]
    yaml += ["size_categories:", f"- {_size(samples)}"]
    configs = [(c, s) for c, s in rows.items() if s]
    if configs:
        yaml.append("configs:")
        for config, splits in configs:
            yaml.append(f"- config_name: {config}")
            if config == "preference":
                yaml.append("  default: true")
            yaml.append("  data_files:")
            for split in splits:
                yaml += [f"  - split: {split}", f"    path: {config}/{split}-*.parquet"]
    yaml.append("---")
    lake = info["lake"]
    window = (
        f"{params.get('since') or 'the beginning'} to {params.get('until') or 'the as-of time'}"
    )
    lines = [
        *yaml,
        "",
        f"# {info['name']}",
        "",
        "Labelled examples of agent behaviour mined by the steme_lake Dojo from a lake's "
        "history: what agents were told, what they did with it, and what turned out to hold.",
        "",
    ]
    if samples == 0:
        lines += [
            "**This export holds no samples**: no incidents, corrections, constraint checks "
            f"or held-out approved answers in the window ({window}) as of {info['as_of']}. "
            "There are no data files.",
            "",
        ]
    lines += [
        "## Motivation",
        "",
        "To train and evaluate agents that read a shared knowledge base: to prefer approved "
        "decisions over unreviewed proposals, to honour constraints, to hold back on contested "
        "beliefs, and to follow corrections. Each negative is paired with what should have "
        "been done instead.",
        "",
        "## Composition",
        "",
        f"{samples} samples (after exact de-duplication). Files per config and split:",
        "",
        "| config | " + " | ".join(("train", "validation", "test")) + " |",
        "|---|---|---|---|",
    ]
    for config, splits in rows.items():
        lines.append(
            f"| {config} | "
            + " | ".join(str(splits.get(s, 0)) for s in ("train", "validation", "test"))
            + " |"
        )
    lines += ["", "Samples per kind:", "", "| kind | samples | meaning |", "|---|---|---|"]
    for kind, n in counts["by_kind"].items():
        lines.append(f"| `{kind}` | {n} | {_KIND_TEXT.get(kind, '')} |")
    lines += [
        "",
        "- `preference/`: `prompt`, `chosen`, `rejected` (lists of `{role, content}`; the "
        "prompt is a system and a user message, chosen and rejected one assistant message "
        "each): TRL's conversational preference format (DPO, ORPO, reward models).",
        "- `unpaired/`: `prompt`, `completion`, `label` (true: desirable): KTO and BCO.",
        "- `sft/`: `messages` (the prompt and the desirable answer): supervised fine-tuning.",
        "- every file also has `sample_id`, `kind`, `subject`, `predicate`, `agent` (who "
        "asked) and `asked_at`; `manifest/samples.parquet` has each sample's provenance (the "
        "query, assertion, supersession, constraint and vote ids, agents, sources), split, "
        "group key and content hash; every id resolves in the lake.",
        "",
        "## Collection process",
        "",
        f"Mined from the lake at `{info['lake_path']}` as of {info['as_of']} (last sequence "
        f"number {lake['last_seq']}), events from {window}. Each prompt is built from the "
        "lake as it stood at the sample's own event (the question, its filters, and the "
        "candidates with lifecycle, votes and source that existed then), never from the "
        "export time. Questions about the past (as-of investigations) are not samples.",
        "",
        "## Preprocessing",
        "",
        f"- exact duplicates (same content without the asker and the times): "
        f"{counts['duplicates_merged']} merged into their first occurrence;",
        "- pairs whose chosen equals rejected: "
        f"{counts['dropped']['chosen_equals_rejected']} dropped;",
        f"- samples touching excluded sources: {counts['dropped']['excluded_sources']} dropped;",
        f"- near-duplicates (MinHash, Jaccard >= {params['near']}) grouped with their incident;",
        "- splits by a salted BLAKE3 hash of the group key (the incident's subject and "
        "predicate, supersession and near-duplicate cluster): an incident never spans two "
        f"splits; fractions {params['fractions']}"
        + (f", test = incidents from {params['test_after']} on" if params.get("test_after") else "")
        + ".",
        "",
        "## Uses",
        "",
        "```python",
        "from datasets import load_dataset",
        'pref = load_dataset("parquet", data_files={"train": "preference/train-*.parquet"})',
        '# or, from this folder: load_dataset(path_to_this_folder, "preference")',
        '# trl.DPOTrainer(train_dataset=pref["train"], ...); KTOTrainer on unpaired/; '
        "SFTTrainer on sft/",
        "```",
        "",
        "Not for judging the agents or people named in it: the labels say what the lake "
        "learned later, not who was at fault. Values are operational facts of the lake's "
        "owner; review before sharing outside it.",
        "",
        "## Maintenance",
        "",
        "Regenerate with the same parameters and as-of time to get byte-identical files "
        "(`export.json` records them):",
        "",
        "```",
        info["command"],
        "```",
        "",
    ]
    return "\n".join(lines)
