"""What the hub's own pages show about billing: balances and recent notices.

``c.JupyterHub.template_vars["corehour_billing"]`` is :func:`page_values`, called with
the current user for every hub page (None when nobody is logged in).  JupyterHub calls it
synchronously on its event loop, so the ledger is read on a ledger thread and a page waits
for it only briefly (ledger_calls.Latest): when the ledger does not answer, pages show the
last balances they had, or none, with a notice, and render at once.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from functools import partial

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing_hooks import ledger_calls
from billing_hooks.db import make_engine, session_factory
from billing_hooks.gate import quote_mc_per_hour, request_tres
from billing_hooks.ledger import accounts_of
from billing_hooks.models import Enrolment, Notice, now
from centre.options import validate_user_options
from centre.pricing import RateBook, format_credits

NOTICE_DAYS = 3
STALE = "Balances may be out of date: the billing ledger does not answer right now."
UNAVAILABLE = "Balances cannot be shown right now: the billing ledger does not answer."
log = logging.getLogger("corehour.billing")
_sessions: dict[str, sessionmaker[Session]] = {}
_sessions_lock = threading.Lock()


def page_values(user, latest: ledger_calls.Latest, prefix: str, currency: str) -> dict | None:
    """Never waits long and never raises: the ledger must not take the hub's pages down."""
    if user is None:
        return None
    values, current = latest.get(user.name)
    notices = [] if current else [{"level": "warning", "message": STALE if values else UNAVAILABLE}]
    values = values or {"in_courses": False, "accounts": [], "notices": []}
    return {
        "usage_url": f"{prefix}usage",
        "admin_url": f"{prefix}admin",
        "courses_url": f"{prefix}courses",
        "currency": currency,
        **values,
        "notices": notices + values["notices"],
    }


def ledger_values(database_url: str, username: str) -> dict:
    """On a ledger thread: ``username``'s accounts, recent notices and whether in a course."""
    with _reader(database_url)() as session:
        accounts = accounts_of(session, username)
        notices = session.scalars(
            select(Notice)
            .where(
                Notice.username == username,
                Notice.dismissed.is_(False),
                Notice.created_at >= now() - NOTICE_DAYS * 86400,
            )
            .order_by(Notice.id.desc())
            .limit(5)
        ).all()
        in_courses = session.scalar(
            select(Enrolment.id).where(Enrolment.username == username).limit(1)
        )
        return {
            "in_courses": in_courses is not None,
            "accounts": [
                {"label": a.display_name or a.name, "available": format_credits(a.available_mc)}
                for a, _role in accounts
            ],
            "notices": [{"level": n.level, "message": n.message} for n in notices],
        }


def _reader(database_url: str) -> sessionmaker[Session]:
    with _sessions_lock:
        if database_url not in _sessions:
            # Read-only: every hub page asks, and none should queue behind a metering cycle.
            engine = make_engine(database_url, read_only=True, timeout_s=ledger_calls.TIMEOUT_S)
            _sessions[database_url] = session_factory(engine)
        return _sessions[database_url]


def template_values(database_url: str, prefix: str, currency: str):
    latest = ledger_calls.Latest(partial(ledger_values, database_url))
    return partial(page_values, latest=latest, prefix=prefix, currency=currency)


def app_prices(site):
    """``price(username, app)`` for the launcher's tiles: credits per hour at the base rate.

    Rates come from the site file, so a tile's price never waits on the ledger.
    """
    rates = RateBook.from_site(site.billing)

    def price(_username: str, app: dict) -> str | None:
        try:
            options = {
                "profile": app["profile"],
                "image": app["image"],
                **(app.get("resources") or {}),
            }
            request = validate_user_options(options, site)
            tres = request_tres(request.cores, request.gpus, request.memory_gb)
            clusters = (
                request.candidate_clusters if request.cluster == "auto" else (request.cluster,)
            )
            per_hour = quote_mc_per_hour(
                rates, clusters, request.partition, tres, Decimal(1), now()
            )
        except Exception as e:  # a tile without a price beats a home page that fails
            log.error("no price for app %s: %s", app.get("slug"), e)
            return None
        return f"{format_credits(per_hour)} {site.billing.currency} per hour"

    return price
