"""Plotly figures for the usage pages, as JSON the page hands to plotly.min.js."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go

from centre.pricing import MC_PER_CREDIT

DAY = 86400


def script_json(figure: go.Figure) -> str:
    # The JSON goes inside a <script> element: "</" must not end it early.
    return figure.to_json().replace("</", "<\\/")


def styled(figure: go.Figure, y_title: str) -> go.Figure:
    figure.update_layout(
        margin={"l": 50, "r": 10, "t": 10, "b": 40},
        yaxis_title=y_title,
        template="plotly_white",
        height=320,
    )
    return figure


def daily_spend_figure(days: list[tuple[int, int]], start: int, end: int, currency: str) -> str:
    """One bar per day from ``start`` to ``end``, zero where nothing was charged."""
    by_day = dict(days)
    x, y = [], []
    for day in range(start - start % DAY, end, DAY):
        x.append(dt.datetime.fromtimestamp(day, dt.UTC).strftime("%Y-%m-%d"))
        y.append(by_day.get(day, 0) / MC_PER_CREDIT)
    figure = go.Figure(go.Bar(x=x, y=y, name=currency, marker_color="#f37524"))
    return script_json(styled(figure, f"{currency} per day"))


def usage_figure(rows, group_by: str, currency: str) -> str:
    figure = go.Figure(
        go.Bar(
            x=[r.key for r in rows],
            y=[r.amount_mc / MC_PER_CREDIT for r in rows],
            name=currency,
            marker_color="#4a7bb7",
        )
    )
    figure.update_xaxes(title=group_by)
    return script_json(styled(figure, currency))
