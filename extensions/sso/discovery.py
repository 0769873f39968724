"""The provider's discovery document: where to send people, and where its keys are.

``check_discovery`` is pure: it takes the parsed JSON and the issuer from the site file and
returns the endpoints, or raises :class:`DiscoveryError` naming the missing or wrong key and
the URL it came from.  ``fetch_discovery`` is the thin shell that GETs it, once, at hub start.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

WELL_KNOWN = "/.well-known/openid-configuration"
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")


class DiscoveryError(ValueError):
    """The provider's discovery document is unusable; the message names the key and URL."""


@dataclass(frozen=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + WELL_KNOWN


def check_discovery(doc: object, issuer: str) -> Discovery:
    """The endpoints of ``doc``, checked against the site's ``issuer``.

    Refused: a document that is not a JSON object; an ``issuer`` that differs from the site's
    in any character (OpenID Connect Discovery §4.3: tokens name it exactly); a missing or
    non-URL endpoint; an http endpoint from an https issuer; PKCE methods listed without S256.
    """
    url = discovery_url(issuer)
    if not isinstance(doc, dict):
        raise DiscoveryError(f"{url} did not return a JSON object")
    if doc.get("issuer") != issuer:
        raise DiscoveryError(
            f"{url}: issuer is {doc.get('issuer')!r}, but the site file says {issuer!r}; "
            "copy the provider's value into auth.issuer exactly"
        )
    https_only = urlsplit(issuer).scheme == "https"
    for key in ENDPOINTS:
        value = doc.get(key)
        if not isinstance(value, str) or not value:
            raise DiscoveryError(f"{url}: {key} is missing; is {issuer} an OpenID Connect issuer?")
        scheme = urlsplit(value).scheme
        if scheme not in ("http", "https") or (https_only and scheme != "https"):
            raise DiscoveryError(f"{url}: {key} {value!r} is not an https URL")
    methods = doc.get("code_challenge_methods_supported")
    if methods is not None and "S256" not in methods:
        raise DiscoveryError(
            f"{url}: code_challenge_methods_supported is {methods!r}; the portal needs S256 (PKCE)"
        )
    return Discovery(issuer, *(doc[key] for key in ENDPOINTS))


def fetch_discovery(issuer: str, timeout: float = 10) -> Discovery:
    # Imported here: requests is ~10 MB of the hub's memory, and only a hub with single
    # sign-on fetches a discovery document.
    import requests

    url = discovery_url(issuer)
    try:
        response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
        response.raise_for_status()
    except requests.RequestException as e:
        raise DiscoveryError(f"cannot read {url}: {e}") from None
    try:
        doc = response.json()
    except ValueError:
        raise DiscoveryError(f"{url} did not return JSON") from None
    return check_discovery(doc, issuer)
