"""The belief timeline as a bqplot figure: the value the lens resolved over time
(a step line), each assertion (coloured by its lifecycle when written), the
lifecycle changes, supersessions and votes, the questions agents asked about
it, and the as-of cursor that follows the slider.

bqplot draws with d3 in the browser and updates by sending only the changed
arrays, so moving the cursor costs two numbers on the wire (matplotlib's widget
backend redraws a PNG on the server for every move). Its JavaScript ships in
the wheel and is served by Jupyter and Voila from the local install.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from steme_lake.widgets._text import shown

__all__ = ["LEGEND", "STAGE_COLOURS", "Timeline", "timeline_data"]

STAGE_COLOURS = {
    "proposed": "#e67e22",
    "under_review": "#8e44ad",
    "approved": "#27ae60",
    "deprecated": "#7f8c8d",
}
LEGEND = (
    '<div style="font-size: 0.85em; color: #444; margin: 6px 0 0 12px">'
    '<span style="color:#34495e">━</span> the resolved value &nbsp; '
    + " ".join(
        f'<span style="color:{c}">●</span> {s.replace("_", " ")}' for s, c in STAGE_COLOURS.items()
    )
    + " (an assertion, by its lifecycle when written) &nbsp; "
    '<span style="color:#2c3e50">◆</span> lifecycle change, supersession or vote &nbsp; '
    '<span style="color:#2980b9">▼</span> a question asked &nbsp; '
    '<span style="color:#c0392b">┆</span> as of</div>'
)


def _ms(frame: pl.DataFrame, col: str = "recorded_at") -> np.ndarray:
    if frame.is_empty():
        return np.array([], dtype="datetime64[ms]")
    return frame[col].dt.replace_time_zone(None).cast(pl.Datetime("ms")).to_numpy()


def _unquoted(col: str) -> pl.Expr:
    """JSON text as shown: a string without its quotes, anything else as written."""
    s = pl.col(col)
    quoted = s.str.starts_with('"') & s.str.ends_with('"') & (s.str.len_chars() >= 2)
    return pl.when(quoted).then(s.str.slice(1, s.str.len_chars() - 2)).otherwise(s).alias(col)


@dataclass(slots=True)
class TimelineData:
    """What the figure shows, as plain arrays (tests compare them with the API)."""

    values: list[str]  # the y axis, in first-seen order
    resolved_x: np.ndarray
    resolved_y: list[str]
    assertions_x: np.ndarray
    assertions_y: list[str]
    assertions_stage: list[str]
    events_x: np.ndarray
    events_y: list[str]
    events_kind: list[str]
    questions_x: np.ndarray
    questions_y: list[str]
    questions_agent: list[str]
    event_times: list[datetime]  # every marked time, sorted: the slider's stops


def timeline_data(
    events: pl.DataFrame,
    questions: pl.DataFrame,
    start: tuple[datetime, str | None] | None = None,
) -> TimelineData:
    """``events`` is `Lake.timeline`'s frame; ``questions`` the audit rows about the
    belief (``recorded_at``, ``agent``, ``value``); ``start`` the resolved value
    (JSON text, None: no answer) where the view begins, so the line starts there."""
    resolved = events.filter(pl.col("resolved_status").is_not_null()).with_columns(
        _unquoted("resolved_value").fill_null("(none)")
    )
    resolved_x = _ms(resolved)
    resolved_y: list[str] = resolved["resolved_value"].to_list()
    if start is not None:
        first = np.array([np.datetime64(start[0].replace(tzinfo=None), "ms")])
        resolved_x = np.concatenate([first, resolved_x])
        resolved_y = [shown(start[1]) or "(none)", *resolved_y]
    asserted = events.filter(pl.col("event") == "asserted")
    others = events.filter(pl.col("event") != "asserted")
    by_assertion = dict(
        zip(asserted["assertion"].to_list(), asserted["value"].to_list(), strict=True)
    )
    # an event on an assertion written before the view sits on the line where it is
    lines = list(zip(resolved_x.tolist(), resolved_y, strict=True))
    events_y = []
    for t, a in zip(_ms(others).tolist(), others["assertion"].to_list(), strict=True):
        known = by_assertion.get(a)
        if known is not None:
            events_y.append(shown(known))
        else:
            before = [y for x, y in lines if x <= t]
            events_y.append(before[-1] if before else "(none)")
    assertions_y = [shown(v) for v in asserted["value"].to_list()]
    questions_y = [shown(v) or "(none)" for v in questions["value"].to_list()]
    values = list(dict.fromkeys([*resolved_y, *assertions_y, *events_y, *questions_y]))
    times = sorted({*events["recorded_at"].to_list(), *questions["recorded_at"].to_list()})
    return TimelineData(
        values=values,
        resolved_x=resolved_x,
        resolved_y=resolved_y,
        assertions_x=_ms(asserted),
        assertions_y=assertions_y,
        assertions_stage=asserted["detail"].to_list(),
        events_x=_ms(others),
        events_y=events_y,
        events_kind=others["event"].to_list(),
        questions_x=_ms(questions),
        questions_y=questions_y,
        questions_agent=questions["agent"].to_list(),
        event_times=times,
    )


class Timeline:
    """The figure; `show` replaces the data, `cursor` moves the as-of line."""

    def __init__(self) -> None:
        import bqplot as bq

        self._bq = bq
        self.x = bq.DateScale()
        self.y = bq.OrdinalScale()
        unit = bq.LinearScale(min=0.0, max=1.0)
        colours = bq.OrdinalColorScale(
            domain=list(STAGE_COLOURS), colors=list(STAGE_COLOURS.values())
        )
        both = {"x": self.x, "y": self.y}
        self.resolved = bq.Lines(
            x=[], y=[], scales=both, interpolation="step-after", colors=["#34495e"],
            stroke_width=2, labels=["resolved"], display_legend=False,
        )  # fmt: skip
        self.assertions = bq.Scatter(
            x=[], y=[], color=[], scales={**both, "color": colours}, default_size=90,
            marker="circle", labels=["assertion"], display_legend=False,
            tooltip=bq.Tooltip(fields=["x", "y"], formats=["%Y-%m-%d %H:%M", ""]),
        )  # fmt: skip
        self.events = bq.Scatter(
            x=[], y=[], scales=both, marker="diamond", colors=["#2c3e50"], default_size=40,
            labels=["lifecycle / supersession / vote"], display_legend=False,
        )  # fmt: skip
        self.questions = bq.Scatter(
            x=[], y=[], scales=both, marker="triangle-down", colors=["#2980b9"],
            default_size=60, labels=["question asked"], display_legend=False,
            tooltip=bq.Tooltip(fields=["x", "y"], formats=["%Y-%m-%d %H:%M", ""]),
        )  # fmt: skip
        self.cursor = bq.Lines(
            x=[], y=[0.0, 1.0], scales={"x": self.x, "y": unit}, colors=["#c0392b"],
            stroke_width=2, line_style="dashed", labels=["as of"], display_legend=False,
        )  # fmt: skip
        axes = [
            bq.Axis(scale=self.x, side="bottom", label="time (UTC)", tick_format="%m-%d %H:%M"),
            bq.Axis(scale=self.y, side="left"),
        ]
        # Drag across the timeline to choose the two times of "What changed".
        self.brush = bq.interacts.BrushIntervalSelector(scale=self.x, color="#2980b9")
        self.figure = bq.Figure(
            interaction=self.brush,
            marks=[self.resolved, self.assertions, self.events, self.questions, self.cursor],
            axes=axes, legend_location="top-left", animation_duration=0,
            fig_margin={"top": 20, "bottom": 45, "left": 110, "right": 20},
            layout={"width": "100%", "height": "300px"},
        )  # fmt: skip
        self.data: TimelineData | None = None

    def show(self, data: TimelineData) -> None:
        self.data = data
        with self.figure.hold_sync():
            self.y.domain = data.values
            self.resolved.x, self.resolved.y = data.resolved_x, data.resolved_y
            self.assertions.x, self.assertions.y = data.assertions_x, data.assertions_y
            self.assertions.color = data.assertions_stage
            self.events.x, self.events.y = data.events_x, data.events_y
            self.questions.x, self.questions.y = data.questions_x, data.questions_y

    def move(self, at: datetime, span: tuple[datetime, datetime]) -> None:
        """The cursor at ``at``; the x range ``span`` (the slider's)."""
        t = np.datetime64(at.replace(tzinfo=None), "ms")
        with self.figure.hold_sync():
            self.x.min = np.datetime64(span[0].replace(tzinfo=None), "ms")
            self.x.max = np.datetime64(span[1].replace(tzinfo=None), "ms")
            self.cursor.x = np.array([t, t])
