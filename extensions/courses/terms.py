"""Whether a course's term is open: the one rule of courses that the hub and the billing
service both apply, kept apart from the course's settings model so the hub does not load it."""

from __future__ import annotations

import datetime as dt
from typing import Literal

Term = Literal["before", "open", "ended"]


def term_state(start: dt.date, end: dt.date, today: dt.date) -> Term:
    """Whether a term from ``start`` to ``end`` (both whole days) is open on ``today``."""
    if today < start:
        return "before"
    return "open" if today <= end else "ended"
