"""My jobs over real Slurm: an ended job's efficiency and the cost of its idle part, checked
against sacct's own numbers for that job; and nobody sees another person's jobs."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
import requests

from tests.billing_checks import sbatch_as, wait_until
from tests.harness import TEST_CORE_HOUR, TEST_GB_HOUR, slurm

pytestmark = pytest.mark.integration

# One of two cores busy: half the cores idle.  It is the job's last process (exec), so Slurm's
# final reading counts its CPU time, and it runs past one accounting poll (the clusters'
# JobAcctGatherFrequency is 30 s), so its step's memory (MaxRSS) is recorded too.
HALF_BUSY = "exec python3 -c 'import time\nt = time.time()\nwhile time.time() - t < 35: pass'"


def cpu_seconds(total_cpu: str) -> Fraction:
    """sacct's TotalCPU: [D-]HH:MM:SS or MM:SS.mmm."""
    days, _, clock = total_cpu.rpartition("-")
    seconds = Fraction(0)
    for part in clock.split(":"):
        seconds = seconds * 60 + Fraction(part)
    return seconds + 86400 * int(days or 0)


def kib(text: str) -> int:
    number, unit = re.fullmatch(r"([\d.]+)([KMG]?)", text).groups()
    return int(Fraction(number) * {"": Fraction(1, 1024), "K": 1, "M": 1024, "G": 1024**2}[unit])


def sacct_truth(job_id: str) -> dict | None:
    """sacct's own numbers for the job, or None before slurmdbd has its record.

    Without -X: the job's line then sums its steps' TotalCPU (with -X it is 0 on 22.05)."""
    lines = slurm(
        "alpha", "sacct", "-j", job_id, "-n", "-P",
        "-o", "JobID,State,TotalCPU,ElapsedRaw,AllocCPUS,ReqMem,MaxRSS",
    ).stdout.split()  # fmt: skip
    rows = {line.split("|")[0]: line.split("|") for line in lines}
    job, batch = rows.get(job_id), rows.get(f"{job_id}.batch")
    # The job's record and its batch step's end record reach slurmdbd separately.
    if not job or not batch or batch[1] != "COMPLETED" or not batch[6]:
        return None
    _, state, total_cpu, elapsed, cpus, req_mem, _ = job
    return {
        "state": state,
        "cpu_seconds": cpu_seconds(total_cpu),
        "elapsed": int(elapsed),
        "cpus": int(cpus),
        "mem_mb": kib(req_mem) // 1024,
        "max_rss_kib": max(kib(row[6]) for row in rows.values() if row[6]),
    }


def expected_waste_mc(truth: dict) -> int:
    busy = min(truth["cpu_seconds"] / truth["elapsed"], truth["cpus"])
    memory_share = min(Fraction(truth["max_rss_kib"], truth["mem_mb"] * 1024), 1)
    unused_gb = Fraction(truth["mem_mb"], 1024) * (1 - memory_share)
    per_hour = (truth["cpus"] - busy) * Fraction(TEST_CORE_HOUR) + unused_gb * Fraction(
        TEST_GB_HOUR
    )
    exact = per_hour * 1000 * truth["elapsed"] / 3600
    return int((Decimal(exact.numerator) / Decimal(exact.denominator)).quantize(0, ROUND_HALF_UP))


def test_an_ended_job_shows_its_efficiency_and_waste_as_sacct_counts_them(portal, tokens):
    account = portal.wait_billing(tokens["chtest1"])["accounts"][0]["name"]
    job_id = sbatch_as(
        "chtest1", "alpha", f"--account={account}", "-c", "2", "--mem=1G", "-J", "half-busy",
        "--wrap", HALF_BUSY,
    )  # fmt: skip
    truth = wait_until(
        lambda: (t := sacct_truth(job_id)) and t["state"] == "COMPLETED" and t["max_rss_kib"] and t,
        120,
        f"job {job_id} did not complete with its step's memory recorded",
    )

    person = portal.login("chtest1")
    page = person.get(f"{portal.url}/hub/corehour/jobs", timeout=60)
    assert page.status_code == 200, page.text[:300]
    row = re.search(rf'<tr id="ch-job-alpha-{job_id}"[^>]*>', page.text)
    assert row, page.text[:2000]
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', row.group(0)))

    cpu_percent = float(truth["cpu_seconds"] / (truth["cpus"] * truth["elapsed"]) * 100)
    assert float(attributes["cpu-percent"]) == pytest.approx(cpu_percent, abs=0.11)
    assert 20 <= cpu_percent <= 80, truth  # one core of two was kept busy
    memory_percent = float(Fraction(truth["max_rss_kib"], truth["mem_mb"] * 1024) * 100)
    assert float(attributes["memory-percent"]) == pytest.approx(memory_percent, abs=0.11)
    # TotalCPU is printed to the millisecond; the page sums the steps' microseconds.
    assert abs(int(attributes["waste-mc"]) - expected_waste_mc(truth)) <= 1

    api = person.get(f"{portal.url}/hub/api/corehour/jobs", timeout=60).json()
    (job,) = [j for j in api["jobs"] if j["cluster"] == "alpha" and j["job_id"] == job_id]
    assert job["efficiency"]["waste_mc"] == int(attributes["waste-mc"])
    assert job["efficiency"]["waste"].startswith(
        f"{job['efficiency']['idle_cores']:g} of 2 cores idle"
    )
    assert job["efficiency"]["waste"].endswith(f": {job['efficiency']['waste_credits']} credits")

    # Person ↔ person: another person's page and API never show the job.
    other = portal.login("chtest2")
    assert f"ch-job-alpha-{job_id}" not in other.get(f"{portal.url}/hub/corehour/jobs").text
    their_jobs = other.get(f"{portal.url}/hub/api/corehour/jobs", timeout=60).json()["jobs"]
    assert all(j["job_id"] != job_id or j["cluster"] != "alpha" for j in their_jobs)


def test_my_jobs_needs_a_login(portal):
    page = requests.get(f"{portal.url}/hub/corehour/jobs", timeout=30, allow_redirects=False)
    assert page.status_code == 302
    assert "/hub/login" in page.headers["Location"]
    api = requests.get(f"{portal.url}/hub/api/corehour/jobs", timeout=30, allow_redirects=False)
    assert api.status_code == 401
    assert "job_id" not in api.text
