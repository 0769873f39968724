"""One Prometheus scrape of each corehour endpoint with 100 jobs on the clusters, against stock
JupyterHub's /hub/metrics on the same machine, in one run.

    /opt/corehour/hub/bin/python -m bench.metrics_scrape [--jobs 100] [--scrapes 30]

corehour's side: a portal (tests.harness.Portal) with one real notebook server on alpha, so
the status board watches the cluster, and ``--jobs`` jobs on alpha in all (the server and
sleep jobs: its 32 cores run 32 at most, the rest wait, and squeue lists both), so the hub's
collector exports a queue of that size.  Once /hub/metrics shows them, each endpoint is scraped ``--scrapes`` times with the scraper's token (the "metrics"
service, read:metrics only): the hub's ``/hub/metrics`` and the billing service's
``/services/billing/metrics``.  The metric is the slower endpoint's median wall time.

Baseline: stock JupyterHub (bench/stock.py's config, none of corehour's code) on other ports,
its /hub/metrics scraped the same way, with the same jobs in Slurm.  Target: ours ≤ 0.05 s.
Writes bench/results/metrics_scrape.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests

from bench.hub_footprint import stock_hub_config
from bench.report import write_result
from tests.harness import TEST_ADMIN, Portal, ensure_users, portal_site, slurm, squeue_jobs

PORTS = {"ours": 29500, "stock": 29600}
TARGET_S = 0.05
PERSON = "chbench01"


def timed_scrapes(url: str, token: str, scrapes: int) -> tuple[list[float], str]:
    session = requests.Session()
    session.headers["Authorization"] = f"token {token}"
    times, text = [], ""
    for _ in range(scrapes):
        started = time.perf_counter()
        reply = session.get(url, timeout=30)
        times.append(time.perf_counter() - started)
        if reply.status_code != 200:
            raise RuntimeError(f"{url}: {reply.status_code} {reply.text[:200]}")
        text = reply.text
    return times, text


def fill_queue(total: int) -> list[tuple[str, str]]:
    """Sleep jobs until Slurm lists ``total`` jobs on alpha, the cluster the hub watches."""
    listed = len(squeue_jobs("alpha"))
    submitted = []
    for _ in range(max(0, total - listed)):
        cluster = "alpha"
        argv = ["sbatch", "--parsable", "-c", "1", "--mem=50M", "-o", "/dev/null"]
        argv += ["-J", "metrics-bench", "--wrap", "sleep 900"]
        submitted.append((cluster, slurm(cluster, *argv).stdout.strip()))
    return submitted


def queue_seen(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("corehour_cluster_jobs{")
    )


def ours(workdir: Path, jobs: int, scrapes: int) -> dict:
    site = portal_site(PORTS["ours"], workdir / "ours")
    portal = Portal(workdir / "ours", PORTS["ours"], site=site).start()
    submitted: list[tuple[str, str]] = []
    try:
        reply = portal.start_server(PERSON, portal.user_token(PERSON), cluster="alpha", cores=1)
        if reply.status_code not in (201, 202):
            raise RuntimeError(f"{reply.status_code} {reply.text[:200]}")
        portal.wait_ready(PERSON, timeout=300)
        submitted = fill_queue(jobs)
        hub_url = f"{portal.url}/hub/metrics"
        deadline = time.monotonic() + 120
        while queue_seen(timed_scrapes(hub_url, portal.metrics_token, 1)[1]) < jobs:
            if time.monotonic() > deadline:
                raise RuntimeError(f"/hub/metrics never showed {jobs} jobs")
            time.sleep(2)
        hub_times, hub_text = timed_scrapes(hub_url, portal.metrics_token, scrapes)
        billing_times, _ = timed_scrapes(
            f"{portal.url}/services/billing/metrics", portal.metrics_token, scrapes
        )
        return {
            "hub": hub_times,
            "billing": billing_times,
            "jobs_exported": queue_seen(hub_text),
            "hub_bytes": len(hub_text),
        }
    finally:
        for cluster, job in submitted:
            slurm(cluster, "scancel", job, check=False)
        portal.stop_all([PERSON])
        portal.stop()


def stock(workdir: Path, jobs: int, scrapes: int) -> dict:
    site = portal_site(PORTS["stock"], workdir / "stock")
    portal = Portal(workdir / "stock", PORTS["stock"], site=site)
    # The harness's service reads the metrics too, as corehour's scraper service does.
    scraper_role = 'c.JupyterHub.load_roles[0]["scopes"].append("read:metrics")\n'
    (portal.workdir / "jupyterhub_config.py").write_text(stock_hub_config(portal) + scraper_role)
    portal.hub_program = "jupyterhub"
    portal.start()
    submitted: list[tuple[str, str]] = []
    try:
        submitted = fill_queue(jobs)
        times, text = timed_scrapes(f"{portal.url}/hub/metrics", portal.token, scrapes)
        return {"hub": times, "hub_bytes": len(text)}
    finally:
        for cluster, job in submitted:
            slurm(cluster, "scancel", job, check=False)
        portal.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--scrapes", type=int, default=30)
    args = parser.parse_args()
    ensure_users(PERSON, TEST_ADMIN)
    with tempfile.TemporaryDirectory(prefix="corehour-bench-") as tmp:
        mine = ours(Path(tmp), args.jobs, args.scrapes)
        theirs = stock(Path(tmp), args.jobs, args.scrapes)
    medians = {name: statistics.median(mine[name]) for name in ("hub", "billing")}
    write_result(
        "metrics_scrape",
        f"wall seconds of one scrape of corehour's slower metrics endpoint with {args.jobs} "
        "jobs in Slurm (median), against stock JupyterHub's /hub/metrics",
        "s",
        max(medians.values()),
        statistics.median(theirs["hub"]),
        target_s=TARGET_S,
        ours_median_s={name: round(value, 4) for name, value in medians.items()},
        jobs_exported=mine["jobs_exported"],
        scrapes=args.scrapes,
        response_bytes={"ours_hub": mine["hub_bytes"], "stock_hub": theirs["hub_bytes"]},
    )


if __name__ == "__main__":
    main()
