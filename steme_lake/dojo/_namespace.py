"""``lake.dojo``: the lake's history as training data."""

from __future__ import annotations

import difflib
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from steme_lake._exceptions import ValidationError
from steme_lake._utils.timeparse import TimeLike, now_us, to_us, us_to_iso
from steme_lake.dojo import _pipeline
from steme_lake.dojo._distributed import prepare_on
from steme_lake.dojo._export import CONFIGS, check_target, write_export
from steme_lake.dojo._hygiene import Hygiene
from steme_lake.dojo._mine import KINDS, MineOptions
from steme_lake.dojo._pipeline import Prepared, prepare, preview
from steme_lake.engine import Engine, engine_for
from steme_lake.query._paths import subject_matcher

if TYPE_CHECKING:
    from steme_lake.lake import Lake

__all__ = ["DojoNamespace"]


def _kinds(kinds: Sequence[str] | str | None) -> tuple[str, ...]:
    if kinds is None:
        return KINDS
    wanted = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not wanted:
        raise ValidationError(f"kinds is empty; name one or more of: {', '.join(KINDS)}")
    for kind in wanted:
        if kind not in KINDS:
            close = difflib.get_close_matches(str(kind), KINDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValidationError(f"unknown sample kind {kind!r}{hint} (kinds: {', '.join(KINDS)})")
    return tuple(k for k in KINDS if k in wanted)


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValidationError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)


class DojoNamespace:
    """The Dojo, reached as ``lake.dojo``: incidents, corrections and constraint
    checks as labelled training data (`steme_lake.dojo.KINDS`).

    - `samples`: preview the samples (a Polars frame), writing nothing;
    - `stats`: how many samples of each kind land in each split;
    - `export`: write them as Parquet that TRL, Axolotl and ``datasets`` load as
      they are (preference, unpaired and SFT folders, a manifest, a dataset card).

    Examples
    --------
    >>> import steme_lake as sl, tempfile
    >>> lake = sl.open(tempfile.mkdtemp())
    >>> ok = lake.assert_("auth/jwt", "alg", "RS256", agent="team", source="adr",
    ...                   lifecycle="approved", at="2026-01-01T10:00:00Z")
    >>> bad = lake.assert_("auth/jwt", "alg", "ES256", agent="bot", source="rfc",
    ...                    at="2026-01-02T10:00:00Z")
    >>> _ = lake.query("auth/jwt", "alg", agent="deployer")
    >>> lake.dojo.samples(kinds=["proposal_as_decision"])["rejected"][0][0]["content"]
    'ES256'
    >>> lake.close()
    """

    def __init__(self, lake: Lake) -> None:
        self._lake = lake

    # ------------------------------------------------------------ mining

    def _as_of(self, as_of: TimeLike | None) -> int:
        last = self._lake._wal.last_time
        if as_of is None:
            return last  # the lake's position: the same export twice is the same files
        t = to_us(as_of, name="as_of")
        if t > max(now_us(), last):
            raise ValidationError(
                f"as_of {us_to_iso(t)} is in the future; the lake holds nothing after "
                f"{us_to_iso(max(now_us(), last))}. Give a past time or leave as_of out"
            )
        return t

    def _mine(
        self,
        kinds: Sequence[str] | str | None,
        since: TimeLike | None,
        until: TimeLike | None,
        subject: str | None,
        as_of: TimeLike | None,
        options: MineOptions,
        limit: int | None = None,
    ) -> tuple[pl.DataFrame, int, int]:
        """The samples, the as-of time, and how many were dropped for resting on an
        excluded source."""
        t = self._as_of(as_of)
        start, end = _window(since, until)
        tables, _ = self._lake._view()
        samples, left_out = preview(
            tables,
            self._lake.audit,
            kinds=_kinds(kinds),
            since=start,
            until=end,
            subject=subject_matcher(subject),
            as_of=t,
            options=options,
            limit=limit,
            chunk_rows=_pipeline.CHUNK_ROWS,
            slice_questions=_pipeline.SLICE_QUESTIONS,
        )
        return samples, t, left_out

    def samples(
        self,
        *,
        kinds: Sequence[str] | str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        subject: str | None = None,
        as_of: TimeLike | None = None,
        holdout_days: float = 7.0,
        horizon_hours: float = 24.0,
        low_agreement: float = 0.6,
        show: int = 12,
        exclude_sources: Sequence[str] = (),
        limit: int | None = None,
    ) -> pl.DataFrame:
        """The samples whose events happened in ``[since, until]`` on ``subject`` (a
        path or glob), with the lake as it stood at ``as_of`` (default: its last
        record), exact duplicates kept once, in event order. Writes nothing.

        Everything is rendered in memory: on a big lake give ``limit`` (mining
        stops once that many are found; ``duplicates`` then counts only the
        copies among what was read), or use `stats` and `export`, which work in
        chunks.

        One row per sample: ``sample_id``, ``kind`` (`steme_lake.dojo.KINDS`),
        ``label`` (``negative`` / ``positive``), the event (``query_id``,
        ``agent``, ``subject``, ``predicate``, ``asked_at``), ``prompt``,
        ``chosen`` and ``rejected`` as lists of ``{role, content}`` (TRL's
        conversational shape; a positive has ``chosen`` only), the provenance
        ids, ``content_hash`` and ``duplicates`` (merged copies).
        See `steme_lake.dojo._mine` for each kind and `MineOptions` for the knobs.
        """
        options = _options(holdout_days, horizon_hours, low_agreement, show, exclude_sources)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValidationError(f"limit must be a positive integer or None, got {limit!r}")
        return self._mine(kinds, since, until, subject, as_of, options, limit)[0]

    def stats(self, **params: Any) -> pl.DataFrame:
        """How many samples of each kind each split would get (`export`'s parameters
        but the path); one row per (kind, label, split)."""
        unknown = sorted(set(params) - set(_EXPORT_PARAMS))
        if unknown:
            raise _unknown(unknown[0])
        prepared = self._prepare(self._settings(**params), None, None)
        return (
            prepared.index.group_by(
                pl.col("kind").cast(pl.String),
                pl.when("negative").then(pl.lit("negative")).otherwise(pl.lit("positive"))
                .alias("label"),
                "split",
            )
            .agg(pl.len().alias("samples"), pl.col("duplicates").sum().alias("duplicates"))
            .sort("label", "kind", "split")
        )  # fmt: skip

    def _settings(
        self,
        *,
        kinds: Sequence[str] | str | None = None,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        subject: str | None = None,
        as_of: TimeLike | None = None,
        test_after: TimeLike | None = None,
        fractions: Sequence[float] = (0.8, 0.1, 0.1),
        salt: str = "steme-dojo-v1",
        near: float = 0.9,
        holdout_days: float = 7.0,
        horizon_hours: float = 24.0,
        low_agreement: float = 0.6,
        show: int = 12,
        exclude_sources: Sequence[str] = (),
    ) -> _Settings:
        options = _options(holdout_days, horizon_hours, low_agreement, show, exclude_sources)
        fr = tuple(fractions)
        if (
            len(fr) != 3
            or any(isinstance(f, bool) or not isinstance(f, int | float) or f < 0 for f in fr)
            or abs(sum(fr) - 1.0) > 1e-9
        ):
            raise ValidationError(
                f"fractions must be three non-negative numbers (train, validation, test) "
                f"that sum to 1, got {fractions!r}"
            )
        if not isinstance(salt, str) or not salt:
            raise ValidationError("salt must be non-empty text")
        hygiene = Hygiene(
            fractions=(float(fr[0]), float(fr[1]), float(fr[2])),
            salt=salt,
            near=_number("near", near, 0.5, 1.0),
            test_after=None if test_after is None else to_us(test_after, name="test_after"),
        )
        start, end = _window(since, until)
        return _Settings(
            kinds=_kinds(kinds),
            since=start,
            until=end,
            subject=subject_matcher(subject),
            subject_text=subject,
            as_of=self._as_of(as_of),
            options=options,
            hygiene=hygiene,
        )

    def _prepare(
        self,
        settings: _Settings,
        spill: Path | None,
        progress: Callable[[int], None] | None,
        engine: Engine | None = None,
    ) -> Prepared:
        if engine is not None:
            return prepare_on(
                engine, self._lake, kinds=settings.kinds, since=settings.since,
                until=settings.until, subject=settings.subject_text, as_of=settings.as_of,
                options=settings.options, hygiene=settings.hygiene, spill=spill,
                progress=progress, chunk_rows=_pipeline.CHUNK_ROWS,
                most=_pipeline.SLICE_QUESTIONS,
            )  # fmt: skip
        tables, _ = self._lake._view()
        return prepare(
            tables,
            self._lake.audit,
            kinds=settings.kinds,
            since=settings.since,
            until=settings.until,
            subject=settings.subject,
            as_of=settings.as_of,
            options=settings.options,
            hygiene=settings.hygiene,
            spill=spill,
            chunk_rows=_pipeline.CHUNK_ROWS,
            slice_questions=_pipeline.SLICE_QUESTIONS,
            progress=progress,
        )

    # ------------------------------------------------------------ export

    def export(
        self,
        path: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        openai: bool = False,
        shard_rows: int = 100_000,
        license: str = "other",
        name: str | None = None,
        progress: Callable[[int], None] | None = None,
        engine: str | Engine | None = None,
        address: str | None = None,
        _root: str | os.PathLike[str] | None = None,
        **params: Any,
    ) -> pl.LazyFrame:
        """Write the samples to the folder ``path`` and return the manifest (one row
        per sample: provenance, split, group key, the configs it is in) as a
        `polars.LazyFrame` over ``manifest/samples.parquet``: ``.collect()`` it,
        or the parts you need (at a million samples it is gigabytes).

        Memory follows the chunk, not the lake: prompts are rendered and written
        25,000 samples at a time and questions mined 500,000 at a time, with a
        small index per sample kept for de-duplication, clusters and splits.

        Takes `samples`'s parameters (``kinds``, ``since``, ``until``,
        ``subject``, ``as_of``, ...) and: ``test_after`` (a temporal holdout:
        incidents from then on form the test split), ``fractions`` (train,
        validation, test; default 0.8/0.1/0.1), ``salt`` (the split hash's),
        ``near`` (MinHash Jaccard for near-duplicates, default 0.9),
        ``overwrite`` (replace a non-empty folder), ``openai`` (also write
        OpenAI fine-tuning JSONL), ``shard_rows`` (rows per Parquet file),
        ``license`` and ``name`` (for the dataset card).

        ``engine="ray"`` mines and renders on a Ray cluster (``address``, else
        ``RAY_ADDRESS``), one task per time slice, each reading the lake's files
        itself; this process numbers, de-duplicates, splits and writes, and the
        files are the same bytes as a local export's (`steme_lake.engine`).

        A window with no samples gives an empty export whose card says so.
        Nothing is left behind when anything fails (the files are written to a
        hidden folder beside ``path`` and renamed into place at the end).
        """
        unknown = sorted(set(params) - set(_EXPORT_PARAMS))
        if unknown:
            raise _unknown(unknown[0])
        if isinstance(shard_rows, bool) or not isinstance(shard_rows, int) or shard_rows < 1:
            raise ValidationError(f"shard_rows must be a positive integer, got {shard_rows!r}")
        if not isinstance(license, str) or not license.strip() or "\n" in license:
            raise ValidationError("license must be one line of text, such as 'cc-by-4.0'")
        target = check_target(
            Path(path),
            overwrite=bool(overwrite),
            forbidden=self._lake.path,
            root=None if _root is None else Path(_root),
        )
        chosen = engine_for(engine, address=address)
        settings = self._settings(**params)
        t = settings.as_of
        shown = {
            k: (list(v) if isinstance(v, tuple | list) else v) for k, v in sorted(params.items())
        }
        parameters = {**_DEFAULTS, **shown, "license": license}
        for key in ("since", "until", "test_after"):
            if parameters.get(key) is not None:
                parameters[key] = us_to_iso(to_us(parameters[key], name=key))
        parameters["as_of"] = us_to_iso(t)
        parameters["kinds"] = list(_kinds(parameters.get("kinds")))
        parameters["exclude_sources"] = sorted(parameters.get("exclude_sources") or [])
        title = name or f"steme_lake Dojo export of {self._lake.path.name}"
        args = " ".join(
            f"--{k.replace('_', '-')} {shlex.quote(_flag(v))}"
            for k, v in sorted(parameters.items())
            if v is not None
            and k != "license"
            and v != _DEFAULTS.get(k)
            and not (k == "kinds" and tuple(v) == KINDS)
        )
        info = {
            "format": "steme_lake.dojo",
            "name": title,
            "lake_path": self._lake.uri,
            "as_of": us_to_iso(t),
            "lake": {
                "last_seq": self._lake._wal.last_seq,
                "last_time": us_to_iso(self._lake._wal.last_time),
            },
            "parameters": parameters,
            "command": f"steme dojo export --lake {shlex.quote(self._lake.uri)} OUT {args}",
            "configs": list(CONFIGS),
        }
        return write_export(
            target,
            lambda spill: self._prepare(settings, spill, None, chosen),
            info=info,
            shard_rows=shard_rows,
            openai=bool(openai),
            progress=progress,
        )


_DEFAULTS: dict[str, Any] = {
    "kinds": None,
    "since": None,
    "until": None,
    "subject": None,
    "as_of": None,
    "test_after": None,
    "fractions": [0.8, 0.1, 0.1],
    "salt": "steme-dojo-v1",
    "near": 0.9,
    "holdout_days": 7.0,
    "horizon_hours": 24.0,
    "low_agreement": 0.6,
    "show": 12,
    "exclude_sources": [],
}
_EXPORT_PARAMS = tuple(_DEFAULTS)


@dataclass(frozen=True, slots=True)
class _Settings:
    """An export's checked parameters."""

    kinds: tuple[str, ...]
    since: int | None
    until: int | None
    subject: pl.Expr | None
    subject_text: str | None
    as_of: int
    options: MineOptions
    hygiene: Hygiene


def _window(since: TimeLike | None, until: TimeLike | None) -> tuple[int | None, int | None]:
    start = None if since is None else to_us(since, name="since")
    end = None if until is None else to_us(until, name="until")
    if start is not None and end is not None and start > end:
        raise ValidationError(f"since ({since}) is after until ({until}); swap them")
    return start, end


def _flag(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _unknown(name: str) -> ValidationError:
    close = difflib.get_close_matches(name, _EXPORT_PARAMS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return ValidationError(
        f"unknown parameter {name!r}{hint} (parameters: {', '.join(_EXPORT_PARAMS)})"
    )


def _options(
    holdout_days: Any, horizon_hours: Any, low_agreement: Any, show: Any, exclude: Any
) -> MineOptions:
    if isinstance(show, bool) or not isinstance(show, int) or not 1 <= show <= 200:
        raise ValidationError(f"show must be an integer from 1 to 200, got {show!r}")
    if isinstance(exclude, str) or not all(isinstance(s, str) for s in exclude):
        raise ValidationError("exclude_sources must be a list of source hashes")
    return MineOptions(
        holdout_days=_number("holdout_days", holdout_days, 0, 3650),
        horizon_hours=_number("horizon_hours", horizon_hours, 0, 24 * 365),
        low_agreement=_number("low_agreement", low_agreement, 0, 1),
        show=show,
        exclude_sources=tuple(exclude),
    )
