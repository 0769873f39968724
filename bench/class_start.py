"""Class start: a class of students ask for servers within a few seconds of each other.

    /opt/corehour/hub/bin/python -m bench.class_start [--students 30] [--spread 5]

Ours goes the real course path: the admin creates a course through the billing service,
enrols the class, and each student asks for their course server (``course-<slug>``, charged
to the course account) with their own token.  The baseline is stock batchspawner
``SlurmSpawner`` (bench/stock.py) on its own portal, each student asking for their
default server.  Every student asks at a random moment within ``--spread`` seconds, the same
moments on both sides (fixed seed); time to ready runs from the request to the hub reporting
the server ready.  A failure is a refused request, a server the hub drops while it starts, or
one not ready within ``--timeout``.  The sides run one after the other, never together (the
machine has two cores).  Writes bench/results/class_start.json.  Needs the clusters and
environments that `./corehour test` sets up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import statistics
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import requests

from bench import cpu_use
from bench.report import write_result
from bench.spawn import percentile
from bench.stock import stock_config
from tests.harness import (
    SLURM_CONF,
    TEST_ADMIN,
    Portal,
    alive_jobs,
    ensure_users,
    portal_site,
    slurm,
)

COURSE = "bench30"
PORTS = {"ours": 27900, "stock": 27950}
SEED = 30
# One listing of the whole class per poll keeps the watching light and alike on both sides;
# a poll per student every 0.1 s would be hundreds of hub requests a second on two cores.
POLL_SECONDS = 0.25


@dataclass
class Request:
    """One student's ask for a server, as the benchmark saw it (monotonic seconds)."""

    sent: float
    answered: float
    ready: float | None = None
    failure: str | None = None

    @property
    def seconds_to_ready(self) -> float | None:
        return None if self.ready is None else self.ready - self.sent


def request_moments(users: list[str], spread: float, seed: int = SEED) -> dict[str, float]:
    """Seconds after the class starts at which each student asks, the same for both sides."""
    rng = random.Random(seed)
    return {user: rng.uniform(0, spread) for user in users}


def ask(portal: Portal, user: str, token: str, server: str, options: dict, at: float) -> Request:
    time.sleep(max(0.0, at - time.monotonic()))
    sent = time.monotonic()
    try:
        response = portal.start_server(user, token, server, **options)
    except requests.RequestException as e:
        return Request(sent, time.monotonic(), failure=f"the hub did not answer: {e}")
    answered = time.monotonic()
    if response.status_code not in (201, 202):
        return Request(sent, answered, failure=f"{response.status_code}: {response.text[:200]}")
    # 201: the hub waited for the spawn and it finished within its slow_spawn_timeout.
    return Request(sent, answered, ready=answered if response.status_code == 201 else None)


def active_servers(portal: Portal, server: str) -> dict[str, dict]:
    users = portal.request("GET", "/users", params={"state": "active", "limit": 200}).json()
    return {u["name"]: u["servers"][server] for u in users if server in u.get("servers", {})}


def watch(portal: Portal, asks: dict[str, Future], server: str, timeout: float) -> None:
    """Poll the hub until every answered request is ready or has failed."""
    while True:
        asked = time.monotonic()
        servers = active_servers(portal, server)
        seen = time.monotonic()
        waiting = False
        for user, future in asks.items():
            if not future.done():
                waiting = True
                continue
            request = future.result()
            if request.ready is not None or request.failure is not None:
                continue
            if request.answered > asked:  # the listing may predate the server
                waiting = True
            elif user not in servers:
                request.failure = "the hub dropped the server while it started"
            elif servers[user].get("ready"):
                request.ready = seen
            elif seen - request.sent > timeout:
                request.failure = f"not ready after {timeout:g} s"
            else:
                waiting = True
        if not waiting:
            return
        time.sleep(POLL_SECONDS)


def class_start(
    portal: Portal,
    tokens: dict[str, str],
    server: str,
    options: dict,
    moments: dict[str, float],
    timeout: float,
) -> dict[str, Request]:
    start = time.monotonic()
    with ThreadPoolExecutor(len(moments)) as pool:
        asks = {
            user: pool.submit(ask, portal, user, tokens[user], server, options, start + moment)
            for user, moment in moments.items()
        }
        watch(portal, asks, server, timeout)
    return {user: future.result() for user, future in asks.items()}


def class_jobs(users: list[str]) -> dict[str, list[dict]]:
    return {c: [j for j in alive_jobs(c) if j["user_name"] in users] for c in SLURM_CONF}


def wait_jobs_gone(users: list[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while left := [j["job_id"] for jobs in class_jobs(users).values() for j in jobs]:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"Slurm jobs of the class are still alive after {timeout:g} s: {left}; "
                "scancel them and run again"
            )
        time.sleep(0.5)


def open_course(portal: Portal, students: list[str]) -> tuple[str, dict]:
    """Create the course and enrol the class as the admin; the server name and spawn options."""
    admin = portal.user_token(TEST_ADMIN)
    portal.wait_billing(admin)
    today = dt.datetime.now(dt.UTC).date()
    settings = {
        "slug": COURSE,
        "title": f"Class start benchmark ({len(students)} students)",
        "term_start": (today - dt.timedelta(days=1)).isoformat(),
        "term_end": (today + dt.timedelta(days=30)).isoformat(),
        "student_cap": "1000",
        "budget": "100000",
        "default_profile": "cpu",
        "profiles": ["cpu"],
        "images": ["base"],
    }
    reply = portal.billing("POST", "api/courses", admin, json=settings)
    if reply.status_code != 201:
        raise RuntimeError(f"creating course {COURSE}: {reply.status_code} {reply.text}")
    # Enrolling adds Slurm associations on every cluster: longer than portal.billing's 30 s.
    reply = requests.post(
        f"{portal.billing_url}/api/courses/{COURSE}/enrolments",
        headers={"Authorization": f"token {admin}"},
        json={"people": [{"username": s, "role": "student"} for s in students]},
        timeout=120,
    )
    if reply.status_code != 200:
        raise RuntimeError(f"enrolling the class: {reply.status_code} {reply.text}")
    account = f"course-{COURSE}"
    return account, {"profile": "cpu", "account": account}


def run_side(kind: str, workdir: Path, students: list[str], moments, timeout) -> dict:
    site = portal_site(PORTS[kind], workdir / kind)
    # The benchmark's timeout decides, not the hub's own (90 s in test sites).
    site["hub"]["start_timeout"] = int(timeout)
    extra = stock_config() if kind == "stock" else ""
    wait_jobs_gone(students)
    portal = Portal(workdir / kind, PORTS[kind], site=site, extra_config=extra).start()
    try:
        server, options = open_course(portal, students) if kind == "ours" else ("", {})
        tokens = {s: portal.user_token(s) for s in students}
        before = cpu_use.sample()
        outcome = class_start(portal, tokens, server, options, moments, timeout)
        cpu = cpu_use.spent(before, cpu_use.sample())
        jobs = {c: len(j) for c, j in class_jobs(students).items()}
    finally:
        portal.stop_all(students)
        portal.stop()
    wait_jobs_gone(students)
    return summarise(kind, outcome, jobs, cpu)


def summarise(kind: str, outcome: dict[str, Request], jobs: dict[str, int], cpu: dict) -> dict:
    times = [r.seconds_to_ready for r in outcome.values() if r.seconds_to_ready is not None]
    failures = {u: r.failure for u, r in outcome.items() if r.failure is not None}
    if not times:
        raise RuntimeError(f"{kind}: no server became ready: {failures}")
    side = {
        "p50": statistics.median(times),
        "p95": percentile(times, 95),
        "times": sorted(times),
        "failures": failures,
        "jobs_per_cluster": jobs,
        "cpu_seconds": cpu,
    }
    print(
        f"{kind}: p50 {side['p50']:.2f} s, p95 {side['p95']:.2f} s, "
        f"{len(failures)} failures, jobs {jobs}"
    )
    print(f"  CPU seconds until the last server was ready: {cpu}")
    for user, why in sorted(failures.items()):
        print(f"  {user}: {why}")
    return side


def machine_facts() -> dict:
    cpu_nodes = {
        c: slurm(c, "sinfo", "-h", "-p", "cpu", "-o", "%D node(s), %c CPUs, %m MB").stdout.strip()
        for c in SLURM_CONF
    }
    return {
        "host_cpus": os.cpu_count(),
        "slurm": slurm("alpha", "sinfo", "--version").stdout.strip(),
        "cpu_partitions": cpu_nodes,
        "jupyterhub": version("jupyterhub"),
        "batchspawner": version("batchspawner"),
        "order": "ours first, then stock; never both at once",
    }


def combine(rounds: list[dict]) -> dict:
    """Several rounds of one side as one: the median round's p50 and p95, all failures."""
    return {
        "p50": statistics.median(r["p50"] for r in rounds),
        "p95": statistics.median(r["p95"] for r in rounds),
        "p95_rounds": [round(r["p95"], 3) for r in rounds],
        "times": sorted(t for r in rounds for t in r["times"]),
        "failures": {
            f"{u} (round {n})": why
            for n, r in enumerate(rounds, 1)
            for u, why in r["failures"].items()
        },
        "jobs_per_cluster": [r["jobs_per_cluster"] for r in rounds],
        "cpu_seconds": [r["cpu_seconds"] for r in rounds],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--spread", type=float, default=5.0, help="seconds the asks spread over")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to ready or fail")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds per side, in alternating order (ours, stock, stock, ours, ...), so that "
        "a slow spell of the machine does not land on one side only",
    )
    parser.add_argument(
        "--only",
        choices=("ours", "stock"),
        help="run one side only, to study it; prints the rounds and writes no result",
    )
    args = parser.parse_args()
    students = [f"chbs{i:02d}" for i in range(1, args.students + 1)]
    ensure_users(TEST_ADMIN, *students)
    moments = request_moments(students, args.spread)
    workdir = Path(tempfile.mkdtemp(prefix="corehour-bench-class-"))
    rounds: dict[str, list[dict]] = {"ours": [], "stock": []}
    try:
        for n in range(args.rounds):
            order = ("ours", "stock") if n % 2 == 0 else ("stock", "ours")
            for kind in order:
                if args.only and kind != args.only:
                    continue
                rounds[kind].append(
                    run_side(kind, workdir / f"round{n + 1}", students, moments, args.timeout)
                )
    except BaseException:
        print(f"hub logs kept in {workdir}/round<n>/<ours|stock>/jupyterhub.log")
        raise
    if args.only:
        print(f"{args.only}: p95 of each round {[round(r['p95'], 2) for r in rounds[args.only]]}")
        return
    ours, stock = combine(rounds["ours"]), combine(rounds["stock"])
    if ours["failures"] or stock["failures"]:
        print(f"hub logs kept in {workdir}/round<n>/<ours|stock>/jupyterhub.log")
    else:
        shutil.rmtree(workdir)
    print(
        f"median of {args.rounds} rounds: ours p95 {ours['p95']:.2f} s, stock p95 {stock['p95']:.2f} s"
    )
    write_result(
        "class_start",
        f"p95 seconds from a student's request to a ready server, {args.students} students"
        f" within {args.spread:g} s (median of {args.rounds} rounds)",
        "s",
        ours["p95"],
        stock["p95"],
        failures={"ours": len(ours["failures"]), "baseline": len(stock["failures"])},
        p50={"ours": round(ours["p50"], 3), "baseline": round(stock["p50"], 3)},
        p95_rounds={"ours": ours["p95_rounds"], "baseline": stock["p95_rounds"]},
        rounds=args.rounds,
        students=args.students,
        spread_seconds=args.spread,
        timeout_seconds=args.timeout,
        failure_reasons={"ours": ours["failures"], "baseline": stock["failures"]},
        jobs_per_cluster={"ours": ours["jobs_per_cluster"], "baseline": stock["jobs_per_cluster"]},
        cpu_seconds={"ours": ours["cpu_seconds"], "baseline": stock["cpu_seconds"]},
        ours_all=[round(t, 3) for t in ours["times"]],
        baseline_all=[round(t, 3) for t in stock["times"]],
        machine=machine_facts(),
    )


if __name__ == "__main__":
    main()
