"""Every corehour logger reaches the hub's log, in one format, at the site's level.

One portal: first with the example site's logging (INFO, text), then restarted with
``logging: {format: json, level: DEBUG}``.  Each test spawns a server, because the hub's
status board says at INFO when it starts watching a cluster.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from tests.harness import Portal, portal_site

PORT = 28800
USER = "chtest1"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"


@pytest.fixture(scope="module")
def portal(tmp_path_factory, users):
    workdir = tmp_path_factory.mktemp("logs")
    portal = Portal(workdir, PORT, site=portal_site(PORT, workdir)).start()
    yield portal
    portal.stop_all(users)
    portal.stop()


def spawn_and_stop(portal: Portal) -> None:
    """A server on alpha, started and stopped: the status board watches alpha meanwhile."""
    portal.start_and_wait([(USER, "")], {USER: portal.user_token(USER)}, cluster="alpha")
    portal.stop_server(USER)
    portal.wait_gone(USER)


def wait_for(portal: Portal, pattern: str, start: int = 0, timeout: float = 30) -> str:
    """The hub log from byte ``start`` on, once ``pattern`` is in it."""
    deadline = time.monotonic() + timeout
    while True:
        text = portal.log_path.read_bytes()[start:].decode(errors="replace")
        if re.search(pattern, text, re.MULTILINE):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"no line matches {pattern!r} in the hub log:\n{text[-4000:]}")
        time.sleep(0.2)


def test_corehour_lines_reach_the_hub_log_in_jupyterhubs_layout(portal):
    spawn_and_stop(portal)
    text = wait_for(portal, r"corehour\.status .* Watching servers on cluster alpha")
    # Logged inside the hub by the status board, at INFO, in the hub's own layout.
    assert re.search(
        rf"^\[I {STAMP} corehour\.status status_board:\d+\] Watching servers on cluster alpha: "
        r"one squeue --json every 3 s",
        text,
        re.MULTILINE,
    ), text[-4000:]
    # The billing service, a process the hub starts, writes the same layout into the same log.
    assert re.search(
        rf"^\[I {STAMP} corehour\.billing app:\d+\] billing service on ", text, re.MULTILINE
    )
    # JupyterHub says so only once its managed services answer, which can be after the API
    # (and so the spawn above) works: wait for it rather than race it.
    text = wait_for(portal, rf"^\[I {STAMP} JupyterHub app:\d+\] JupyterHub is now running")
    # INFO is the level: no DEBUG line from anyone.
    assert not re.search(r"^\[D ", text, re.MULTILINE)


def test_with_json_every_line_of_the_hub_log_is_json_at_debug(portal):
    site = {**portal.site, "logging": {"format": "json", "level": "DEBUG"}}
    (portal.workdir / "site.yaml").write_text(yaml.safe_dump(site))
    portal.stop_hub()
    start = portal.log_path.stat().st_size
    portal.start_hub()
    spawn_and_stop(portal)
    # The idle culler asks the hub every 5 s and says so at DEBUG.
    text = wait_for(portal, r'"level": "DEBUG", "logger": "IdleCuller"', start)
    text = wait_for(
        portal, r'"logger": "corehour.billing", .*"message": "billing service on', start
    )

    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"line {number} of the hub log after the restart is not JSON: {line!r}")
    assert all({"time", "level", "logger", "message"} <= record.keys() for record in records)
    said = {(r["logger"], r["level"], r["message"].split(":")[0]) for r in records}
    assert ("corehour.status", "INFO", "Watching servers on cluster alpha") in said
    loggers = {r["logger"] for r in records}
    # The hub with tornado's access log, the billing service and the idle culler: one format.
    assert {"JupyterHub", "corehour.billing", "IdleCuller"} <= loggers
    assert any(r["level"] == "DEBUG" and r["logger"] == "JupyterHub" for r in records)
