"""Checks shared by the billing tests: jobs submitted as a person, sacct's truth, the ledger."""

from __future__ import annotations

import json
import subprocess
import time
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing_hooks.models import Charge, MeteredJob
from tests.harness import SLURM_CONF, TEST_CORE_HOUR, TEST_GB_HOUR, TEST_GPU_HOUR, slurm


def sbatch_as(
    user: str,
    cluster: str,
    *args: str,
    env: dict[str, str] | None = None,
    script: str | None = None,
) -> str:
    """Submit as ``user``: ``args`` for sbatch, ``env`` for the job's environment (sbatch hands
    it on), ``script`` on sbatch's standard input."""
    result = subprocess.run(
        [
            "sudo",
            "-u",
            user,
            "env",
            f"SLURM_CONF={SLURM_CONF[cluster]}",
            *(f"{name}={value}" for name, value in (env or {}).items()),
            "sbatch",
            "--parsable",
            "-D",
            "/tmp",
            "-o",
            "/dev/null",
            *args,
        ],
        input=script,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(";")[0]


def sacct_job(cluster: str, job_id: str) -> dict:
    return json.loads(slurm(cluster, "sacct", "--json", "-j", job_id).stdout)["jobs"][0]


def expected_mc(job: dict, rate_factor: Fraction = Fraction(1)) -> int:
    """TRES × elapsed × rate from sacct's own numbers, rounded half up once; the rates are
    the tests' own, times ``rate_factor`` where a cluster's are dearer."""
    alloc = {(t["type"], t["name"] or ""): t["count"] for t in job["tres"]["allocated"]}
    per_hour = rate_factor * (
        alloc[("cpu", "")] * Fraction(TEST_CORE_HOUR)
        + alloc.get(("gres", "gpu"), 0) * Fraction(TEST_GPU_HOUR)
        + Fraction(alloc[("mem", "")], 1024) * Fraction(TEST_GB_HOUR)
    )
    exact = per_hour * 1000 * job["time"]["elapsed"] / 3600
    return int((Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(0, ROUND_HALF_UP))


def wait_finished(ledger, cluster: str, job_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(ledger) as session:
            done = session.scalar(
                select(MeteredJob.finished).where(
                    MeteredJob.cluster == cluster, MeteredJob.job_id == job_id
                )
            )
        if done:
            return
        time.sleep(0.5)
    raise AssertionError(f"the meter did not settle {cluster}/{job_id} within {timeout} s")


def ledger_job(ledger, cluster: str, job_id: str) -> tuple[int, int, int]:
    with Session(ledger) as session:
        amount, cpu_seconds, rows = session.execute(
            select(func.sum(Charge.amount_mc), func.sum(Charge.cpu_seconds), func.count()).where(
                Charge.cluster == cluster, Charge.job_id == job_id
            )
        ).one()
    return int(amount), int(cpu_seconds), int(rows)


def wait_until(predicate, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(message)
