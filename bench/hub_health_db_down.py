"""``/hub/health`` and ``/hub/home`` while the ledger's PostgreSQL does not answer.

    /opt/corehour/hub/bin/python -m bench.hub_health_db_down [--rounds 10] [--pause 2]
        [--cap 30]

Two portals in one run, one after the other, each with its own PostgreSQL ledger
(127.0.0.1:5432) reached through a relay (tests/blackhole.py):

- ours: this working tree;
- baseline: 8efa8d7, unpacked with ``git archive`` into a temporary folder and run with its
  own harness, config and code (PYTHONPATH, so its billing service is 8efa8d7's too).

Each side starts, a person logs in and loads the home page and the spawn form (so the hub
holds ledger connections, as in use), then the relay is blackholed: connections stay open
and silent, new ones are accepted and never answered.  Then ``--rounds`` times: GET
/hub/health, then GET /hub/home as the logged-in person, each waited for at most ``--cap``
seconds, with ``--pause`` seconds between rounds (10 rounds of 2 s outlast the 15 s in
which our pages stop asking a failed ledger, so they include the ledger being asked
again).  A side whose hub stops answering is left after the first round in which neither
answered: its event loop is blocked, and further rounds would only wait out the cap again.

The figure is the slowest answer of all of a side's requests while the ledger is down; a
request that got no answer counts as ``--cap`` (so the baseline's figure is a lower bound).
Writes bench/results/hub_health_db_down.json.  Needs what ``./corehour test`` sets up.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import requests

from bench.report import write_result
from tests import harness
from tests.blackhole import Relay
from tests.ledger_db import PG_ADMIN, PG_PORT, drop_postgres, postgres_database_url, postgres_url

BASELINE_COMMIT = "8efa8d7"
USER = "chbenchdown"
PORTS = {"ours": 28500, "baseline": 28600}
TARGET_S = 1.0


def baseline_tree(into: Path) -> Path:
    """8efa8d7's files, as committed, in ``into``."""
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(harness.REPO), "archive", BASELINE_COMMIT],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def baseline_harness(tree: Path):
    """8efa8d7's tests/harness.py, so its Portal runs its own jupyterhub_config.py."""
    spec = importlib.util.spec_from_file_location("harness_baseline", tree / "tests" / "harness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class BaselinePortal(module.Portal):
        def env(self) -> dict:
            return {**super().env(), "PYTHONPATH": str(tree)}

    module.Portal = BaselinePortal
    return module


def bare_postgres() -> str:
    """An empty database: the baseline migrates it with its own (older) migrations."""
    name = f"corehour_bench_{os.getpid()}_{time.monotonic_ns() % 10**6}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_database_url(name)


def timed_get(session: requests.Session, url: str, cap: float) -> tuple[float, bool]:
    """Seconds until the answer, and whether one came (else ``cap``)."""
    started = time.monotonic()
    try:
        ok = session.get(url, timeout=cap).status_code == 200
    except requests.Timeout:
        return cap, False
    return time.monotonic() - started, ok


def run_side(kind: str, kit, url: str, workdir: Path, args) -> dict:
    rounds, cap = args.rounds, args.cap
    relay = Relay(PG_PORT).start()
    site = kit.portal_site(PORTS[kind], workdir)
    site["billing"]["database_url"] = url.replace(f":{PG_PORT}/", f":{relay.port}/")
    portal = kit.Portal(workdir, PORTS[kind], site=site)
    try:
        portal.start()
        token = portal.user_token(USER)
        portal.wait_billing(token)
        browser = portal.login(USER)
        health, home = f"{portal.url}/hub/health", f"{portal.url}/hub/home"
        assert browser.get(f"{portal.url}/hub/spawn", timeout=cap).ok
        up = [timed_get(browser, home, cap)[0] for _ in range(5)]
        relay.blackhole()
        samples: dict[str, list[float]] = {"health": [], "home": []}
        unanswered = 0
        for _ in range(rounds):
            answered = False
            for name, target in (("health", health), ("home", home)):
                seconds, ok = timed_get(requests if name == "health" else browser, target, cap)
                samples[name].append(seconds)
                answered |= ok
                unanswered += not ok
            print(f"{kind}: health {samples['health'][-1]:.3f} s, home {samples['home'][-1]:.3f} s")
            if not answered:
                break
            time.sleep(args.pause)
        return {
            "slowest": max(samples["health"] + samples["home"]),
            "health": samples["health"],
            "home": samples["home"],
            "unanswered": unanswered,
            "home_with_ledger_up": statistics.median(up),
        }
    finally:
        relay.close()  # frees the hub if it is stuck on the ledger, so it can stop
        portal.stop()
        drop_postgres(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between rounds")
    parser.add_argument("--cap", type=float, default=30.0, help="seconds to wait per request")
    args = parser.parse_args()
    harness.ensure_users(USER, harness.TEST_ADMIN)
    with tempfile.TemporaryDirectory(prefix="corehour-bench-") as tmp:
        tree = baseline_tree(Path(tmp) / "baseline-tree")
        results = {
            "ours": run_side("ours", harness, postgres_url(), Path(tmp) / "ours", args),
            "baseline": run_side(
                "baseline", baseline_harness(tree), bare_postgres(), Path(tmp) / "baseline", args
            ),
        }  # fmt: skip
    ours, baseline = results["ours"], results["baseline"]

    def rounded(side: dict) -> dict:
        return {
            key: [round(s, 4) for s in value] if isinstance(value, list) else round(value, 4)
            for key, value in side.items()
        }

    write_result(
        "hub_health_db_down",
        "slowest answer of /hub/health and /hub/home (logged in) while the ledger's PostgreSQL "
        f"is blackholed; no answer counts as the {args.cap:g} s cap",
        "s",
        ours["slowest"],
        baseline["slowest"],
        target=f"≤ {TARGET_S:g} s",
        within_target=ours["slowest"] <= TARGET_S and not ours["unanswered"],
        ours_detail=rounded(ours),
        baseline_detail=rounded(baseline),
        baseline_is=f"{BASELINE_COMMIT} (git archive), same machine, same PostgreSQL, same relay",
        machine=f"{os.cpu_count()} CPUs, JupyterHub 6.1.1, PostgreSQL via a local TCP relay",
    )


if __name__ == "__main__":
    main()
