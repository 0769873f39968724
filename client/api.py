"""The portal's public API (extensions/public_api/openapi.yaml) as one method a route.

Stdlib only, so it runs on a laptop with nothing installed.  Every method returns the reply's
JSON; every refusal, and a portal that cannot be reached, is an ``ApiError``.
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.error
import urllib.request
from urllib.parse import quote

ROUTES = {
    "jobs": ("GET", "/hub/api/corehour/jobs"),
    "submit": ("POST", "/hub/api/corehour/jobs/{cluster}"),
    "job": ("GET", "/hub/api/corehour/jobs/{cluster}/{job_id}"),
    "output": ("GET", "/hub/api/corehour/jobs/{cluster}/{job_id}/output"),
    "cancel": ("POST", "/hub/api/corehour/jobs/{cluster}/{job_id}/cancel"),
    "me": ("GET", "/services/billing/api/me"),
    "bill": ("GET", "/services/billing/api/jobs/{cluster}/{job_id}/bill"),
    "whoami": ("GET", "/hub/api/user"),
}
# JupyterHub's own routes: the portal serves them, but the public API's document leaves them out.
JUPYTERHUB_ROUTES = frozenset({"whoami"})

SUBMISSION_FIELDS = (
    "name",
    "profile",
    "cores",
    "memory_gb",
    "gpus",
    "walltime_hours",
    "tasks",
    "account",
)
UNREACHABLE = 0


class ApiError(Exception):
    """A refusal from the portal (``status`` its HTTP status, ``field`` the value it refused),
    or ``status`` 0 when the portal could not be reached."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def tls_context(verify_tls: bool | str) -> ssl.SSLContext:
    """The system's CAs (True), a CA file's (a path), or no check at all (False)."""
    if verify_tls is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if isinstance(verify_tls, str):
        return ssl.create_default_context(cafile=verify_tls)
    return ssl.create_default_context()


def error_from_reply(status: int, reason: str, body: bytes) -> ApiError:
    """The portal's JSON error ``{"status", "message", "field"}``, or what a proxy in front of
    it said when the body is not JSON."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return ApiError(status, data["message"], data.get("field") or None)
    text = body.decode("utf-8", "replace").strip()
    if text and not text.startswith("<") and len(text) <= 300:
        return ApiError(status, text)
    return ApiError(status, f"HTTP {status} {reason}".strip())


class Portal:
    """One portal, called with one person's API token."""

    def __init__(
        self, url: str, token: str, timeout: float = 30, verify_tls: bool | str = True
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token.strip()
        self.timeout = timeout
        self.tls = tls_context(verify_tls) if self.url.startswith("https:") else None

    def __repr__(self) -> str:
        return f"Portal({self.url!r})"

    def jobs(self) -> dict:
        """Your jobs of the last week on every cluster, and the clusters that did not answer."""
        return self.call("jobs")

    def submit(self, cluster: str, script: str, **fields: object) -> dict:
        """Submits ``script`` to ``cluster``; ``fields`` are the Submission's other values, and
        the ones left out or None take the portal's defaults."""
        unknown = sorted(set(fields) - set(SUBMISSION_FIELDS))
        if unknown:
            raise TypeError(f"submit() has no field {', '.join(unknown)}")
        body = {"script": script}
        body.update({k: v for k, v in fields.items() if v is not None})
        return self.call("submit", body, cluster=cluster)

    def job(self, cluster: str, job_id: str) -> dict:
        return self.call("job", cluster=cluster, job_id=job_id)

    def output(self, cluster: str, job_id: str) -> dict:
        return self.call("output", cluster=cluster, job_id=job_id)

    def cancel(self, cluster: str, job_id: str) -> dict:
        return self.call("cancel", cluster=cluster, job_id=job_id)

    def me(self) -> dict:
        """Your accounts with their balances, and your notices."""
        return self.call("me")

    def bill(self, cluster: str, job_id: str) -> dict:
        return self.call("bill", cluster=cluster, job_id=job_id)

    def whoami(self) -> dict:
        """The token's owner, as JupyterHub knows them."""
        return self.call("whoami")

    def call(self, route: str, body: object = None, **parts: str) -> dict:
        method, template = ROUTES[route]
        path = template.format(**{k: quote(str(v), safe="") for k, v in parts.items()})
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers=self._headers(body is not None),
        )
        return self._send(request, f"{method} {path}")

    def _headers(self, has_body: bool) -> dict[str, str]:
        headers = {"Authorization": f"token {self.token}", "Accept": "application/json"}
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _send(self, request: urllib.request.Request, what: str) -> dict:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.tls) as reply:
                body = reply.read()
        except urllib.error.HTTPError as e:
            raise error_from_reply(e.code, e.reason or "", e.read()) from None
        except urllib.error.URLError as e:
            raise self._unreachable(e.reason) from None
        except (OSError, http.client.HTTPException) as e:
            raise self._unreachable(e) from None
        try:
            return json.loads(body) if body else {}
        except (ValueError, UnicodeDecodeError):
            raise ApiError(
                UNREACHABLE,
                f"{self.url} answered {what} with something that is not JSON; "
                "is it the portal's address (the part before /hub)?",
            ) from None

    def _unreachable(self, reason: object) -> ApiError:
        return ApiError(
            UNREACHABLE, f"cannot reach the portal at {self.url}: {reason or 'no answer'}"
        )
