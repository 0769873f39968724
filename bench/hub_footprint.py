"""Hub footprint: memory and CPU of the hub with 30 running servers, corehour against stock
JupyterHub + batchspawner on the same clusters, in one run.

    /opt/corehour/hub/bin/python -m bench.hub_footprint [--servers 30] [--minutes 10]

Each side starts ``--servers`` servers on alpha's cpu partition, lets them settle, then
watches for ``--minutes``: the JupyterHub process's resident memory (sampled every 5 s; the
peak is the metric) and the CPU seconds it spent, its waited-for children included (the
``sudo squeue`` a poll runs). Both hubs poll at JupyterHub's default 30 s.

The stock side is a plain JupyterHub config with batchspawner's SlurmSpawner (bench/stock.py):
none of corehour's code is loaded in that hub. corehour's side runs its billing service and
idle culler too: they are separate processes, reported beside the hub's figures, not hidden
in them.

Writes bench/results/hub_footprint.json: peak hub RSS as the metric, the CPU seconds with
their own ratio, and the services' figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.report import write_result
from bench.stock import stock_config
from tests.harness import TEST_ADMIN, Portal, alive_jobs, ensure_users, portal_site

TICKS = os.sysconf("SC_CLK_TCK")
POLL_INTERVAL = 30.0
SETTLE_SECONDS = 60.0
SAMPLE_SECONDS = 5.0
PORTS = {"ours": 29300, "stock": 29400}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int, children: bool = True) -> float:
    """utime + stime (+ the children it waited for: cutime + cstime) of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = int(fields[11]) + int(fields[12])
    waited = int(fields[13]) + int(fields[14]) if children else 0
    return (own + waited) / TICKS


def service_pids(hub_pid: int) -> list[int]:
    """The hub's managed services: its child processes that run Python (not sudo/squeue)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == hub_pid and b"python" in cmdline:
            found.append(int(entry.name))
    return found


def start_servers(side: str, portal: Portal, users: list[str]) -> None:
    tokens = {u: portal.user_token(u) for u in users}
    options = {"cluster": "alpha", "profile": "cpu"} if side == "ours" else {}

    def start(user: str) -> None:
        reply = portal.start_server(user, tokens[user], **options)
        if reply.status_code not in (201, 202):
            raise RuntimeError(f"{side}: {user}: {reply.status_code} {reply.text[:200]}")
        portal.wait_ready(user, timeout=300)

    # A class arriving over a minute, not all in one second: the footprint is what is measured.
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(start, users))


def watch(side: str, portal: Portal, users: list[str], minutes: float, settle: float) -> dict:
    hub = portal.hub.pid
    time.sleep(settle)
    services = service_pids(hub)
    cpu_before = cpu_seconds(hub)
    services_before = sum(cpu_seconds(p, children=False) for p in services)
    peak = peak_services = 0.0
    samples = []
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        samples.append(rss_mb(hub))
        peak = max(peak, samples[-1])
        peak_services = max(peak_services, sum(rss_mb(p) for p in services))
        time.sleep(SAMPLE_SECONDS)
    running = len([j for j in alive_jobs("alpha") if j["user_name"] in users])
    result = {
        "peak_rss_mb": peak,
        "mean_rss_mb": sum(samples) / len(samples),
        "cpu_seconds": cpu_seconds(hub) - cpu_before,
        "services": len(services),
        "services_peak_rss_mb": peak_services,
        "services_cpu_seconds": sum(cpu_seconds(p, children=False) for p in services)
        - services_before,
        "servers_running": running,
    }
    print(f"{side}: {result}")
    return result


def stock_hub_config(portal: Portal) -> str:
    port, state = portal.base_port, portal.state
    return f"""
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {port + 81}
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{port + 1}"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.db_url = "sqlite:///{state / "jupyterhub.sqlite"}"
c.JupyterHub.cookie_secret_file = "{state / "jupyterhub_cookie_secret"}"
c.JupyterHub.authenticator_class = "pam"
c.Spawner.poll_interval = {POLL_INTERVAL}
c.Spawner.start_timeout = 300
c.JupyterHub.services = [{{"name": "corehour-tests", "api_token": {portal.token!r}}}]
c.JupyterHub.load_roles = [{{"name": "corehour-tests", "services": ["corehour-tests"],
    "scopes": ["admin:users", "admin:servers", "tokens", "access:servers", "read:users"]}}]
{stock_config()}
"""


def run_side(side: str, workdir: Path, users: list[str], minutes: float, settle: float) -> dict:
    site = portal_site(PORTS[side], workdir / side, poll_interval=POLL_INTERVAL)
    site["hub"]["start_timeout"] = 300
    portal = Portal(workdir / side, PORTS[side], site=site)
    if side == "stock":
        # Stock JupyterHub: the harness's config would load corehour's; this one does not.
        (portal.workdir / "jupyterhub_config.py").write_text(stock_hub_config(portal))
        portal.hub_program = "jupyterhub"
    portal.start()
    try:
        start_servers(side, portal, users)
        return watch(side, portal, users, minutes, settle)
    finally:
        portal.stop_all(users)
        portal.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--settle", type=float, default=SETTLE_SECONDS, help="seconds before watching"
    )
    args = parser.parse_args()
    users = [f"chbench{i:02d}" for i in range(1, args.servers + 1)]
    # The harness's site names TEST_ADMIN: a hub that cannot find it logs a traceback at start
    # and keeps its source lines in memory, which stock JupyterHub (no admin) would not.
    ensure_users(*users, TEST_ADMIN)
    with tempfile.TemporaryDirectory(prefix="corehour-bench-") as tmp:
        ours = run_side("ours", Path(tmp), users, args.minutes, args.settle)
        stock = run_side("stock", Path(tmp), users, args.minutes, args.settle)
    write_result(
        "hub_footprint",
        f"peak RSS of the JupyterHub process over {args.minutes:g} min with "
        f"{args.servers} running servers",
        "MB",
        ours["peak_rss_mb"],
        stock["peak_rss_mb"],
        cpu_seconds={
            "what": "CPU seconds of the JupyterHub process and the children it waited for "
            f"(sudo squeue) over the same {args.minutes:g} min",
            "ours": round(ours["cpu_seconds"], 2),
            "baseline": round(stock["cpu_seconds"], 2),
            "ratio": round(ours["cpu_seconds"] / stock["cpu_seconds"], 3)
            if stock["cpu_seconds"]
            else None,
        },
        mean_rss_mb={
            "ours": round(ours["mean_rss_mb"], 1),
            "baseline": round(stock["mean_rss_mb"], 1),
        },
        corehour_services={
            "what": "corehour's billing service and idle culler, which the stock hub lacks",
            "peak_rss_mb": round(ours["services_peak_rss_mb"], 1),
            "cpu_seconds": round(ours["services_cpu_seconds"], 2),
        },
        servers_running={"ours": ours["servers_running"], "baseline": stock["servers_running"]},
        poll_interval_seconds=POLL_INTERVAL,
    )


if __name__ == "__main__":
    main()
