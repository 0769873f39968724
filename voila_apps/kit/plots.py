"""Live line charts (bqplot: plain ipywidgets, so Voila draws them and updates arrive as
small messages rather than re-rendered images)."""

from __future__ import annotations

from collections.abc import Sequence

import bqplot as bq
import ipywidgets as w

COLOURS = ("#1565c0", "#c62828", "#2e7d32", "#6a1b9a")


class LineChart:
    """One chart with one or more series over a shared x; ``update`` replaces the data."""

    def __init__(
        self,
        title: str,
        x_label: str,
        series: Sequence[str],
        y_label: str = "",
        whole_x: bool = False,
    ):
        """``whole_x``: x counts steps, cycles or epochs, so no tick falls between two."""
        x, y = bq.LinearScale(), bq.LinearScale()
        self.whole_x = whole_x
        self.x_axis = bq.Axis(scale=x, label=x_label, tick_format="d" if whole_x else None)
        self.lines = bq.Lines(
            x=[],
            y=[[] for _ in series],
            scales={"x": x, "y": y},
            labels=list(series),
            colors=list(COLOURS[: len(series)]),
            display_legend=len(series) > 1,
            marker="circle" if len(series) == 1 else None,
            marker_size=16,
        )
        self.figure = bq.Figure(
            marks=[self.lines],
            axes=[
                self.x_axis,
                bq.Axis(
                    scale=y,
                    orientation="vertical",
                    label=y_label,
                    tick_format=".6~g",
                    label_offset="58px",  # clear of the tick labels
                ),
            ],
            title=title,
            fig_margin={"top": 40, "bottom": 45, "left": 80, "right": 20},
            layout=w.Layout(width="100%", min_width="280px", height="300px"),
        )
        self.figure.add_class("ch-chart")

    def update(self, x: Sequence[float], ys: Sequence[Sequence[float]]) -> None:
        x, ys = list(x), [list(series) for series in ys]
        if len(x) == 1:
            # bqplot flattens [[y]] to a scalar; a point drawn twice is the same point.
            x, ys = x * 2, [series * 2 for series in ys]
        with self.lines.hold_sync():
            self.lines.x = x
            self.lines.y = ys
        if self.whole_x:
            # With few points, one tick per point keeps ticks whole (no epoch 1.5); with
            # many, the axis's own round numbers do.
            distinct = len(set(x))
            self.x_axis.num_ticks = max(distinct, 2) if distinct <= 8 else None

    @property
    def points(self) -> int:
        return len(self.lines.x)
