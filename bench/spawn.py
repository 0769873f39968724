"""Spawn benchmarks: corehour's spawner against stock batchspawner, in one run.

    /opt/corehour/hub/bin/python -m bench.spawn [--runs 10] [--burst 20]

Both spawners run on the same hub stack (JupyterHub, the proxy, the image,
the alpha cluster); only the spawner class differs.  Writes
bench/results/spawn_latency.json, spawn_burst.json and poll_calls.json.
Needs the clusters and environments that `./corehour test` sets up.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.report import write_result
from bench.stock import stock_config
from tests.harness import Portal, alive_jobs, ensure_users, portal_site, slurm

# Counting over several cycles keeps a cycle boundary at the window's edge from doubling it.
CYCLES_COUNTED = 3
METER_QUIET = 3600.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def spawn_and_wait(portal: Portal, user: str, token: str, options: dict) -> float:
    started = time.monotonic()
    response = portal.start_server(user, token, **options)
    if response.status_code not in (201, 202):
        raise RuntimeError(f"{user}: {response.status_code} {response.text}")
    portal.wait_ready(user, timeout=120)
    return time.monotonic() - started


def job_info_rpcs(cluster: str) -> int:
    """Job-information RPCs slurmctld has served since the last `sdiag -r`."""
    text = slurm(cluster, "sdiag").stdout
    section = text.split("Remote Procedure Call statistics by message type", 1)[1]
    section = section.split("Remote Procedure Call statistics by user", 1)[0]
    return sum(
        int(n) for n in re.findall(r"REQUEST_JOB_INFO\w*\s*\(\s*\d+\)\s+count:(\d+)", section)
    )


class Side:
    """One portal (ours or stock) with its tokens and spawn options."""

    def __init__(self, kind: str, workdir: Path, port: int, users: list[str], cycle: float):
        # Metering asks squeue too (every 2 s in test sites); here it would be counted as the
        # spawner's polling, on both sides, so it runs once an hour.
        site = portal_site(port, workdir / kind, poll_interval=cycle, meter_interval=METER_QUIET)
        extra = stock_config() if kind == "stock" else ""
        self.kind = kind
        self.portal = Portal(workdir / kind, port, site=site, extra_config=extra).start()
        self.tokens = {u: self.portal.user_token(u) for u in users}
        self.options = {"cluster": "alpha", "profile": "cpu"} if kind == "ours" else {}

    def spawn(self, user: str) -> float:
        return spawn_and_wait(self.portal, user, self.tokens[user], self.options)

    def burst(self, users: list[str]) -> tuple[list[float], int]:
        with ThreadPoolExecutor(len(users)) as pool:
            futures = [pool.submit(self.spawn, u) for u in users]
        times, failures = [], 0
        for future in futures:
            try:
                times.append(future.result())
            except Exception as e:  # a failed spawn is a result, not a crash
                print(f"{self.kind}: burst spawn failed: {e}")
                failures += 1
        self.portal.stop_all(users)
        return times, failures

    def poll_queries(self, users: list[str], cycle: float) -> tuple[float, int]:
        """Job-info RPCs slurmctld serves per poll cycle while ``users`` all run servers."""
        self.start_all(users)
        time.sleep(cycle * 1.5)  # let every server settle into the regular cycle
        running = len([j for j in alive_jobs("alpha") if j["user_name"] in users])
        slurm("alpha", "sdiag", "-r")
        time.sleep(cycle * CYCLES_COUNTED)
        queries = job_info_rpcs("alpha") / CYCLES_COUNTED
        self.portal.stop_all(users)
        return queries, running

    def start_all(self, users: list[str]) -> None:
        with ThreadPoolExecutor(len(users)) as pool:
            list(pool.map(self.spawn, users))


def measure(workdir: Path, users: list[str], runs: int, bursts: int, cycle: float) -> dict:
    """Alternate ours and stock run by run, so drift on a busy machine hits both alike."""
    sides = [
        Side("ours", workdir, 29000, users, cycle),
        Side("stock", workdir, 29200, users, cycle),
    ]
    results = {s.kind: {"latencies": [], "burst_p95s": [], "failures": 0} for s in sides}
    try:
        for run in range(runs):
            for side in sides if run % 2 == 0 else reversed(sides):
                results[side.kind]["latencies"].append(side.spawn(users[0]))
                side.portal.stop_all(users[:1])
        for run in range(bursts):
            for side in sides if run % 2 == 0 else reversed(sides):
                times, failures = side.burst(users)
                results[side.kind]["burst_p95s"].append(percentile(times, 95))
                results[side.kind]["failures"] += failures
                print(f"{side.kind}: burst p95 {percentile(times, 95):.2f} s, failures {failures}")
        for side in sides:
            queries, running = side.poll_queries(users, cycle)
            results[side.kind].update(poll_queries=queries, servers_polled=running)
            print(f"{side.kind}: {queries:g} job queries per {cycle:g} s cycle, {running} servers")
    finally:
        for side in sides:
            side.portal.stop_all(users)
            side.portal.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--bursts", type=int, default=3, help="bursts per spawner")
    parser.add_argument("--cycle", type=float, default=10.0, help="poll interval in seconds")
    args = parser.parse_args()
    users = [f"chbench{i:02d}" for i in range(1, args.burst + 1)]
    ensure_users(*users)
    with tempfile.TemporaryDirectory(prefix="corehour-bench-") as tmp:
        results = measure(Path(tmp), users, args.runs, args.bursts, args.cycle)
    ours, stock = results["ours"], results["stock"]
    machine = (
        "2-core Debian 12 VM, Slurm 22.05, idle alpha/cpu; ours and stock alternate in one run"
    )
    write_result(
        "spawn_latency",
        f"p50 time from start request to ready, {args.runs} sequential spawns each",
        "s",
        statistics.median(ours["latencies"]),
        statistics.median(stock["latencies"]),
        ours_all=[round(x, 3) for x in ours["latencies"]],
        baseline_all=[round(x, 3) for x in stock["latencies"]],
        machine=machine,
    )
    write_result(
        "spawn_burst",
        f"p95 time to ready, {args.burst} concurrent spawns (median of {args.bursts} bursts each)",
        "s",
        statistics.median(ours["burst_p95s"]),
        statistics.median(stock["burst_p95s"]),
        failures=ours["failures"],
        baseline_failures=stock["failures"],
        ours_all=[round(x, 3) for x in ours["burst_p95s"]],
        baseline_all=[round(x, 3) for x in stock["burst_p95s"]],
        machine=machine,
    )
    write_result(
        "poll_calls",
        f"slurmctld job-info queries per {args.cycle:g} s poll cycle with {args.burst} running servers"
        f" (counted over {CYCLES_COUNTED} cycles)",
        "queries per cluster per cycle",
        ours["poll_queries"],
        stock["poll_queries"],
        servers=ours["servers_polled"],
        baseline_servers=stock["servers_polled"],
        machine=machine,
    )


if __name__ == "__main__":
    main()
