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
from tests.harness import SLURM_CONF, Portal, alive_jobs, ensure_users, slurm, test_site

IMAGE = "/opt/corehour/images/base"

STOCK_CONFIG = f"""
# Stock batchspawner, set up the way its README suggests for this cluster.
c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.SlurmSpawner.exec_prefix = "sudo -E -u {{username}}"
c.SlurmSpawner.req_srun = ""
c.SlurmSpawner.req_partition = "cpu"
c.SlurmSpawner.req_nprocs = "1"
c.SlurmSpawner.req_memory = "2G"
c.SlurmSpawner.req_runtime = "02:00:00"
c.SlurmSpawner.batchspawner_singleuser_cmd = "{IMAGE}/bin/batchspawner-singleuser"
c.SlurmSpawner.cmd = ["{IMAGE}/bin/jupyterhub-singleuser"]
c.SlurmSpawner.ip = "0.0.0.0"
c.Spawner.environment = {{"SLURM_CONF": "{SLURM_CONF["alpha"]}"}}
"""


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


def measure(
    kind: str, workdir: Path, users: list[str], runs: int, burst: int, cycle: float
) -> dict:
    site = test_site(29000, poll_interval=cycle)
    portal = Portal(
        workdir / kind, 29000, site=site, extra_config=STOCK_CONFIG if kind == "stock" else ""
    )
    portal.start()
    options = {"cluster": "alpha", "profile": "cpu"} if kind == "ours" else {}
    try:
        tokens = {u: portal.user_token(u) for u in users}
        latencies = []
        for _ in range(runs):
            latencies.append(spawn_and_wait(portal, users[0], tokens[users[0]], options))
            portal.stop_all(users[:1])
        print(f"{kind}: sequential p50 {statistics.median(latencies):.2f} s ({latencies})")

        with ThreadPoolExecutor(burst) as pool:
            futures = [
                pool.submit(spawn_and_wait, portal, u, tokens[u], options) for u in users[:burst]
            ]
            burst_times, failures = [], 0
            for future in futures:
                try:
                    burst_times.append(future.result())
                except Exception as e:  # a failed spawn is a result, not a crash
                    print(f"{kind}: burst spawn failed: {e}")
                    failures += 1
        print(
            f"{kind}: burst of {burst}: p95 {percentile(burst_times, 95):.2f} s, failures {failures}"
        )

        # Let every server settle into the regular cycle, then count one cycle's job queries.
        time.sleep(cycle * 1.5)
        running = len([j for j in alive_jobs("alpha") if j["user_name"] in users])
        slurm("alpha", "sdiag", "-r")
        time.sleep(cycle)
        per_cycle = job_info_rpcs("alpha")
        print(f"{kind}: {per_cycle} job queries in one {cycle:g} s cycle with {running} servers")
        return {
            "latency_p50": statistics.median(latencies),
            "latencies": latencies,
            "burst_p95": percentile(burst_times, 95),
            "burst_failures": failures,
            "poll_queries": per_cycle,
            "servers_polled": running,
        }
    finally:
        portal.stop_all(users)
        portal.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--cycle", type=float, default=10.0, help="poll interval in seconds")
    args = parser.parse_args()
    users = [f"chbench{i:02d}" for i in range(1, args.burst + 1)]
    ensure_users(*users)
    with tempfile.TemporaryDirectory(prefix="corehour-bench-") as tmp:
        ours = measure("ours", Path(tmp), users, args.runs, args.burst, args.cycle)
        stock = measure("stock", Path(tmp), users, args.runs, args.burst, args.cycle)
    machine = "2-core Debian VM, idle alpha/cpu, both spawners in one run"
    write_result(
        "spawn_latency",
        "p50 time from start request to ready, 10 sequential spawns",
        "s",
        ours["latency_p50"],
        stock["latency_p50"],
        runs=args.runs,
        ours_all=ours["latencies"],
        baseline_all=stock["latencies"],
        machine=machine,
    )
    write_result(
        "spawn_burst",
        f"p95 time to ready, {args.burst} concurrent spawns",
        "s",
        ours["burst_p95"],
        stock["burst_p95"],
        failures=ours["burst_failures"],
        baseline_failures=stock["burst_failures"],
        machine=machine,
    )
    write_result(
        "poll_calls",
        f"slurmctld job-info queries per {args.cycle:g} s poll cycle with {args.burst} running servers",
        "queries per cluster per cycle",
        ours["poll_queries"],
        stock["poll_queries"],
        servers=ours["servers_polled"],
        baseline_servers=stock["servers_polled"],
        machine=machine,
    )


if __name__ == "__main__":
    main()
