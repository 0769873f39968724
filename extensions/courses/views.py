"""What the course pages show, built from ledger rows and the hub's server list: pure.

The roster gives each person their server state, last activity and spend against their cap;
the burn-down gives the budget left at the end of each day; the CSV is the same roster for a
spreadsheet.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass

from billing_hooks.models import Course, Enrolment
from billing_hooks.statements import csv_safe
from centre.pricing import format_credits
from extensions.courses.hub import ServerView
from extensions.courses.store import Spent, cap_of


@dataclass(frozen=True)
class RosterRow:
    username: str
    role: str
    name: str
    email: str
    server: ServerView
    spent_mc: int
    cap_mc: int | None  # students only
    jobs: int

    @property
    def percent_of_cap(self) -> int | None:
        if not self.cap_mc:
            return None
        return min(999, round(100 * self.spent_mc / self.cap_mc))

    @property
    def at_cap(self) -> bool:
        return self.cap_mc is not None and self.spent_mc >= self.cap_mc

    def as_json(self) -> dict:
        return {
            "username": self.username,
            "role": self.role,
            "name": self.name,
            "email": self.email,
            "server": self.server.state,
            "server_url": self.server.url,
            "last_activity": self.server.last_activity,
            "spent": format_credits(self.spent_mc),
            "spent_mc": self.spent_mc,
            "cap": None if self.cap_mc is None else format_credits(self.cap_mc),
            "cap_mc": self.cap_mc,
            "percent_of_cap": self.percent_of_cap,
            "jobs": self.jobs,
        }


ROLE_ORDER = {"instructor": 0, "ta": 1, "student": 2}


def roster_rows(
    course: Course,
    enrolments: list[Enrolment],
    spent: dict[str, Spent],
    servers: dict[str, ServerView],
) -> list[RosterRow]:
    rows = [
        RosterRow(
            username=e.username,
            role=e.role,
            name=e.display_name,
            email=e.email,
            server=servers.get(e.username, ServerView("stopped")),
            spent_mc=spent.get(e.username, Spent()).mc,
            cap_mc=cap_of(course, e),
            jobs=spent.get(e.username, Spent()).jobs,
        )
        for e in enrolments
    ]
    return sorted(rows, key=lambda r: (ROLE_ORDER[r.role], r.username))


def burn_down(
    budget_mc: int, daily: list[tuple[dt.date, int]], start: dt.date, end: dt.date
) -> list[tuple[dt.date, int]]:
    """The budget left at the end of each day from the term's start (or the first charge)
    to the last charge or today, whichever the caller passes as ``end``."""
    if daily:
        start = min(start, daily[0][0])
        end = max(end, daily[-1][0])
    by_day = dict(daily)
    left, points, day = budget_mc, [], start
    while day <= end:
        left -= by_day.get(day, 0)
        points.append((day, left))
        day += dt.timedelta(days=1)
    return points


CSV_HEADER = ["username", "role", "name", "email", "spent", "cap", "percent_of_cap", "jobs"]


def usage_csv(rows: list[RosterRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for r in rows:
        writer.writerow(
            [
                r.username,
                r.role,
                csv_safe(r.name),
                csv_safe(r.email),
                format_credits(r.spent_mc),
                "" if r.cap_mc is None else format_credits(r.cap_mc),
                "" if r.percent_of_cap is None else r.percent_of_cap,
                r.jobs,
            ]
        )
    return out.getvalue()
