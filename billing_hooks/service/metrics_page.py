"""``/services/billing/metrics``: the service's Prometheus metrics (billing_hooks/metrics.py).

Read with a hub token that holds ``read:metrics``, the scope the hub's own ``/hub/metrics``
asks for, so one scraper token reads both; people's logins and other tokens get 403.
"""

from __future__ import annotations

from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from billing_hooks.metrics import CONTENT_TYPE, BillingMetrics


class MetricsHandler(HubOAuthenticated, web.RequestHandler):
    hub_scopes = frozenset({"read:metrics"})

    def initialize(self, metrics: BillingMetrics) -> None:
        self.metrics = metrics

    def get_login_url(self) -> str:
        # A scraper has no browser to send to the hub's login: it gets 403, not a redirect.
        raise web.HTTPError(403, "send a hub API token with the scope read:metrics")

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        reason = getattr(error, "log_message", None) or self._reason
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}: {reason}\n")

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(self.metrics.exposition())
