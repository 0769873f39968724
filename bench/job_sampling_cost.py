"""What sampling running jobs costs: one sstat per cluster for all jobs, against one per job.

    /opt/corehour/hub/bin/python -m bench.job_sampling_cost [--jobs-per-cluster 32] [--rounds 5]

Fills alpha and beta with one-core jobs (the test bed's two clusters have 32 cores each, so at
most 64 jobs run), waits until Slurm has read their use once, then takes samples of all of them
the two ways, alternately, ``--rounds`` times:

- ours: ``sstat_argv(all running jobs)`` once per cluster (centre/slurm_sstat.py);
- baseline: the naive loop, ``sstat -j <job>`` once per job.

Counted is CPU time, not wall time: the sstat processes' own (RUSAGE_CHILDREN) plus what the
clusters' slurmctld and slurmd spent answering (from /proc), since on a real site the node
daemons pay for every question too.  A sampler takes one sample a minute, so CPU seconds per
hour is 60 × a sample's cost; both are scaled linearly from the jobs measured to 100 jobs
(ours grows more slowly than that, so its figure is an upper bound).  Target: ratio ≤ 0.2.
Writes bench/results/job_sampling_cost.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

from bench.report import write_result
from centre.slurm_sstat import parse_sstat, sstat_argv
from tests.harness import SLURM_CONF as CLUSTERS
from tests.harness import slurm

TARGET_JOBS = 100
TARGET_RATIO = 0.2
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs-per-cluster", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    jobs: dict[str, list[str]] = {}
    try:
        for cluster in CLUSTERS:
            submit = ["sbatch", "--parsable", "-c", "1", "--mem=50M", "-o", "/dev/null"]
            submit += ["-J", "sampling-bench", "--wrap", "sleep 600"]
            jobs[cluster] = [
                slurm(cluster, *submit).stdout.strip() for _ in range(args.jobs_per_cluster)
            ]
        deadline = time.monotonic() + 180
        # Running, and read by Slurm at least once (JobAcctGatherFrequency), so sstat answers.
        while True:
            seen = sum(
                len(parse_sstat(slurm(c, *sstat_argv(ids), check=False).stdout))
                for c, ids in jobs.items()
            )
            if seen == sum(len(ids) for ids in jobs.values()):
                break
            assert time.monotonic() < deadline, f"only {seen} jobs answered sstat"
            time.sleep(2)
        pids = [pid for cluster in CLUSTERS for pid in daemon_pids(cluster)]
        assert len(pids) >= 4, f"found only these Slurm daemons: {pids}"

        def ours() -> None:
            for cluster, ids in jobs.items():
                answered = parse_sstat(slurm(cluster, *sstat_argv(ids)).stdout)
                assert len(answered) == len(ids), (cluster, len(answered))

        def naive() -> None:
            for cluster, ids in jobs.items():
                for job_id in ids:
                    out = slurm(
                        cluster,
                        "sstat",
                        "-a",
                        "-P",
                        "-n",
                        "--format=JobID,TRESUsageInTot",
                        "-j",
                        job_id,
                    )
                    assert job_id in parse_sstat(out.stdout)

        ours_costs, naive_costs = [], []
        for _ in range(args.rounds):
            ours_costs.append(cost(ours, pids))
            naive_costs.append(cost(naive, pids))
    finally:
        for cluster, ids in jobs.items():
            if ids:
                slurm(cluster, "scancel", *ids, check=False)
    measured = sum(len(ids) for ids in jobs.values())
    per_hour = 60 * TARGET_JOBS / measured
    write_result(
        "job_sampling_cost",
        f"CPU seconds per hour to sample {TARGET_JOBS} running jobs once a minute "
        "(sstat clients + slurmctld + slurmd)",
        "s",
        statistics.median(ours_costs) * per_hour,
        statistics.median(naive_costs) * per_hour,
        target_ratio=TARGET_RATIO,
        jobs_measured=measured,
        clusters=len(CLUSTERS),
        rounds=args.rounds,
        ours_sample_cpu_s=[round(c, 4) for c in ours_costs],
        baseline_sample_cpu_s=[round(c, 4) for c in naive_costs],
    )


if __name__ == "__main__":
    main()
