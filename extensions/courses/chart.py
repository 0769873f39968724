"""The course budget's burn-down as a plotly figure (JSON for the page's plotly.min.js)."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go

from billing_hooks.charts import script_json, styled
from centre.pricing import MC_PER_CREDIT


def burn_down_figure(
    points: list[tuple[dt.date, int]], budget_mc: int, term_end: dt.date, currency: str
) -> str:
    """Budget left per day, with the straight line that would last exactly to the term's end."""
    figure = go.Figure(
        go.Scatter(
            x=[d.isoformat() for d, _ in points],
            y=[mc / MC_PER_CREDIT for _, mc in points],
            name="left",
            mode="lines+markers",
            line={"color": "#f37524"},
        )
    )
    if points:
        figure.add_trace(
            go.Scatter(
                x=[points[0][0].isoformat(), term_end.isoformat()],
                y=[budget_mc / MC_PER_CREDIT, 0],
                name="even pace to the term's end",
                mode="lines",
                line={"color": "#999", "dash": "dot"},
            )
        )
    figure.update_layout(legend={"orientation": "h", "y": -0.2})
    return script_json(styled(figure, f"{currency} left"))
