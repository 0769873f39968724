"""A Jupyter server extension of the desktop image: the desktop's keyboard and mouse count as
the server's activity, its screen updates do not.

jupyter-server-proxy counts every websocket frame as activity, both ways, so a desktop left
open in a tab, with a clock ticking on its panel, would never look idle to the culler.  The
desktop image turns that off for the desktop's websocket (its ``jupyter_server_config.py``),
and this extension asks the desktop's X server once a minute how long it has been since the
last key or pointer event (the MIT-SCREEN-SAVER extension's idle time, which TigerVNC's input
resets).  Input within that minute is the server's activity, as a kernel's work is.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from tornado.ioloop import PeriodicCallback

from centre.job_usage import child_pids

CHECK_SECONDS = 60
ACTIVITY_KEY = "corehour-desktop"
X_SERVERS = ("Xtigervnc", "Xvnc")


def display_of(argv: Iterable[str]) -> str:
    """The display (":1") of an X server's command line, or "" for any other program."""
    argv = list(argv)
    if not argv or Path(argv[0]).name not in X_SERVERS:
        return ""
    return next((arg for arg in argv[1:] if arg[:1] == ":" and arg[1:].isdigit()), "")


def input_within(idle_ms: int, seconds: float) -> bool:
    """Whether the X server saw a key or pointer event in the last ``seconds``."""
    return 0 <= idle_ms < seconds * 1000


def own_x_display(pid: int) -> str:
    """The display of the X server this process started (through vncserver), or ""."""
    pending, seen = [pid], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            argv = Path(f"/proc/{current}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        display = display_of(arg.decode(errors="replace") for arg in argv if arg)
        if display:
            return display
        pending.extend(child_pids(current))
    return ""


class _ScreenSaverInfo(ctypes.Structure):
    _fields_ = [
        ("window", ctypes.c_ulong),
        ("state", ctypes.c_int),
        ("kind", ctypes.c_int),
        ("til_or_since", ctypes.c_ulong),
        ("idle", ctypes.c_ulong),
        ("event_mask", ctypes.c_ulong),
    ]


def x_idle_ms(display: str) -> int | None:
    """Milliseconds since the display's last input, through libXss; None when it cannot tell
    (no such display, no cookie, no libXss on this node)."""
    try:
        xlib = ctypes.CDLL("libX11.so.6")
        xss = ctypes.CDLL("libXss.so.1")
    except OSError:
        return None
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XDefaultRootWindow.restype = ctypes.c_ulong
    xlib.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    xlib.XFree.argtypes = [ctypes.c_void_p]
    xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(_ScreenSaverInfo)
    xss.XScreenSaverQueryInfo.argtypes = [
        ctypes.c_void_p,
        ctypes.c_ulong,
        ctypes.POINTER(_ScreenSaverInfo),
    ]
    connection = xlib.XOpenDisplay(display.encode())
    if not connection:
        return None
    info = xss.XScreenSaverAllocInfo()
    try:
        if not info or not xss.XScreenSaverQueryInfo(
            connection, xlib.XDefaultRootWindow(connection), info
        ):
            return None
        return int(info.contents.idle)
    finally:
        if info:
            xlib.XFree(info)
        xlib.XCloseDisplay(connection)


def _load_jupyter_server_extension(server_app) -> None:
    settings = server_app.web_app.settings

    def idle_ms() -> int | None:
        display = own_x_display(os.getpid())  # none until the desktop is first opened
        return x_idle_ms(display) if display else None

    async def check() -> None:
        # Off the event loop: an X server that hangs must not hang the notebook server.
        idle = await asyncio.to_thread(idle_ms)
        if idle is not None and input_within(idle, CHECK_SECONDS):
            settings.setdefault("last_activity_times", {})[ACTIVITY_KEY] = datetime.now(UTC)

    PeriodicCallback(check, CHECK_SECONDS * 1000).start()


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": __name__}]
