"""The configurable-http-proxy command line for a site: one source for the demo's start script
and the production unit, so both listen, redirect and serve TLS the same way.

The proxy's API token is never an argument (any local user reads those in /proc): the proxy
takes it from ``CONFIGPROXY_AUTH_TOKEN`` in its environment.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from centre.site import HubSettings

CHP = "configurable-http-proxy"
# A name in bind_url is the public one: the proxy listens on every IPv4 address of the host.
ALL_ADDRESSES = "0.0.0.0"


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = "127.0.0.1" if host == "localhost" else ALL_ADDRESSES
    return host, parts.port or default_port


def listen_address(hub: HubSettings) -> tuple[str, int]:
    """Where the proxy takes people's requests (from the front server, with mode front)."""
    if hub.tls.mode == "front":
        return _host_port(hub.tls.front_listen, 80)
    return _host_port(hub.bind_url, 443 if hub.https else 80)


def proxy_argv(hub: HubSettings, executable: str = CHP) -> list[str]:
    ip, port = listen_address(hub)
    api_ip, api_port = _host_port(hub.proxy_api_url, 8001)
    hub_url = f"http://{hub.hub_ip}:{hub.hub_port}"
    argv = [
        executable,
        f"--ip={ip}",
        f"--port={port}",
        f"--api-ip={api_ip}",
        f"--api-port={api_port}",
        f"--default-target={hub_url}",
        f"--error-target={hub_url}/hub/error",
    ]
    if hub.tls.mode == "proxy":
        argv += [f"--ssl-cert={hub.tls.certificate}", f"--ssl-key={hub.tls.key}"]
        if hub.tls.redirect_http_port:
            argv += [f"--redirect-port={hub.tls.redirect_http_port}", f"--redirect-to={port}"]
    return argv
