"""What the hub's own pages show about billing: balances and recent notices.

``c.JupyterHub.template_vars["corehour_billing"]`` is :func:`page_values`, called with
the current user for every hub page (None when nobody is logged in).  JupyterHub calls it
synchronously on its event loop, so the billing service is asked on a ledger thread and a page waits
for it only briefly (ledger_calls.Latest): when the ledger does not answer, pages show the
last balances they had, or none, with a notice, and render at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from functools import partial

from billing_hooks import ledger_calls
from billing_hooks.gate import now, quote_mc_per_hour, request_tres
from centre.options import validate_user_options
from centre.pricing import RateBook, format_credits

STALE = "Balances may be out of date: the billing ledger does not answer right now."
UNAVAILABLE = "Balances cannot be shown right now: the billing ledger does not answer."
log = logging.getLogger("corehour.billing")


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


def template_values(read_page: Callable[[str], dict], prefix: str, currency: str):
    """``read_page(username)`` is the ledger's values for a person's pages
    (LedgerClient.page_values), called on a ledger thread."""
    latest = ledger_calls.Latest(read_page)
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
