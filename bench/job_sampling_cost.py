"""What keeping a history of running jobs costs: servers reporting their own minutes, against
one ``sstat`` per job per minute (the naive loop).

    /opt/corehour/hub/bin/python -m bench.job_sampling_cost [--servers 8] [--reports 240]
        [--rounds 5]

Starts a real portal (tests.harness.Portal) and ``--servers`` real notebook servers on alpha,
one core each, and measures, on those running jobs:

- ours (centre/job_samples.py): what a job's history costs per hour where it is made and
  where it is kept.  A job reads its own use once a minute (``UsageMeter.read``, timed here
  in this process over its own process tree, as the demo clusters' jobs do; a cgroup read is
  cheaper) and sends five minutes at a time, so an hour is 60 reads and 12 reports.  The
  reports are POSTed to the running hub with the jobs' own keys (made from the hub's secret
  as the spawner makes them), ``--reports`` of them round-robin over the servers; counted is
  the hub process's CPU (its threads included: the store's writes) and this process's own
  CPU for sending them (what the job's sender costs, an upper bound: requests is heavier
  than the server's tornado client).
- baseline: ``sstat -j <job>`` once per job, ``--rounds`` rounds; counted are the sstat
  processes (RUSAGE_CHILDREN) and what the cluster's slurmctld and slurmd spent answering
  (from /proc).  Neither side counts slurmstepd's own reading of the job.

Both are scaled linearly to 100 jobs for an hour.  Target: ratio ≤ 0.2.
Writes bench/results/job_sampling_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import requests

from bench.report import write_result
from centre.job_samples import REPORT_PATH, report_key
from centre.job_usage import UsageMeter
from centre.slurm_sstat import parse_sstat
from tests.harness import SLURM_CONF as CLUSTERS
from tests.harness import TEST_ADMIN, Portal, alive_jobs, ensure_users, portal_site, slurm

TARGET_JOBS = 100
TARGET_RATIO = 0.2
PORT = 27400
READS_PER_HOUR = 60
REPORTS_PER_HOUR = 12  # voila_apps/kit/history_reporter.py: REPORT_EVERY = 5 minutes
MINUTES_PER_REPORT = 60 // REPORTS_PER_HOUR
TICKS = os.sysconf("SC_CLK_TCK")


def daemon_pids(cluster: str) -> list[int]:
    """The cluster's slurmctld and slurmd, found by the config file on their command line."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                words = f.read().split(b"\0")
        except OSError:
            continue
        name = os.path.basename(words[0]).decode(errors="replace")
        if name in ("slurmctld", "slurmd") and CLUSTERS[cluster].encode() in b" ".join(words):
            pids.append(int(pid))
    return pids


def daemons_cpu(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cost(sample, pids: list[int]) -> float:
    before = children_cpu() + daemons_cpu(pids)
    sample()
    return children_cpu() + daemons_cpu(pids) - before


def process_cpu(pid: int) -> float:
    return daemons_cpu([pid])


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def meter_read_cpu(reads: int = 200) -> float:
    """CPU seconds of one reading of a job's use, as a job's meter takes it once a minute."""
    meter = UsageMeter({"SLURM_CPUS_ON_NODE": "1", "SLURM_MEM_PER_NODE": "2048"})
    meter.SHORTEST_INTERVAL = 0.0  # every call a real reading, not the cached one
    before = self_cpu()
    for _ in range(reads):
        meter.read()
    return (self_cpu() - before) / reads


def start_servers(portal: Portal, users: list[str]) -> dict[str, int]:
    tokens = {user: portal.user_token(user) for user in users}
    for user in users:
        reply = portal.start_server(user, tokens[user], cluster="alpha", profile="cpu", cores=1)
        if reply.status_code not in (201, 202):
            raise RuntimeError(f"{user}: {reply.status_code} {reply.text[:200]}")
    for user in users:
        portal.wait_ready(user, timeout=300)
    jobs = {}
    for user in users:
        (job,) = [j for j in alive_jobs("alpha", user) if j["name"].startswith("corehour")]
        jobs[user] = int(job["job_id"])
    return jobs


def report_cost(portal: Portal, jobs: dict[str, int], reports: int) -> float:
    """CPU seconds (hub + sender) of one report of MINUTES_PER_REPORT minutes."""
    secret = bytes.fromhex((portal.state / "job-history.key").read_text())
    keys = {user: report_key(secret, user, "alpha") for user in jobs}
    url = f"{portal.url}/hub/api/{REPORT_PATH}"
    # Minutes that march up to now, as the jobs' own would (the hub refuses future ones).
    start = int(time.time()) - 60 * MINUTES_PER_REPORT * (reports // len(jobs) + 1)
    session = requests.Session()
    users = list(jobs)
    hub_before, self_before = process_cpu(portal.hub.pid), self_cpu()
    for n in range(reports):
        user = users[n % len(users)]
        first = start + 60 * MINUTES_PER_REPORT * (n // len(users))
        samples = [
            [first + 60 * m, 60, 0.42, 1, 150_000_000, 2_147_483_648, None, None]
            for m in range(MINUTES_PER_REPORT)
        ]
        answer = session.post(
            url,
            data=json.dumps({"job_id": jobs[user], "samples": samples}),
            headers={"Authorization": f"Bearer {keys[user]}", "Content-Type": "application/json"},
            timeout=30,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"report {n} for {user}: {answer.status_code} {answer.text[:200]}")
    spent = process_cpu(portal.hub.pid) - hub_before + self_cpu() - self_before
    return spent / reports


def naive_cost(jobs: dict[str, int], rounds: int) -> list[float]:
    """CPU seconds of one sstat per job, per job, for each round."""
    pids = daemon_pids("alpha")
    assert len(pids) >= 2, f"found only these Slurm daemons of alpha: {pids}"
    deadline = time.monotonic() + 120
    # Read by Slurm at least once (JobAcctGatherFrequency), so sstat has an answer.
    while not all(str(job) in parse_sstat(_sstat(job)) for job in jobs.values()):
        assert time.monotonic() < deadline, "sstat did not answer for every server's job"
        time.sleep(2)

    def naive() -> None:
        for job in jobs.values():
            assert str(job) in parse_sstat(_sstat(job))

    return [cost(naive, pids) / len(jobs) for _ in range(rounds)]


def _sstat(job: int) -> str:
    argv = ["sstat", "-a", "-P", "-n", "--format=JobID,TRESUsageInTot", "-j", str(job)]
    return slurm("alpha", *argv, check=False).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=8)
    parser.add_argument("--reports", type=int, default=240)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    users = [f"chbench{i:02d}" for i in range(1, args.servers + 1)]
    ensure_users(*users, TEST_ADMIN)
    read_cpu = meter_read_cpu()
    with tempfile.TemporaryDirectory(prefix="corehour-bench-") as tmp:
        workdir = Path(tmp) / "portal"
        portal = Portal(workdir, PORT, site=portal_site(PORT, workdir)).start()
        try:
            jobs = start_servers(portal, users)
            baseline_per_job = naive_cost(jobs, args.rounds)
            per_report = report_cost(portal, jobs, args.reports)
        finally:
            portal.stop_all(users)
            portal.stop()
    ours = TARGET_JOBS * (REPORTS_PER_HOUR * per_report + READS_PER_HOUR * read_cpu)
    baseline = TARGET_JOBS * READS_PER_HOUR * statistics.median(baseline_per_job)
    write_result(
        "job_sampling_cost",
        f"CPU seconds per hour to keep the minute-by-minute history of {TARGET_JOBS} running "
        "jobs: their own readings and reports plus the hub's handling (ours), against one "
        "sstat per job per minute (sstat clients + slurmctld + slurmd)",
        "s",
        ours,
        baseline,
        target_ratio=TARGET_RATIO,
        servers_measured=len(jobs),
        ours_parts={
            "report_cpu_s": round(per_report, 5),
            "reports_measured": args.reports,
            "meter_read_cpu_s": round(read_cpu, 5),
            "per_job_hour": f"{REPORTS_PER_HOUR} reports + {READS_PER_HOUR} readings",
        },
        baseline_sstat_cpu_s_per_job=[round(c, 5) for c in baseline_per_job],
    )


if __name__ == "__main__":
    main()
