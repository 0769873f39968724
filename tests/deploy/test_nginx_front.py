"""The shipped nginx example (deploy/nginx/corehour.conf) in front of a real portal whose site
says ``tls.mode: front``: only the lines marked CHANGE are changed (ports, name, certificate,
proxy address), nginx serves HTTPS from a test CA, and the portal behind it sets Secure
cookies and passes WebSockets through."""

from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests
from tornado import web, websocket
from tornado.httpclient import HTTPRequest

from tests.harness import DEPLOY, TEST_PASSWORD, Portal, portal_site

pytestmark = pytest.mark.deploy

BASE = 29600  # the portal's proxy (front_listen), its API on +1, the hub on +81
HTTPS, HTTP, ECHO = 29643, 29680, 29699
PUBLIC = f"https://127.0.0.1:{HTTPS}"
EXAMPLE = DEPLOY / "nginx" / "corehour.conf"
PERSON = "chtest1"


def render_example(cert: Path, key: Path) -> str:
    """The example with its CHANGE lines set for this machine, and nothing else touched."""
    changes = {
        "listen 80;": f"listen 127.0.0.1:{HTTP};",
        "listen [::]:80;": "",  # IPv4 only: the test must not need IPv6
        "listen 443 ssl;": f"listen 127.0.0.1:{HTTPS} ssl;",
        "listen [::]:443 ssl;": "",
        "server_name portal.example.org;": "server_name 127.0.0.1;",
        "ssl_certificate     /etc/corehour/tls/portal.crt;": f"ssl_certificate {cert};",
        "ssl_certificate_key /etc/corehour/tls/portal.key;": f"ssl_certificate_key {key};",
        "proxy_pass http://127.0.0.1:8000;": f"proxy_pass http://127.0.0.1:{BASE};",
    }
    lines = []
    for line in EXAMPLE.read_text().splitlines():
        if "# CHANGE" in line and not line.lstrip().startswith("#"):
            directive = line.split("#", 1)[0].strip()
            assert directive in changes, f"a CHANGE line this test does not know: {line}"
            line = "    " + changes[directive]
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def front_portal(users, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("front")
    site = portal_site(BASE, workdir)
    site["hub"].update(
        bind_url=PUBLIC, tls={"mode": "front", "front_listen": f"http://127.0.0.1:{BASE}"}
    )
    portal = Portal(workdir, BASE, site=site).start()
    yield portal
    portal.stop()


@pytest.fixture(scope="module")
def nginx(front_portal, ca, tmp_path_factory):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    work = tmp_path_factory.mktemp("nginx")
    (work / "corehour.conf").write_text(render_example(ca["cert"], ca["key"]))
    temp = "\n".join(
        f"    {kind}_temp_path {work / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (work / "nginx.conf").write_text(
        f"pid {work / 'nginx.pid'};\nerror_log {work / 'error.log'};\n"
        "events {}\n"
        f"http {{\n    access_log {work / 'access.log'};\n{temp}\n"
        f"    include {work / 'corehour.conf'};\n}}\n"
    )
    checked = subprocess.run(
        [nginx, "-t", "-c", str(work / "nginx.conf")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(
        [nginx, "-c", str(work / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            requests.get(f"{PUBLIC}/hub/health", verify=ca["ca"], timeout=2)
            break
        except requests.RequestException:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, (work / "error.log").read_text()
            time.sleep(0.2)
    yield front_portal
    process.terminate()
    process.wait(timeout=20)


def test_plain_http_is_sent_to_https(nginx):
    reply = requests.get(f"http://127.0.0.1:{HTTP}/hub/login", allow_redirects=False, timeout=10)
    assert reply.status_code == 301
    # The example redirects to the standard HTTPS port of the name asked for.
    assert reply.headers["Location"] == "https://127.0.0.1/hub/login"


def test_login_through_nginx_sets_secure_cookies_and_hsts(nginx, ca):
    browser = requests.Session()
    # Per request: a session's own verify loses to REQUESTS_CA_BUNDLE in the environment.
    trust = {"verify": str(ca["ca"]), "timeout": 30}
    page = browser.get(f"{PUBLIC}/hub/login", **trust)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    reply = browser.post(
        f"{PUBLIC}/hub/login",
        data={"username": PERSON, "password": TEST_PASSWORD, "_xsrf": xsrf},
        allow_redirects=False,
        **trust,
    )
    assert reply.status_code == 302, reply.text[:300]
    # JupyterHub learned from X-Forwarded-Proto that people come over HTTPS: back to https.
    assert not reply.headers["Location"].startswith("http:")
    names = {cookie.name: cookie.secure for cookie in browser.cookies}
    assert "jupyterhub-hub-login" in names, names
    assert all(names.values()), names
    home = browser.get(f"{PUBLIC}/hub/home", **trust)
    assert home.status_code == 200 and PERSON in home.text


class Echo(websocket.WebSocketHandler):
    def on_message(self, message):
        self.write_message(message)


def test_websockets_pass_through_nginx_and_the_proxy(nginx, ca):
    """Kernels, terminals and desktops talk over WebSockets: one goes from the browser's side
    through nginx and configurable-http-proxy to a server behind them and back."""

    async def round_trip() -> str:
        server = web.Application([(r"/corehour-ws-echo/", Echo)]).listen(ECHO, "127.0.0.1")
        route = requests.post(
            f"http://127.0.0.1:{BASE + 1}/api/routes/corehour-ws-echo",
            json={"target": f"http://127.0.0.1:{ECHO}"},
            headers={"Authorization": f"token {nginx.proxy_token}"},
            timeout=10,
        )
        assert route.status_code == 201, route.text
        try:
            context = ssl.create_default_context(cafile=str(ca["ca"]))
            connection = await websocket.websocket_connect(
                HTTPRequest(f"wss://127.0.0.1:{HTTPS}/corehour-ws-echo/", ssl_options=context)
            )
            await connection.write_message("ping through nginx")
            answer = await asyncio.wait_for(connection.read_message(), 10)
            connection.close()
            return answer
        finally:
            requests.delete(
                f"http://127.0.0.1:{BASE + 1}/api/routes/corehour-ws-echo",
                headers={"Authorization": f"token {nginx.proxy_token}"},
                timeout=10,
            )
            server.stop()

    assert asyncio.run(round_trip()) == "ping through nginx"
