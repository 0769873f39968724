"""The hub's way to the ledger: the billing service's ``hub-reads`` routes.

The hub process keeps no ledger code and no ledger connection: the billing service owns
the ledger, and the hub asks it what a spawn and a page need (billing_hooks/service/
hub_reads.py).  That keeps the ledger's mapped classes, engines and statement caches out of
the process every person's request goes through (docs/benchmarks.md, hub_footprint).

Calls are plain blocking HTTP on localhost, made on the ledger threads (ledger_calls.py),
which give up on them at their deadline.  A service that cannot be reached, answers late or
says its ledger failed is :class:`LedgerUnavailable`, as a database that does not answer
was, so a spawn is refused with 503 and a page shows what it had.
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from urllib.parse import urlsplit

from billing_hooks.gate import AccountChoice
from billing_hooks.ledger_calls import DEADLINE_S, TIMEOUT_S, UNREACHABLE, LedgerUnavailable

log = logging.getLogger("corehour.billing")

# How often a call tries again while the service is not listening yet.
REFUSED_RETRY_S = 0.2
# The hub gives the billing service its token for these reads in this variable.
HUB_READS_TOKEN_ENV = "COREHOUR_HUB_READS_TOKEN"


class LedgerClient:
    """Reads of the ledger through the billing service at ``service_url`` + ``prefix``."""

    def __init__(
        self,
        service_url: str,
        prefix: str,
        token: str,
        timeout_s: float = TIMEOUT_S,
        start_wait_s: float = DEADLINE_S,
    ):
        parts = urlsplit(service_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"billing.service_url: expected http(s)://host:port, not {service_url!r}"
            )
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = "/" + prefix.strip("/") + "/"
        self.token = token
        self.timeout_s = timeout_s
        self.start_wait_s = start_wait_s

    def __deepcopy__(self, _memo) -> LedgerClient:
        # traitlets deep-copies config into every spawner; one client serves them all.
        return self

    def read(self, name: str, body: dict) -> object:
        """The answer of ``hub-reads/<name>`` to ``body``: LookupError with the service's
        message when it finds nothing, LedgerUnavailable when it cannot answer."""
        # The hub answers requests a moment before the service it started listens, and a
        # restarted service takes a few seconds: a start in that moment waits for it.
        give_up = time.monotonic() + self.start_wait_s
        while True:
            try:
                status, data = self._post(name, body)
                break
            except ConnectionRefusedError as e:
                if time.monotonic() >= give_up:
                    return self._unreachable(name, e)
                time.sleep(REFUSED_RETRY_S)
            except (OSError, http.client.HTTPException) as e:
                return self._unreachable(name, e)
        try:
            reply = json.loads(data)
        except ValueError:
            reply = {}
        if status == 200 and "answer" in reply:
            return reply["answer"]
        if status == 404:
            raise LookupError(reply.get("message", "not found"))
        log.error("hub-reads/%s: the billing service answered %s: %s", name, status, data[:200])
        raise LedgerUnavailable(UNREACHABLE)

    def _post(self, name: str, body: dict) -> tuple[int, bytes]:
        kind = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        connection = kind(self.host, self.port, timeout=self.timeout_s)
        try:
            connection.request(
                "POST",
                f"{self.prefix}hub-reads/{name}",
                body=json.dumps(body),
                headers={
                    "Authorization": f"token {self.token}",
                    "Content-Type": "application/json",
                },
            )
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _unreachable(self, name: str, error: Exception):
        log.error("the billing service did not answer hub-reads/%s: %s", name, error)
        raise LedgerUnavailable(UNREACHABLE) from None

    def accounts_for(self, username: str) -> list[AccountChoice]:
        """The accounts ``username`` may charge, personal first; the service opens the
        personal one on a first start."""
        return [AccountChoice.from_json(a) for a in self.read("accounts", {"username": username})]

    def page_values(self, username: str) -> dict:
        """What the hub's pages show of ``username``'s accounts and notices."""
        return self.read("page", {"username": username})
