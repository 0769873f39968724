"""The billing service: a hub-managed process with the API, the pages and the meter loop.

JupyterHub starts it (``c.JupyterHub.services``) through its composition root,
``roots/billing.py``, which adds the plugins (courses); the hub passes its URL, prefix and
token in the environment, and ``--site`` names the site file.  The meter runs every
``meter_interval`` seconds, then enforcement and the plugins' steps; a failed cycle is
logged and retried at the next one.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlparse

import plotly
from jupyterhub.services.auth import HubOAuthCallbackHandler
from jupyterhub.utils import url_path_join
from tornado import web

from billing_hooks.db import (
    LedgerNotMigrated,
    database_url,
    make_engine,
    require_head,
    session_factory,
)
from billing_hooks.enforce import Enforcer
from billing_hooks.hub_client import HubClient
from billing_hooks.ledger_calls import TIMEOUT_S
from billing_hooks.ledger_client import HUB_READS_TOKEN_ENV
from billing_hooks.meter import Meter
from billing_hooks.metrics import BillingMetrics
from billing_hooks.rates_sync import store_rates
from billing_hooks.service import api, pages
from billing_hooks.service.base import FreshHubOAuth
from billing_hooks.service.context import Context
from billing_hooks.service.hub_reads import LedgerReads
from billing_hooks.service.metrics_page import MetricsHandler
from billing_hooks.service.plugin import ServicePlugin
from billing_hooks.slurm_accounts import SlurmAccounts
from centre.api_scopes import BILLING
from centre.logs import configure_process
from centre.pricing import RateBook
from centre.site import DEFAULT_SITE, Site, load_site_or_exit

log = logging.getLogger("corehour.billing")
OPENAPI_FILE = api.OPENAPI
PLOTLY_JS = Path(plotly.__file__).parent / "package_data"
# The hub starts its services in its state folder (deploy/hub.sh; the tests' harness too).
COOKIE_SECRET_FILE = "billing_cookie_secret"
COOKIE_SECRET_ENV = "COREHOUR_BILLING_COOKIE_SECRET_FILE"


# Paths below api/, as openapi.yaml names them; a test keeps the two in step.
API_ROUTES = {
    "openapi.yaml": api.OpenApiHandler,
    "me": api.MeHandler,
    "notices/{id}/dismiss": api.DismissHandler,
    "accounts": api.AccountsHandler,
    "accounts/{name}": api.AccountHandler,
    "accounts/{name}/members": api.MembersHandler,
    "accounts/{name}/transactions": api.TransactionsHandler,
    "accounts/{name}/charges": api.ChargesHandler,
    "jobs/running": api.RunningHandler,
    "jobs/{cluster}/{id}/bill": api.JobBillHandler,
    "usage": api.UsageHandler,
}


def _pattern(path: str) -> str:
    """``accounts/{name}`` → a tornado pattern; ids are digits, names anything but '/'."""
    parts = re.split(r"(\{\w+\})", path)
    return "".join(
        (r"(\d+)" if part == "{id}" else r"([^/]+)") if part.startswith("{") else re.escape(part)
        for part in parts
    )


def make_app(
    ctx: Context,
    cookie_secret: bytes,
    plugins: list[ServicePlugin] = (),
    metrics: BillingMetrics | None = None,
) -> tuple[web.Application, list[Callable[[], Awaitable[object]]]]:
    """The service's web application, and the plugins' steps for each meter cycle."""
    p = ctx.prefix
    mine = {"ctx": ctx}
    handlers = [
        (f"{p}metrics", MetricsHandler, {"metrics": metrics or BillingMetrics()}),
        (p, web.RedirectHandler, {"url": f"{p}usage"}),
        (f"{p}oauth_callback", HubOAuthCallbackHandler),
        (f"{p}usage", pages.UsagePage, mine),
        (rf"{p}usage/statement\.(csv|pdf)", pages.StatementDownload, mine),
        (f"{p}admin", pages.AdminPage, mine),
        (rf"{p}admin/usage\.csv", pages.AdminUsageCsv, mine),
        (rf"{p}admin/(transactions|accounts|members)", pages.AdminAction, mine),
        *((f"{p}api/{_pattern(path)}", handler, mine) for path, handler in API_ROUTES.items()),
        (rf"{p}static/plotly/(plotly\.min\.js)", web.StaticFileHandler, {"path": str(PLOTLY_JS)}),
    ]
    reads = LedgerReads(ctx.billing, ctx.write_sessions, ctx.read_sessions)
    handlers.extend((f"{p}{path}", h, a) for path, h, a in reads.routes(ctx.hub_reads_token))
    cycle = []
    for plugin in plugins:
        parts = plugin.setup(ctx)
        handlers.extend((f"{p}{pattern}", handler, args) for pattern, handler, args in parts.pages)
        handlers.extend(
            (f"{p}api/{_pattern(path)}", handler, parts.api_arguments)
            for path, handler in plugin.API_ROUTES.items()
        )
        cycle.extend(parts.cycle)
    application = web.Application(
        handlers,
        cookie_secret=cookie_secret,
        compress_response=True,
        xsrf_cookies=True,
        login_url=f"{p}oauth_callback",
    )
    return application, cycle


def api_routes(plugins: list[ServicePlugin] = ()) -> dict[str, type[web.RequestHandler]]:
    """Every path below api/ the service serves with these plugins, and its handler."""
    routes = dict(API_ROUTES)
    for plugin in plugins:
        routes.update(plugin.API_ROUTES)
    return routes


async def meter_loop(
    meter: Meter,
    enforcer: Enforcer,
    steps: list[Callable[[], Awaitable[object]]],
    interval: float,
    metrics: BillingMetrics | None = None,
) -> None:
    while True:
        started = time.monotonic()
        report = plan = None
        try:
            report = await meter.cycle()
            log.info(
                "meter: %d jobs charged, %d rows, %s mc, %d errors in %.2f s",
                report.jobs_charged,
                report.rows_written,
                report.charged_mc,
                len(report.errors),
                time.monotonic() - started,
            )
            plan = await enforcer.run()
            for step in steps:
                await step()
        except Exception:
            log.exception("meter cycle failed; retrying at the next one")
        if metrics is not None:
            thresholds = meter.site.billing.warn_at_percent
            metrics.record(time.monotonic() - started, report, plan, thresholds)
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))


def load_cookie_secret(path: Path) -> bytes:
    """The key that signs the service's login cookies, made once and kept root-only.

    A key made anew at each start would sign everyone out of the billing pages whenever the
    hub restarts the service; a key others can read lets them forge any person's cookie, so
    such a file is replaced, as is one too short to be a key.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return _new_cookie_secret(path)
    if info.st_mode & 0o077 or info.st_uid != os.geteuid():
        log.warning("%s could be read or written by others; made a new cookie secret", path)
        return _new_cookie_secret(path)
    secret = path.read_bytes().strip()
    if len(secret) < 32:
        log.warning("%s holds no usable cookie secret; made a new one", path)
        return _new_cookie_secret(path)
    return secret


def _new_cookie_secret(path: Path) -> bytes:
    secret = secrets.token_hex(32).encode()
    fresh = path.with_name(f".{path.name}.{os.getpid()}")
    fresh.unlink(missing_ok=True)
    with os.fdopen(os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
        f.write(secret)
    fresh.replace(path)
    return secret


async def serve(site: Site, cookie_secret_file: Path, plugins: list[ServicePlugin]) -> None:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    url = database_url(site.billing.database_url)
    try:
        # The hub checked too, but the service may be started (or restarted) on its own.
        require_head(url)
    except LedgerNotMigrated as e:
        raise SystemExit(f"corehour billing: {e}") from None
    # Every request asks the hub who its token belongs to (base.FreshHubOAuth).
    auth = FreshHubOAuth.instance()
    # A personal token made for bills alone opens the service (the route checks it too).
    auth.access_scopes = {*auth.access_scopes, BILLING}
    sessions = session_factory(make_engine(url))
    rates = RateBook.from_site(site.billing)
    store_rates(sessions, site.billing)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/billing/")
    hub_base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
    hub = HubClient(os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"])
    slurm = SlurmAccounts(site)
    ctx = Context(
        site,
        sessions,
        rates,
        hub,
        slurm,
        prefix,
        url_path_join(hub_base, "hub/"),
        reads=session_factory(make_engine(url, read_only=True, timeout_s=TIMEOUT_S)),
        quick_writes=session_factory(make_engine(url, timeout_s=TIMEOUT_S)),
        hub_reads_token=os.environ.get(HUB_READS_TOKEN_ENV, ""),
    )
    metrics = BillingMetrics()
    app, plugin_steps = make_app(ctx, load_cookie_secret(cookie_secret_file), plugins, metrics)
    bind = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
    app.listen(bind.port or 80, bind.hostname or "127.0.0.1", max_body_size=1024 * 1024)
    log.info("billing service on %s%s", bind.geturl(), prefix)
    meter = Meter(site, sessions, rates)
    enforcer = Enforcer(site, sessions, hub, slurm, ctx.usage_url)
    try:
        await meter_loop(meter, enforcer, plugin_steps, site.billing.meter_interval, metrics)
    except asyncio.CancelledError:
        log.info("billing service stopping")


def main(plugins: list[ServicePlugin] = ()) -> None:
    """Run the service; its composition root (roots/billing.py) passes the plugins."""
    parser = argparse.ArgumentParser(description="corehour billing service (started by the hub)")
    parser.add_argument("--site", default=os.environ.get("COREHOUR_SITE", DEFAULT_SITE))
    parser.add_argument(
        "--cookie-secret-file",
        type=Path,
        default=Path(os.environ.get(COOKIE_SECRET_ENV, COOKIE_SECRET_FILE)),
        help="the key that signs login cookies, made on first start (root only); a relative "
        "path is in the working directory, which the hub makes its own state folder",
    )
    args = parser.parse_args()
    site = load_site_or_exit(args.site)
    if site.billing is None:
        raise SystemExit(f"corehour billing: {args.site} has no billing section")
    configure_process(site.logging.level, site.logging.format)
    try:
        asyncio.run(serve(site, args.cookie_secret_file.absolute(), list(plugins)))
    except KeyboardInterrupt:  # the hub stops its services with SIGTERM/SIGINT
        log.info("billing service stopped")
