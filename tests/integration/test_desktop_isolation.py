"""A person's desktop is theirs alone: reached only through their own server, never by another
portal user through the proxy, and never by another user on the node by port or by socket."""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from tests.billing_checks import wait_until

pytestmark = pytest.mark.integration

OWNER, OTHER = "chtest3", "chtest1"


def vnc_server(user: str) -> tuple[int, str, str]:
    """(pid, X display, VNC socket path) of the person's Xtigervnc."""
    found = subprocess.run(
        ["pgrep", "-u", user, "-a", "Xtigervnc"], capture_output=True, text=True
    ).stdout
    match = re.search(r"^(\d+) \S*Xtigervnc (:\d+) .*-rfbunixpath (\S+)", found, re.MULTILINE)
    return (int(match.group(1)), match.group(2), match.group(3)) if match else (0, "", "")


async def first_message(url: str, token: str) -> bytes:
    request = HTTPRequest(url, headers={"Authorization": f"token {token}"}, request_timeout=60)
    connection = await websocket_connect(request, subprotocols=["binary"])
    try:
        return await asyncio.wait_for(connection.read_message(), 60)
    finally:
        connection.close()


def as_other(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["runuser", "-u", OTHER, "--", *argv], capture_output=True, text=True, timeout=30
    )


def test_a_desktop_is_reached_only_by_its_owner_through_their_server(portal, tokens):
    reply = portal.start_server(
        OWNER, tokens[OWNER], "app-desktop", profile="cpu", image="desktop", cores=1, memory_gb=2
    )
    assert reply.status_code in (201, 202), reply.text
    portal.wait_ready(OWNER, "app-desktop", timeout=180)
    websocket = (
        portal.url.replace("http", "ws", 1) + f"/user/{OWNER}/app-desktop/desktop-websockify/"
    )

    # The owner's own server starts TigerVNC on first use and speaks VNC to them.
    banner = asyncio.run(first_message(websocket, tokens[OWNER]))
    assert banner.startswith(b"RFB 003."), banner
    pid, display, socket_path = wait_until(
        lambda: vnc_server(OWNER)[0] and vnc_server(OWNER), 30, "no Xtigervnc of the owner"
    )

    # Another portal user, through the proxy, with their own valid token: refused.
    with pytest.raises(HTTPClientError) as refused:
        asyncio.run(first_message(websocket, tokens[OTHER]))
    assert refused.value.code in (302, 403), refused.value

    # On the node: no port at all, TCP or UDP, belongs to the VNC server.
    sockets = subprocess.run(["ss", "-Htulnp"], capture_output=True, text=True).stdout
    assert f"pid={pid}," not in sockets, sockets
    # Its socket sits in a folder only the owner can enter.
    attempt = as_other(
        "python3", "-c",
        "import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])",
        socket_path,
    )  # fmt: skip
    assert attempt.returncode != 0 and "Permission denied" in attempt.stderr, attempt
    # The X display asks for the owner's cookie, which another user cannot read.
    x_attempt = as_other("env", f"DISPLAY={display}", "xdpyinfo")
    assert x_attempt.returncode != 0, x_attempt.stdout[:200]
    portal.stop_server(OWNER, "app-desktop")
