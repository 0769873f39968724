"""Query parameters the API and the pages share: periods, groupings and months."""

from __future__ import annotations

import datetime as dt

from billing_hooks import reports, statements
from billing_hooks.service.base import Refused


def period(handler) -> tuple[int, int]:
    """``from``/``to`` as YYYY-MM-DD (UTC, ``to`` inclusive); the default is this month."""
    today = dt.datetime.now(dt.UTC).date()
    raw_from = handler.get_argument("from", today.replace(day=1).isoformat())
    raw_to = handler.get_argument("to", today.isoformat())
    try:
        start = dt.date.fromisoformat(raw_from)
    except ValueError:
        raise Refused(400, "use a date like 2026-11-01", "from") from None
    try:
        end = dt.date.fromisoformat(raw_to)
    except ValueError:
        raise Refused(400, "use a date like 2026-11-30", "to") from None
    if end < start:
        raise Refused(400, "must not be before 'from'", "to")
    if (end - start).days > 3660:
        raise Refused(400, "a period of at most 10 years", "to")
    midnight = lambda d: int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp())  # noqa: E731
    return midnight(start), midnight(end) + 86400


def usage_query(handler) -> tuple[int, int, str]:
    """``from``/``to`` and ``group_by`` (account, user, cluster or partition)."""
    start, end = period(handler)
    group_by = handler.get_argument("group_by", "account")
    if group_by not in reports.GROUPINGS:
        raise Refused(400, f"group_by must be one of {', '.join(reports.GROUPINGS)}", "group_by")
    return start, end, group_by


def month_of(handler) -> str:
    """``month`` as YYYY-MM (UTC); this month by default."""
    month = handler.get_argument("month", dt.datetime.now(dt.UTC).strftime("%Y-%m"))
    try:
        statements.month_bounds(month)
    except ValueError as e:
        raise Refused(400, str(e), "month") from None
    return month
