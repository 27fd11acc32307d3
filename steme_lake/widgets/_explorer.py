"""`Explorer`: one ipywidgets application for a postmortem, over the lake's own API.

Every panel is drawn from the same calls a person would type (`Lake.blame`,
`Lake.timeline`, `Lake.diff`, `Lake.trace`, `Lake.provenance`, `Lake.impact`,
``lake.trust.scores``), so what the explorer shows is what the API says. Reading
never writes to the audit log (the investigators' clicks are not questions the
agents asked); the two actions (mark incorrect, add a constraint) are ordinary
signed writes under the person's agent name, after a confirmation.
"""

from __future__ import annotations

import getpass
import html
import math
import re
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from steme_lake._exceptions import StemeLakeError, ValidationError
from steme_lake._utils.extras import require
from steme_lake._utils.timeparse import TimeLike, to_us, us_to_datetime
from steme_lake.lake._investigate import rows_json
from steme_lake.model.schema import LIFECYCLE_STAGES
from steme_lake.query._paths import subject_matcher
from steme_lake.widgets._chain import Chain, chain_of_assertion, chain_of_query, svg
from steme_lake.widgets._plot import LEGEND, Timeline, timeline_data
from steme_lake.widgets._text import short, shown

if TYPE_CHECKING:
    from steme_lake.lake import Lake
    from steme_lake.lake._investigate import Blame, Diff

__all__ = ["Explorer"]

STEP_SECONDS = 60  # the as-of slider moves a minute per step (arrow keys)
MAX_BELIEFS = 500  # (subject, predicate) pairs offered for one glob
MAX_SUBJECTS = 2_000  # subjects offered for completion (plus every top-level glob)
ANY_STAGE = "any stage"  # the lifecycle picker's "no filter"
MAX_QUESTIONS = 500  # an agent's questions offered in "Who asked" (the latest)
MAX_RESOLVED = 12  # answers resolved for the timeline's line per view (each is an as-of answer)
_ID = re.compile(r"^[0-9a-f]{64}$")
_CSS = """<style>
.steme-explorer .steme-answer {font-size: 1.25em; margin: 4px 0 8px 0}
.steme-explorer .steme-answer-value {font-weight: bold; font-family: monospace;
  background: #eef3fb; padding: 1px 6px; border-radius: 4px}
.steme-explorer .steme-note {color: #555}
.steme-explorer .steme-warn {color: #8a4b00; background: #fff4ce; padding: 3px 6px;
  border-radius: 4px}
.steme-explorer .steme-error {color: #9b1c1c; background: #fde2e1; padding: 3px 6px;
  border-radius: 4px}
.steme-explorer .steme-table {border-collapse: collapse; font-size: 0.9em; margin: 4px 0}
.steme-explorer .steme-table th {text-align: left; border-bottom: 1px solid #aab;
  padding: 2px 8px}
.steme-explorer .steme-table td {border-bottom: 1px solid #eef; padding: 2px 8px;
  font-family: monospace}
.steme-spinner {display: inline-block; width: 14px; height: 14px; border: 2px solid #ccd;
  border-top-color: #2c3e50; border-radius: 50%; animation: steme-spin 0.8s linear infinite;
  vertical-align: middle}
@keyframes steme-spin {to {transform: rotate(360deg)}}
</style>"""


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cell(value: Any) -> str:
    if value is None:
        return '<span class="steme-note">-</span>'
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    text = shown(value)
    if _ID.match(text):  # ids in full in the title, short on the page
        return f'<span title="{text}">{text[:12]}…</span>'
    return html.escape(short(text, 60))


def _table(frame: pl.DataFrame, *, rows: int = 20, empty: str = "none") -> str:
    """A frame as a compact HTML table: JSON values shown as text, ids short (in
    full on hover), times in ISO, the first ``rows`` rows and how many more."""
    if frame.is_empty():
        return f'<p class="steme-note"><i>{html.escape(empty)}</i></p>'
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
        for row in frame.head(rows).iter_rows()
    )
    more = frame.height - rows
    tail = f'<p class="steme-note">and {more:,} more rows</p>' if more > 0 else ""
    return f'<table class="steme-table"><tr>{head}</tr>{body}</table>{tail}'


def _msg(kind: str, text: str) -> str:
    return f'<div class="steme-{kind}">{html.escape(text)}</div>'


class Explorer:
    """An investigation console for one lake: pick a belief and a time, watch the
    answer change, see where it came from, who asked, who is trusted, and act.

    ``subject`` (a path or glob), ``predicate``, ``as_of``, ``lens`` and
    ``lifecycle`` set where it opens (the same names and meanings as
    `Lake.query`); ``agent`` picks the agent whose questions are listed;
    ``actor`` is the name the actions are written under (default
    ``human-<login>``). Display it as the last expression of a notebook cell.

    The widgets are attributes (``subject``, ``predicate``, ``when``, ``lens``,
    ``lifecycle``, ``window``, ``agent``, ``record`` and the rest), so a notebook or a
    test can drive it as a person would; ``timings`` holds each interaction's
    seconds.
    """

    def __init__(
        self,
        lake: Lake,
        *,
        subject: str | None = None,
        predicate: str | None = None,
        as_of: TimeLike | None = None,
        lens: str = "recency",
        lifecycle: str | None = None,
        agent: str | None = None,
        actor: str | None = None,
    ) -> None:
        w = require("ipywidgets", extra="notebooks", purpose="the explorer")
        with warnings.catch_warnings():  # bqscales sets trait metadata the pre-4.1 way
            warnings.filterwarnings("ignore", "metadata .* was set from the constructor")
            require("bqplot", extra="notebooks", purpose="the explorer's timeline")
        self._w = w
        self._lake = lake
        if lens not in lake.lenses:
            raise ValidationError(f"unknown lens {lens!r}; lenses: {', '.join(lake.lenses)}")
        if lifecycle is not None and lifecycle not in LIFECYCLE_STAGES:
            raise ValidationError(
                f"unknown lifecycle stage {lifecycle!r}; stages: {', '.join(LIFECYCLE_STAGES)}"
            )
        self.timings: dict[str, list[float]] = defaultdict(list)
        self._quiet = False  # True while one change sets several widgets
        self._blame: Blame | None = None
        self._pending: Callable[[], str] | None = None
        self._seen_seq = -1
        self._notice = ""
        self._stale: set[str] = set()
        self._fetched: tuple[datetime, datetime] | None = None
        self._asked_at: dict[str, datetime] = {}  # query id -> its time, from the trace
        self._diff: Diff | None = None
        self._trace: pl.DataFrame | None = None
        self._chain: Chain | None = None

        layout = w.Layout
        self.status = w.HTML()
        self.busy = w.HTML('<span class="steme-spinner"></span> working…',
                           layout=layout(visibility="hidden"))  # fmt: skip
        # --- where and when
        self.subject = w.Combobox(
            description="subject", placeholder="auth/* or auth/jwt", ensure_option=False,
            continuous_update=False, layout=layout(width="330px"),
        )  # fmt: skip
        self.predicate = w.Dropdown(description="belief", options=[], layout=layout(width="420px"))
        self.lens = w.Dropdown(description="lens", options=lake.lenses, value=lens,
                               layout=layout(width="220px"))  # fmt: skip
        self.lifecycle = w.Dropdown(
            description="lifecycle", value=lifecycle or ANY_STAGE, layout=layout(width="260px"),
            options=[ANY_STAGE, *LIFECYCLE_STAGES],
        )  # fmt: skip
        self.zoom = w.Dropdown(
            description="timeline", value=86_400, layout=layout(width="220px"),
            options=[("whole history", 0), ("a week", 7 * 86_400), ("a day", 86_400),
                     ("an hour", 3_600)],
        )  # fmt: skip
        self.when = w.IntSlider(
            description="as of", step=STEP_SECONDS, readout=False, continuous_update=False,
            layout=layout(width="720px"),
        )  # fmt: skip
        self.when_text = w.Text(continuous_update=False, layout=layout(width="190px"),
                                placeholder="2026-01-15T21:00:00Z")  # fmt: skip
        self.previous_event = w.Button(description="◀ event", tooltip="the previous marked event",
                                       layout=layout(width="80px"))  # fmt: skip
        self.next_event = w.Button(description="event ▶", tooltip="the next marked event",
                                   layout=layout(width="80px"))  # fmt: skip
        self.refresh_button = w.Button(
            description="⟳ refresh", layout=layout(width="90px"),
            tooltip="read the lake again (new records, new range)",
        )  # fmt: skip
        # --- the belief
        self.answer = w.HTML()
        self.timeline_note = w.HTML()
        self.timeline = Timeline()
        self.candidates = w.HTML()
        self.pick = w.Dropdown(description="assertion", options=[], layout=layout(width="520px"))
        self.explain_pick = w.Button(description="where did it come from?",
                                     layout=layout(width="190px"))  # fmt: skip
        # --- what changed
        self.window = w.IntRangeSlider(
            description="between", step=STEP_SECONDS, readout=False, continuous_update=False,
            layout=layout(width="720px"),
        )  # fmt: skip
        self.window_label = w.HTML()
        self.diff_view = w.HTML()
        # --- where it came from
        self.record = w.Text(description="record", placeholder="a query id or an assertion id",
                             continuous_update=False, layout=layout(width="640px"))  # fmt: skip
        self.chain_view = w.HTML()
        self.record_view = w.HTML()
        # --- who asked
        self.agent = w.Dropdown(description="agent", options=[], layout=layout(width="330px"))
        self.trace_view = w.HTML()
        self.trace_pick = w.Select(description="question", options=[], rows=6,
                                   layout=layout(width="720px"))  # fmt: skip
        # --- trust
        self.trust_view = w.HTML()
        # --- act
        self.actor = w.Text(description="as", value=actor or f"human-{_login()}",
                            layout=layout(width="300px"))  # fmt: skip
        self.reason = w.Text(description="reason", placeholder="why (required)",
                             layout=layout(width="640px"))  # fmt: skip
        self.mark_incorrect = w.Button(description="mark incorrect…", button_style="danger",
                                       layout=layout(width="160px"))  # fmt: skip
        self.forbidden = w.Text(description="forbidden", layout=layout(width="300px"))
        self.must_use = w.Text(description="must use", layout=layout(width="300px"))
        self.add_constraint = w.Button(description="add constraint…", button_style="warning",
                                       layout=layout(width="160px"))  # fmt: skip
        self.confirm = w.Button(description="confirm", button_style="danger",
                                layout=layout(width="100px", display="none"))  # fmt: skip
        self.cancel = w.Button(description="cancel", layout=layout(width="100px", display="none"))
        self.act_view = w.HTML()

        self.tabs = w.Tab(children=[
            w.VBox([self.answer, w.HBox([self.zoom, w.HTML(LEGEND)]), self.timeline.figure,
                    self.timeline_note,
                    self.candidates,
                    w.HBox([self.pick, self.explain_pick])]),
            w.VBox([w.HBox([self.window, self.window_label]), self.diff_view]),
            w.VBox([self.record, self.chain_view, self.record_view]),
            w.VBox([self.agent, self.trace_pick, self.trace_view]),
            w.VBox([self.trust_view]),
            w.VBox([self.actor, self.reason, w.HBox([self.mark_incorrect]),
                    w.HBox([self.forbidden, self.must_use, self.add_constraint]),
                    w.HBox([self.confirm, self.cancel]), self.act_view]),
        ])  # fmt: skip
        for i, title in enumerate(("Belief", "What changed", "Where it came from", "Who asked",
                                   "Trust", "Act")):  # fmt: skip
            self.tabs.set_title(i, title)
        self.widget = w.VBox(
            [
                w.HTML(_CSS),
                w.HBox([self.subject, self.predicate, self.lens, self.lifecycle]),
                w.HBox(
                    [
                        self.when,
                        self.when_text,
                        self.previous_event,
                        self.next_event,
                        self.refresh_button,
                    ]
                ),
                w.HBox([self.status, self.busy]),
                self.tabs,
            ]
        )
        self.widget.add_class("steme-explorer")
        hooks = {
            "as-of": self.when, "as-of-text": self.when_text, "window": self.window,
            "subject": self.subject, "questions": self.trace_pick, "tabs": self.tabs,
        }  # fmt: skip
        for name, control in hooks.items():
            control.add_class(f"steme-{name}")  # stable hooks for a browser (and its tests)

        self._load_lake()
        self._wire()
        start = self._clamp(
            self._t_last if as_of is None else us_to_datetime(to_us(as_of, name="as_of"))
        )
        with self._hold():
            self._set_time(start)
            if agent is not None:
                known = [value for _, value in self.agent.options]
                self.agent.value = agent if agent in known else None
        with self._hold():
            self.subject.value = subject or ""
        problem = self._pick_belief(predicate) if subject else None
        self._render()
        if problem:
            self._say("error", problem)
        if agent is not None and self.agent.value is None:
            self._say("warn", f"no questions by {agent!r} in the audit log")

    # ------------------------------------------------------------ display

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    @property
    def shown_value(self) -> str | None:
        """The answer's value as the panel shows it (None: no answer)."""
        b = self._blame
        return shown(b.answer.value) if b is not None and b.answer.answered else None

    @property
    def blame(self) -> Blame | None:
        """What the belief panel shows: `Lake.blame` at the chosen time and filters."""
        return self._blame

    @property
    def as_of(self) -> datetime:
        """The time the belief panel shows (the slider's)."""
        return datetime.fromtimestamp(self.when.value, UTC)

    @property
    def view(self) -> tuple[datetime, datetime] | None:
        """The time span the timeline shows (read from the lake for it)."""
        return self._fetched

    @property
    def diff(self) -> Diff | None:
        """What the "What changed" panel shows (`Lake.diff` between the two times)."""
        return self._diff

    @property
    def trace(self) -> pl.DataFrame | None:
        """What the "Who asked" panel shows (`Lake.trace` of the picked agent)."""
        return self._trace

    @property
    def chain(self) -> Chain | None:
        """The graph the "Where it came from" panel draws."""
        return self._chain

    # ------------------------------------------------------------ loading

    def _load_lake(self) -> None:
        lake = self._lake
        a = lake.assertions
        subjects = a.select("subject").unique().sort("subject").collect()["subject"]
        self._subjects = subjects
        self._complete("")
        first: list[datetime] = []
        last: list[datetime] = []
        for name in ("assertions", "votes", "lifecycle", "supersessions", "constraints", "audit"):
            span = (
                lake.table(name)
                .select(
                    pl.col("recorded_at").min().alias("lo"), pl.col("recorded_at").max().alias("hi")
                )
                .collect()
            )
            if span["lo"][0] is not None:
                first.append(span["lo"][0])
                last.append(span["hi"][0])
        now = datetime.now(UTC).replace(microsecond=0)
        self._empty = not first
        self._t_first = min(first) if first else now - timedelta(hours=1)
        self._t_last = max(last) if last else now
        lo = int(self._t_first.timestamp()) // STEP_SECONDS * STEP_SECONDS
        hi = -(-int(self._t_last.timestamp()) // STEP_SECONDS) * STEP_SECONDS + STEP_SECONDS
        with self._hold():
            self.when.min, self.when.max = min(lo, self.when.min), max(hi, self.when.max)
            self.when.min, self.when.max = lo, hi
            self.window.min, self.window.max = min(lo, self.window.min), max(hi, self.window.max)
            self.window.min, self.window.max = lo, hi
            self.window.value = (max(lo, hi - 24 * 3600), hi)
        asked = lake.audit.select("agent").unique().sort("agent").collect()["agent"].to_list()
        self._no_audit = not asked
        with self._hold():
            self.agent.options = [("(pick an agent)", None), *[(a, a) for a in asked]]
        self._seen_seq = lake.status().last_seq
        if self._empty:
            self._say("warn", "this lake holds no records yet")

    def _wire(self) -> None:
        self.subject.observe(self._guarded("subject", self._on_subject), "value")
        self.predicate.observe(self._guarded("belief", self._on_belief), "value")
        for control in (self.lens, self.lifecycle):
            control.observe(self._guarded("filters", self._on_filters), "value")
        self.when.observe(self._guarded("as of", self._on_when), "value")
        self.when_text.observe(self._guarded("as of text", self._on_when_text), "value")
        self.previous_event.on_click(self._guarded("previous event", lambda _: self._step(-1)))
        self.next_event.on_click(self._guarded("next event", lambda _: self._step(1)))
        self.refresh_button.on_click(self._guarded("refresh", lambda _: self.refresh()))
        self.zoom.observe(self._guarded("zoom", self._on_zoom), "value")
        self.window.observe(self._guarded("window", self._on_window), "value")
        self.timeline.brush.observe(self._guarded("brush", self._on_brush), "selected")
        self.record.observe(self._guarded("provenance", self._on_record), "value")
        self.tabs.observe(self._guarded("tab", lambda _: self._render_visible()), "selected_index")
        self.explain_pick.on_click(self._guarded("provenance", self._on_explain_pick))
        self.agent.observe(self._guarded("trace", self._on_agent), "value")
        self.trace_pick.observe(self._guarded("open question", self._on_trace_pick), "value")
        self.mark_incorrect.on_click(self._guarded("mark incorrect", self._on_mark_incorrect))
        self.add_constraint.on_click(self._guarded("add constraint", self._on_add_constraint))
        self.confirm.on_click(self._guarded("confirm", self._on_confirm))
        self.cancel.on_click(self._guarded("cancel", lambda _: self._ask(None)))

    # ------------------------------------------------------------ plumbing

    @contextmanager
    def _hold(self) -> Iterator[None]:
        was, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = was

    def _guarded(self, name: str, fn: Callable[[Any], None]) -> Callable[[Any], None]:
        """Run a handler with the spinner on, its time kept, and any error shown in
        the panel (never as a traceback in the output area)."""

        def run(change: Any) -> None:
            if self._quiet:
                return
            started = time.perf_counter()
            self.busy.layout.visibility = "visible"
            try:
                self._say("note", "")
                self._check_writers()
                fn(change)
            except StemeLakeError as exc:
                self._say("error", str(exc))
            except Exception as exc:  # noqa: BLE001 - the panel is the place to say it
                self._say("error", f"unexpected {type(exc).__name__}: {exc}")
            finally:
                self.busy.layout.visibility = "hidden"
                self.timings[name].append(time.perf_counter() - started)

        return run

    def _say(self, kind: str, text: str) -> None:
        self.status.value = _msg(kind, text) if text else ""

    def _check_writers(self) -> None:
        """Another process writing to the lake: say so (the panels show what was
        read when they were drawn; refresh reads again)."""
        last = self._lake.status().last_seq
        new, self._seen_seq = last - self._seen_seq, last
        if new > 0:
            self._notice = (
                f"{new} new record(s) since the last view: another process is writing to "
                "this lake. Each panel reads the lake when it is drawn; ⟳ refresh extends "
                "the time range."
            )
        else:
            self._notice = ""

    def _clamp(self, t: datetime) -> datetime:
        lo, hi = (
            us_to_datetime(self.when.min * 1_000_000),
            us_to_datetime(self.when.max * 1_000_000),
        )
        return min(max(t, lo), hi)

    def _set_time(self, t: datetime) -> None:
        """The slider at ``t`` to the second (rounded up, so that a record written
        within that second is in view); dragging it snaps to whole minutes."""
        self.when.value = math.ceil(t.timestamp())
        self.when_text.value = _iso(self.as_of)

    # ------------------------------------------------------------ handlers

    def refresh(self) -> None:
        """Read the lake again: subjects, agents, the time range, every panel."""
        keep = self.as_of
        self._load_lake()
        with self._hold():
            self._set_time(self._clamp(keep))
        self._render()

    def _on_subject(self, _: Any) -> None:
        self._complete((self.subject.value or "").strip())
        problem = self._pick_belief(None)
        self._render()
        if problem:
            raise ValidationError(problem)

    def _complete(self, pattern: str) -> None:
        """Completion for the subject box, one level at a time: the globs one level
        below what was typed (``svc/*`` offers ``svc/0/*``, ``svc/1/*``...) and
        the subjects under it (the first `MAX_SUBJECTS`), so any subject of a big
        lake is reached by drilling down."""
        prefix = pattern.rstrip("*").rstrip("/")
        prefix = f"{prefix}/" if prefix else ""
        under = self._subjects.filter(self._subjects.str.starts_with(prefix)) if prefix else (
            self._subjects
        )  # fmt: skip
        rest = under.str.slice(len(prefix))
        deeper = rest.filter(rest.str.contains("/", literal=True)).str.split("/").list.first()
        globs = [f"{prefix}{d}/*" for d in deeper.unique().sort().head(MAX_SUBJECTS).to_list()]
        with self._hold():
            self.subject.options = [*globs, *under.head(MAX_SUBJECTS).to_list()]

    def _pick_belief(self, predicate: str | None) -> str | None:
        """Offer the beliefs under the subject glob; the problem, if any, as text."""
        pattern = (self.subject.value or "").strip()
        with self._hold():
            self.predicate.options = []
        if not pattern:
            return None
        match = subject_matcher(pattern)
        beliefs = (
            self._lake.assertions.filter(True if match is None else match)
            .select("subject", "predicate")
            .unique()
            .sort("subject", "predicate")
            .head(MAX_BELIEFS + 1)
            .collect()
        )
        if beliefs.is_empty():
            near = self._subjects.head(5).to_list()
            if not near:
                return f"no subject matches {pattern!r}: this lake holds no assertions yet"
            return f"no subject matches {pattern!r}; subjects look like: {', '.join(near)}"
        one = beliefs["subject"].n_unique() == 1
        options = [
            (p if one else f"{s} : {p}", (s, p)) for s, p in beliefs.head(MAX_BELIEFS).iter_rows()
        ]
        wanted = next((v for _, v in options if v[1] == predicate), options[0][1])
        if predicate is not None and wanted[1] != predicate:
            self._say("warn", f"no predicate {predicate!r} under {pattern!r}")
        with self._hold():
            self.predicate.options = options
            self.predicate.value = wanted
        if beliefs.height > MAX_BELIEFS:
            self._say("note", f"the first {MAX_BELIEFS} beliefs under {pattern!r}; narrow it")
        return None

    def _on_belief(self, _: Any) -> None:
        self._render()

    def _on_filters(self, _: Any) -> None:
        self._render()

    def _on_when(self, _: Any) -> None:
        with self._hold():
            self.when_text.value = _iso(self.as_of)
        self._render(moved_only=True)

    def _on_when_text(self, _: Any) -> None:
        text = (self.when_text.value or "").strip()
        if not text:
            return
        t = us_to_datetime(to_us(text, name="as of"))
        if t < self._t_first:
            with self._hold():
                self._set_time(self._clamp(t))
            self._blame = None
            self.answer.value = _msg(
                "warn", f"as of {_iso(t)} is before the first record in this lake "
                f"({_iso(self._t_first)}): nothing was known then"
            )  # fmt: skip
            return
        with self._hold():
            self._set_time(self._clamp(t))
        self._render(moved_only=True)

    def _step(self, direction: int) -> None:
        data = self.timeline.data
        if data is None or not data.event_times:
            raise ValidationError("pick a belief first: the events are those of its timeline")
        now = self.as_of
        times = [t.replace(microsecond=0) for t in data.event_times]
        later = [t for t in times if t > now]
        earlier = [t for t in times if t < now - timedelta(seconds=STEP_SECONDS - 1)]
        found = later[:1] if direction > 0 else earlier[-1:]
        if not found:
            wider = " (a wider timeline reaches further)" if self.zoom.value else ""
            self._say("note", f"no more events that way in view{wider}")
            return
        # the slider stops on whole minutes: the stop at or after the event
        up = -(-int(found[0].timestamp()) // STEP_SECONDS) * STEP_SECONDS
        with self._hold():
            self.when.value = up
            self.when_text.value = _iso(self.as_of)
        self._render(moved_only=True)

    def _on_brush(self, change: Any) -> None:
        """Two times chosen on the timeline: the window of "What changed"."""
        chosen = change["new"]
        if chosen is None or len(chosen) != 2:
            return
        lo, hi = (int(np.datetime64(t, "s").astype("int64")) for t in sorted(chosen))
        lo, hi = lo // STEP_SECONDS * STEP_SECONDS, -(-hi // STEP_SECONDS) * STEP_SECONDS
        lo, hi = max(lo, self.window.min), min(max(hi, lo + STEP_SECONDS), self.window.max)
        self.window.value = (lo, hi)  # draws the diff
        self._say("note", f"'What changed' now compares {_iso(self._utc(lo))} with "
                          f"{_iso(self._utc(hi))}")  # fmt: skip

    @staticmethod
    def _utc(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    def _on_zoom(self, _: Any) -> None:
        self._fetched = None  # a wider or narrower view reads its own events
        self._render_belief(moved_only=True)

    def _on_window(self, _: Any) -> None:
        self._render_diff()  # the window is the diff's: moving it asks for the diff
        self._stale.discard("diff")
        self._stale.add("trace")  # and bounds the agent's questions
        self._render_visible()

    def _on_agent(self, _: Any) -> None:
        self._stale.discard("trace")
        self._render_trace()

    def _on_record(self, _: Any) -> None:
        self._stale.discard("record")
        self._render_record()

    def _on_explain_pick(self, _: Any) -> None:
        if not self.pick.value:
            raise ValidationError("pick an assertion first (the belief panel lists them)")
        self.record.value = self.pick.value  # draws the chain
        self.tabs.selected_index = 2

    def _on_trace_pick(self, _: Any) -> None:
        if self.trace_pick.value:
            self.record.value = self.trace_pick.value
            self.tabs.selected_index = 2

    # ------------------------------------------------------------ panels

    @property
    def _belief(self) -> tuple[str, str] | None:
        value = self.predicate.value
        return (value[0], value[1]) if value else None

    def _filters(self) -> dict[str, Any]:
        stage = self.lifecycle.value
        return {"lens": self.lens.value, "lifecycle": None if stage == ANY_STAGE else stage}

    def _render(self, *, moved_only: bool = False) -> None:
        """The belief, then the other panels: the one on view now, the rest when
        their tab is opened (so a move costs what the person looks at)."""
        self._render_belief(moved_only=moved_only)
        self._stale |= {"trust", "record"} if moved_only else set(_PANELS)
        self._render_visible()

    def _render_visible(self) -> None:
        name = _TABS[self.tabs.selected_index or 0]
        if name in self._stale:
            self._stale.discard(name)
            _PANELS[name](self)

    def _render_belief(self, *, moved_only: bool) -> None:
        belief = self._belief
        span = self._span()
        if belief is None:
            self._blame = None
            self.answer.value = _msg("note", "type a subject (a path or a glob such as auth/*)")
            self.candidates.value = ""
            with self._hold():
                self.pick.options = []
            self.timeline.move(self.as_of, span)
            return
        subject, predicate = belief
        fetched = self._fetched
        if not moved_only or fetched is None or not fetched[0] <= self.as_of <= fetched[1]:
            self._fetch_timeline(subject, predicate, span)
        self.timeline.move(self.as_of, span)
        b = self._lake.blame(subject, predicate, as_of=self.as_of, **self._filters())
        self._blame = b
        a = b.answer
        where = f"{html.escape(subject)} {html.escape(predicate)}"
        if a.answered:
            conf = f"{a.confidence:.2f}" if a.confidence is not None else "?"
            head = (
                f'<div class="steme-answer">{where} = <span class="steme-answer-value">'
                f"{html.escape(shown(a.value))}</span> · confidence {conf} · "
                f"<b>{html.escape(a.lifecycle or '?')}</b> · {html.escape(a.status)} · "
                f"as of {_iso(self.as_of)} ({html.escape(a.lens)})</div>"
            )
        else:
            head = (
                f'<div class="steme-answer">{where}: <span class="steme-answer-value">'
                f"no answer</span> ({html.escape(a.status)}) as of {_iso(self.as_of)}</div>"
            )
        notice = self._notice
        self.answer.value = head + (_msg("warn", notice) if notice else "")
        frame = _candidates(b)
        columns = frame.select(
            [c for c in ("value", "agent", "lifecycle", "confidence", "effective_confidence",
                         "recorded_at", "superseded", "assertion") if c in frame.columns]
        ) if frame.height else frame  # fmt: skip
        self.candidates.value = "<h4>The candidates the lens weighed</h4>" + _table(
            columns, empty="no candidate existed then with these filters"
        )
        options = [
            (f"{shown(r['value'])} by {r['agent']} ({r['lifecycle']})", r["assertion"])
            for r in frame.iter_rows(named=True)
        ] if frame.height else []  # fmt: skip
        with self._hold():
            self.pick.options = options
            if options:
                self.pick.value = (
                    a.assertion if a.assertion in dict(options).values() else options[0][1]
                )

    def _span(self) -> tuple[datetime, datetime]:
        """The timeline's x range: the zoom's width around the as-of time, inside
        the lake's range (the whole range with "whole history")."""
        lo = self._t_first - timedelta(seconds=STEP_SECONDS)  # since is exclusive
        hi = us_to_datetime(self.when.max * 1_000_000)
        width = timedelta(seconds=self.zoom.value)
        if not self.zoom.value or width >= hi - lo:
            return lo, hi
        start = min(max(self.as_of - width / 2, lo), hi - width)
        return start, start + width

    def _fetch_timeline(
        self, subject: str, predicate: str, span: tuple[datetime, datetime]
    ) -> None:
        """The belief's events and questions in the span on view (the lake's files
        are partitioned by time, so a day's worth reads a day's files)."""
        lo, hi = span
        events = self._lake.timeline(
            subject, predicate, **self._filters(), since=lo, until=hi, max_resolved=MAX_RESOLVED
        )
        in_view = (pl.col("recorded_at") > lo) & (pl.col("recorded_at") <= hi)
        asked = (
            self._lake.audit.filter(
                pl.col("subject") == subject, pl.col("predicate") == predicate, in_view
            )
            .select("recorded_at", "agent", "value", "id")
            .sort("recorded_at")
            .collect()
        )
        opening = self._lake.blame(subject, predicate, as_of=lo, **self._filters()).answer
        begin = (lo, rows_json(opening.value) if opening.answered else None)
        self.timeline.show(timeline_data(events, asked, begin))
        self._fetched = span
        resolved = events["resolved_status"].is_not_null().sum()
        self.timeline_note.value = (
            f'<span class="steme-note">{events.height:,} events and {asked.height:,} questions '
            f"in view; the resolved line is drawn at {resolved} of them, evenly spread: zoom in "
            "to see every change</span>"
            if resolved < events.height
            else ""
        )

    def _render_diff(self) -> None:
        lo, hi = self.window.value
        since, until = us_to_datetime(lo * 1_000_000), us_to_datetime(hi * 1_000_000)
        self.window_label.value = f"{_iso(since)} → {_iso(until)}"
        pattern = (self.subject.value or "").strip() or None
        d = self._lake.diff(since, until, pattern, **self._filters())
        self._diff = d
        scope = f"under {html.escape(pattern)}" if pattern else "in the whole lake"
        self.diff_view.value = (
            f"<h4>Beliefs that changed {scope}</h4>"
            + _table(d.beliefs, empty="no belief changed in this window")
            + "<h4>Records written</h4>"
            + _table(d.records, rows=30, empty="nothing was written in this window")
        )

    def _render_record(self) -> None:
        ref = (self.record.value or "").strip().lower()
        if not ref:
            self.chain_view.value = self.record_view.value = ""
            return
        if not _ID.match(ref):
            raise ValidationError(f"{ref!r} is not a record id (64 hex characters)")
        # a question from the trace is known; else an assertion (the smaller table),
        # else a question found in the audit log
        is_query = ref in self._asked_at or (
            self._lake.assertions.filter(pl.col("id") == ref).select(pl.len()).collect().item() == 0
            and self._lake.audit.filter(pl.col("id") == ref).select(pl.len()).collect().item() > 0
        )
        # downstream: up to the as-of time, and no further after it than the timeline
        # shows (a day by default; "whole history" follows it all, slowly on a big lake)
        horizon = timedelta(seconds=self.zoom.value) if self.zoom.value else None
        if is_query:
            # the question's time, when the trace gave it, finds it in that time's files
            # (reading the downstream beside it in a thread was slower: polars already
            # keeps both cores busy)
            prov = self._lake._provenance(ref, self._asked_at.get(ref))
            c = chain_of_query(self._lake, ref, until=self.as_of, horizon=horizon, provenance=prov)
            detail = "<h4>The assertions the question weighed</h4>" + _table(
                prov.drop("query_id", "answer", "lens")
            )
        else:
            c = chain_of_assertion(self._lake, ref, until=self.as_of, horizon=horizon)
            b = self._blame
            detail = ""
            if b is not None and b.answer.assertion == ref:
                detail = (
                    "<h4>Its lifecycle</h4>"
                    + _table(b.lifecycle)
                    + "<h4>Votes on it</h4>"
                    + _table(b.votes)
                )
        self._chain = c
        kind = "answer" if is_query else "assertion"
        went = f" (followed up to {_iso(c.until)})" if c.until is not None else ""
        self.chain_view.value = (
            f"<h4>Where this {kind} came from, and where it went{went}</h4>" + svg(c)
        )
        self.record_view.value = detail

    def _render_trace(self) -> None:
        agent = self.agent.value
        if self._no_audit:
            self.trace_view.value = _msg(
                "note", "No questions in the audit log of this lake: questions are recorded when "
                "agents ask through lake.query, the HTTP API or MCP."
            )  # fmt: skip
            return
        if agent is None:
            self.trace_view.value = _msg("note", "pick an agent to see what it asked")
            with self._hold():
                self.trace_pick.options = []
            return
        lo, hi = self.window.value
        t = self._lake.trace(agent, us_to_datetime(lo * 1_000_000), us_to_datetime(hi * 1_000_000))
        self._trace = t
        self._asked_at = dict(zip(t["query_id"], t["recorded_at"], strict=True))
        listed = t.tail(MAX_QUESTIONS)  # a busy agent asks thousands a day: the latest
        options = [
            (f"{r['recorded_at']:%m-%d %H:%M:%S} {r['subject']} {r['predicate'] or ''} → "
             f"{shown(r['value'])}", r["query_id"])
            for r in listed.iter_rows(named=True)
        ]  # fmt: skip
        with self._hold():
            self.trace_pick.options = options
            self.trace_pick.value = None
        listed_rows = t.drop("query_id", "winner", "contributing", strict=False)
        if t.height > MAX_QUESTIONS:
            self._say(
                "note",
                f"{agent} asked {t.height:,} questions in this window: the list holds the "
                f"last {MAX_QUESTIONS}; narrow the window to reach the others",
            )
        self.trace_view.value = _table(
            listed_rows,
            rows=30,
            empty=f"{agent} asked nothing between the two times of 'What changed'",
        )

    def _render_trust(self) -> None:
        stored = self._lake.trust.scores(as_of=self.as_of)
        when = f"as of {_iso(self.as_of)}"
        if stored.is_empty():
            stored = self._lake.trust.scores()
            if stored.is_empty():
                self.trust_view.value = _msg(
                    "note", "No trust scores yet: run the Gardener (lake.trust.run() or steme "
                    "garden) and they appear here."
                )  # fmt: skip
                return
            first = _iso(stored["recorded_at"].min())  # type: ignore[arg-type]
            when = f"the latest (none existed as of {_iso(self.as_of)}; the first are from {first})"
        involved: set[str] = set()
        b = self._blame
        if b is not None:
            involved |= set(_candidates(b)["agent"].to_list())
        data = self.timeline.data
        if data is not None:
            involved |= set(data.questions_agent)
        belief = self._belief
        topics = {""}
        if belief is not None:
            parts = belief[0].split("/")
            topics |= {"/".join(parts[:i]) for i in range(1, len(parts) + 1)}
        frame = stored.filter(pl.col("topic").is_in(sorted(topics)))
        if involved:
            frame = frame.filter(pl.col("agent").is_in(sorted(involved)))
        title = f"<h4>Trust of the agents involved: {html.escape(when)}</h4>"
        self.trust_view.value = title + _table(
            frame.select("topic", "agent", "score", "rank", "recorded_at"), rows=40,
            empty="none of the agents involved has a score on this topic",
        )  # fmt: skip

    # ------------------------------------------------------------ acting

    def _ask(self, action: Callable[[], str] | None, question: str = "") -> None:
        self._pending = action
        display = "inline-block" if action is not None else "none"
        self.confirm.layout.display = self.cancel.layout.display = display
        self.act_view.value = _msg("warn", question) if action is not None else ""

    def _on_mark_incorrect(self, _: Any) -> None:
        target = self.pick.value
        reason = (self.reason.value or "").strip()
        if not target:
            raise ValidationError("pick the assertion to mark incorrect (Belief tab)")
        if not reason:
            raise ValidationError("say why in 'reason' before marking an assertion incorrect")
        actor = self.actor.value.strip()
        label = dict((v, k) for k, v in self.pick.options).get(target, target)

        def act() -> str:
            fix = self._lake.supersede(target, agent=actor, kind="invalidate", reason=reason)
            return f"marked incorrect: {label} (supersession {fix})"

        self._ask(act, f"Supersede {label} as invalid, as {actor}: “{reason}”? This is permanent.")

    def _on_add_constraint(self, _: Any) -> None:
        belief = self._belief
        if belief is None:
            raise ValidationError("pick a belief first: the constraint is on its subject")
        reason = (self.reason.value or "").strip()
        if not reason:
            raise ValidationError("say why in 'reason' before adding a constraint")
        forbidden = (self.forbidden.value or "").strip() or None
        must_use = (self.must_use.value or "").strip() or None
        if forbidden is None and must_use is None:
            raise ValidationError("a constraint needs 'forbidden', 'must use' or both")
        actor = self.actor.value.strip()
        subject, predicate = belief
        cites = self.pick.value or None

        def act() -> str:
            rule = self._lake.add_constraint(
                subject, agent=actor, reason=reason, forbidden=forbidden, must_use=must_use,
                predicate=predicate, cites=cites,
            )  # fmt: skip
            return f"constraint stored on {subject} {predicate} ({rule})"

        what = " and ".join(
            x
            for x in (
                f"never {forbidden}" if forbidden else "",
                f"must use {must_use}" if must_use else "",
            )
            if x
        )
        self._ask(act, f"Store a constraint on {subject} {predicate}: {what}, as {actor}?")

    def _on_confirm(self, _: Any) -> None:
        action = self._pending
        if action is None:
            return
        done = action()
        self._ask(None)
        self.act_view.value = _msg("note", done)
        self.refresh()


_TABS = ("belief", "diff", "record", "trace", "trust", "act")
_PANELS: dict[str, Callable[[Explorer], None]] = {
    "diff": Explorer._render_diff,
    "record": Explorer._render_record,
    "trace": Explorer._render_trace,
    "trust": Explorer._render_trust,
}


def _candidates(b: Blame) -> pl.DataFrame:
    """The candidates the answer weighed, as a frame (empty without any)."""
    frame = getattr(b.answer.candidates, "frame", None)
    return (
        frame
        if isinstance(frame, pl.DataFrame)
        else pl.DataFrame({"agent": []}, schema={"agent": pl.String})
    )


def _login() -> str:
    try:
        return re.sub(r"[^a-z0-9_-]+", "-", getpass.getuser().lower()) or "someone"
    except (OSError, KeyError):
        return "someone"
