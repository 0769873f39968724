"""What the hub's own pages show about billing: balances and recent notices.

``c.JupyterHub.template_vars["corehour_billing"]`` is :func:`page_values`, called with
the current user for every hub page (None when nobody is logged in).
"""

from __future__ import annotations

import logging
from decimal import Decimal
from functools import partial

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from billing_hooks.charging import format_credits
from billing_hooks.db import make_engine, session_factory, upgrade
from billing_hooks.gate import SpendingGate, quote_mc_per_hour, request_tres
from billing_hooks.ledger import accounts_of
from billing_hooks.models import Enrolment, Notice, now
from spawners.options import validate_user_options

NOTICE_DAYS = 3
log = logging.getLogger("corehour.billing")
_sessions: dict[str, object] = {}


def page_values(user, database_url: str, prefix: str, currency: str) -> dict | None:
    """Never raises: a ledger that cannot be reached must not take the hub's pages down."""
    if user is None:
        return None
    try:
        return _values(user, database_url, prefix, currency)
    except SQLAlchemyError as e:
        log.error("billing values for %s unavailable: %s", user.name, e)
        return {
            "usage_url": f"{prefix}usage",
            "admin_url": f"{prefix}admin",
            "courses_url": f"{prefix}courses",
            "in_courses": False,
            "currency": currency,
            "accounts": [],
            "notices": [{"level": "warning", "message": "Balances cannot be shown right now."}],
        }


def _values(user, database_url: str, prefix: str, currency: str) -> dict:
    if database_url not in _sessions:
        upgrade(database_url)
        # Read-only: every hub page asks, and none should queue behind a metering cycle.
        _sessions[database_url] = session_factory(make_engine(database_url, read_only=True))
    sessions = _sessions[database_url]
    with sessions() as session:
        accounts = accounts_of(session, user.name)
        notices = session.scalars(
            select(Notice)
            .where(
                Notice.username == user.name,
                Notice.dismissed.is_(False),
                Notice.created_at >= now() - NOTICE_DAYS * 86400,
            )
            .order_by(Notice.id.desc())
            .limit(5)
        ).all()
        in_courses = session.scalar(
            select(Enrolment.id).where(Enrolment.username == user.name).limit(1)
        )
        return {
            "usage_url": f"{prefix}usage",
            "admin_url": f"{prefix}admin",
            "courses_url": f"{prefix}courses",
            "in_courses": in_courses is not None,
            "currency": currency,
            "accounts": [
                {"label": a.display_name or a.name, "available": format_credits(a.available_mc)}
                for a, _role in accounts
            ],
            "notices": [{"level": n.level, "message": n.message} for n in notices],
        }


def template_values(database_url: str, prefix: str, currency: str):
    return partial(page_values, database_url=database_url, prefix=prefix, currency=currency)


def app_prices(site, database_url: str):
    """``price(username, app)`` for the launcher's tiles: credits per hour at the base rate."""
    gates: list[SpendingGate] = []

    def price(_username: str, app: dict) -> str | None:
        try:
            if not gates:
                gates.append(SpendingGate(site, database_url))
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
                gates[0].rates, clusters, request.partition, tres, Decimal(1), now()
            )
        except Exception as e:  # a tile without a price beats a home page that fails
            log.error("no price for app %s: %s", app.get("slug"), e)
            return None
        return f"{format_credits(per_hour)} {site.billing.currency} per hour"

    return price
