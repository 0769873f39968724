"""The desktop's activity for the idle culler: its input counts, its screen updates do not."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from voila_apps.kit.desktop_activity import display_of, input_within, own_x_display

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("argv", "display"),
    [
        (["/usr/bin/Xtigervnc", ":3", "-localhost=1", "-rfbport", "-1"], ":3"),
        (["Xvnc", "-geometry", "1680x1050", ":12"], ":12"),
        (["/usr/bin/perl", "/usr/bin/vncserver", ":1"], ""),  # the wrapper, not the server
        (["Xtigervnc", "-desktop", "vm:1 (ann)"], ""),
        ([], ""),
    ],
)
def test_the_display_is_read_from_the_x_servers_own_command_line(argv, display):
    assert display_of(argv) == display


def test_only_input_within_the_last_minute_is_activity():
    assert input_within(0, 60) and input_within(59_999, 60)
    assert not input_within(60_000, 60) and not input_within(-1, 60)


def test_the_servers_own_x_server_is_found_among_its_descendants():
    # vncserver's place: a shell that starts the X server, here a sleeper named Xtigervnc.
    sleeper = f'exec -a Xtigervnc {sys.executable} -c "import time; time.sleep(30)" :7'
    shell = subprocess.Popen(["bash", "-c", f"{sleeper} & wait"])
    try:
        deadline = time.monotonic() + 10
        while (found := own_x_display(os.getpid())) != ":7" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert found == ":7"
    finally:
        subprocess.run(["pkill", "-P", str(shell.pid)], check=False)
        shell.kill()
        shell.wait()
    assert own_x_display(os.getpid()) == ""
