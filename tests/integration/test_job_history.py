"""The job history over a real hub and Slurm: a running server reports its own minutes, My jobs
draws them, and nobody can write into or read another person's history."""

from __future__ import annotations

import json
import pwd
import time
from pathlib import Path

import pytest
import requests

from centre.job_samples import (
    KEY_VARIABLE,
    KEYS_VARIABLE,
    REPORT_PATH,
    key_for_cluster,
    key_owner,
    report_key,
)
from tests.billing_checks import sbatch_as, wait_until
from tests.harness import alive_jobs, slurm
from voila_apps.kit.jobs import reporter_lines

pytestmark = pytest.mark.integration

# The base image's interpreter, as the apps' kernels run it (world-readable, unlike the hub's).
IMAGE_PYTHON = "/opt/corehour/images/base/bin/python"


def server_job(user: str) -> tuple[str, int]:
    for cluster in ("alpha", "beta"):
        for job in alive_jobs(cluster, user):
            if job["name"].startswith("corehour"):
                return cluster, int(job["job_id"])
    raise AssertionError(f"no server job of {user} in Slurm")


def first_minute(person: requests.Session, samples_url: str) -> tuple[dict, dict]:
    """The job's samples once it has sent its first minute, and that minute by field name."""
    body = wait_until(
        lambda: (b := person.get(samples_url, timeout=30).json())["samples"] and b,
        150,
        f"{samples_url}: the job reported no sample",
    )
    return body, dict(zip(body["fields"], body["samples"][0], strict=True))


def post_report(portal, key: str, body) -> requests.Response:
    return requests.post(
        f"{portal.url}/hub/api/{REPORT_PATH}",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )


def test_a_server_keeps_its_history_and_nobody_writes_into_anothers(portal, tokens):
    reply = portal.start_server("chtest1", tokens["chtest1"], cores=2)
    assert reply.status_code in (201, 202), reply.text
    portal.wait_ready("chtest1", timeout=180)
    cluster, job_id = server_job("chtest1")
    person = portal.login("chtest1")
    samples_url = f"{portal.url}/hub/api/{REPORT_PATH}?cluster={cluster}&job_id={job_id}"

    # The server's job sends its first minute about a minute after it starts.
    body, first = first_minute(person, samples_url)
    assert first["allocated_cores"] == 2
    assert 0 <= first["cpu_cores"] <= 2.5
    assert first["memory_bytes"] > 10 * 2**20  # a Jupyter server's own memory at least
    assert 50 <= first["seconds"] <= 90
    assert first["gpu_percent"] is None  # no GPU on this test bed

    page = person.get(f"{portal.url}/hub/corehour/jobs", timeout=60).text
    assert f'data-cluster="{cluster}" data-job-id="{job_id}"' in page
    jobs = person.get(f"{portal.url}/hub/api/corehour/jobs", timeout=60).json()["jobs"]
    (row,) = [j for j in jobs if j["cluster"] == cluster and str(j["job_id"]) == str(job_id)]
    assert row["history_samples"] >= 1

    # The attacks.  The hub's secret makes keys; the test reads it as root to act as chtest2's job.
    secret = bytes.fromhex((portal.state / "job-history.key").read_text())
    fake = [[first["t"], 60, 0.0, 2, 1, 2, None, None]]
    # chtest2's own key, writing into chtest1's job: refused, nothing stored.
    answer = post_report(
        portal, report_key(secret, "chtest2", cluster), {"job_id": job_id, "samples": fake}
    )
    assert answer.status_code == 403, answer.text
    assert "not a started job of chtest2" in answer.json()["message"]
    # A key the hub did not make, or none: refused.
    assert (
        post_report(
            portal, f"{cluster}/chtest1.{'0' * 64}", {"job_id": job_id, "samples": fake}
        ).status_code
        == 403
    )
    assert post_report(portal, "", {"job_id": job_id, "samples": fake}).status_code == 403
    # chtest1's own key with a hostile body: refused with the field named.
    own = report_key(secret, "chtest1", cluster)
    answer = post_report(portal, own, {"job_id": job_id, "samples": fake, "user": "chtest2"})
    assert answer.status_code == 400 and "unknown field 'user'" in answer.json()["message"]
    answer = post_report(
        portal, own, {"job_id": job_id, "samples": [[first["t"], 60, -1, 2, 1, 2, None, None]]}
    )
    assert answer.status_code == 400 and "samples[0].cpu_cores" in answer.json()["message"]
    deep = requests.post(
        f"{portal.url}/hub/api/{REPORT_PATH}",
        data="[" * 50_000,
        headers={"Authorization": f"Bearer {own}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert deep.status_code == 400, deep.text[:200]
    after = person.get(samples_url, timeout=30).json()["samples"]
    assert [s[2] for s in after[: len(body["samples"])]] == [s[2] for s in body["samples"]]

    # Reading: chtest2 sees nothing of chtest1's job; a bad query names its field.
    other = portal.login("chtest2")
    assert other.get(samples_url, timeout=30).json()["samples"] == []
    bad = other.get(f"{portal.url}/hub/api/{REPORT_PATH}?cluster=nowhere&job_id=1", timeout=30)
    assert bad.status_code == 400 and "cluster" in bad.json()["message"]
    for job_text in ("x", "²", "0", str(2**40)):
        bad = other.get(
            f"{portal.url}/hub/api/{REPORT_PATH}?cluster={cluster}&job_id={job_text}", timeout=30
        )
        assert bad.status_code == 400 and "job_id" in bad.json()["message"], (job_text, bad.text)
    assert requests.get(samples_url, timeout=30, allow_redirects=False).status_code in (302, 403)
    # A service (the metrics scraper) is nobody's person: no history and no job list (the
    # job list is a page's API that takes no token at all: it sends the caller to log in).
    service = {"Authorization": f"token {portal.metrics_token}"}
    answer = requests.get(samples_url, headers=service, timeout=30, allow_redirects=False)
    assert answer.status_code == 403, answer.text[:200]
    jobs_url = f"{portal.url}/hub/api/corehour/jobs"
    answer = requests.get(jobs_url, headers=service, timeout=30, allow_redirects=False)
    assert answer.status_code in (302, 403) and "job_id" not in answer.text, answer.text[:200]

    # Stopped, the server sends the minutes since its last report (a span needs a second at
    # least, so the stop comes a few seconds after the last reading).
    reported = person.get(samples_url, timeout=30).json()["samples"]
    last_reading = max(t + seconds for t, seconds, *_ in reported)
    time.sleep(max(0.0, last_reading + 3 - time.time()))
    portal.stop_server("chtest1")
    wait_until(
        lambda: len(person.get(samples_url, timeout=30).json()["samples"]) > len(reported),
        60,
        f"server job {job_id} sent nothing as it stopped",
    )


def job_environment(user: str, job_id: int) -> dict[str, str]:
    """The environment of a process of ``user`` in Slurm job ``job_id`` (read as root)."""
    uid = pwd.getpwnam(user).pw_uid
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.stat().st_uid != uid:
                continue
            pairs = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        env = dict(p.decode(errors="replace").split("=", 1) for p in pairs if b"=" in p)
        if env.get("SLURM_JOB_ID") == str(job_id):
            return env
    raise AssertionError(f"no process of {user} in job {job_id}")


# Two cores, one busy: the reporter must see the job's processes, not only itself.
ONE_BUSY = "python3 -c 'import time\nt = time.time()\nwhile time.time() - t < 600: pass'\n"


def test_an_apps_batch_job_reports_its_use_and_only_into_its_owners_history(portal, tokens):
    # A server hands its apps' batch jobs the person's key for the cluster they go to.
    reply = portal.start_server("chtest3", tokens["chtest3"], cores=1)
    assert reply.status_code in (201, 202), reply.text
    portal.wait_ready("chtest3", timeout=180)
    _, server_job_id = server_job("chtest3")
    secret = bytes.fromhex((portal.state / "job-history.key").read_text())
    keys = job_environment("chtest3", server_job_id)[KEYS_VARIABLE].split()
    assert sorted(keys) == sorted(report_key(secret, "chtest3", c) for c in ("alpha", "beta"))
    assert all(key_owner(secret, key) for key in keys)

    # The batch job, as the kit writes it (voila_apps/kit/jobs.py), with that server's
    # environment for beta, the cluster the server does not run on.
    account = portal.wait_billing(tokens["chtest3"])["accounts"][0]["name"]
    script = "#!/bin/bash\n" + reporter_lines(IMAGE_PYTHON) + ONE_BUSY
    environment = {
        KEY_VARIABLE: key_for_cluster(" ".join(keys), "beta"),
        "JUPYTERHUB_API_URL": f"{portal.url}/hub/api",
    }
    job_id = int(
        sbatch_as(
            "chtest3", "beta", f"--account={account}", "-c", "2", "--mem=1G", "-J", "app-run",
            env=environment, script=script,
        )
    )  # fmt: skip
    person = portal.login("chtest3")
    samples_url = f"{portal.url}/hub/api/{REPORT_PATH}?cluster=beta&job_id={job_id}"
    body, first = first_minute(person, samples_url)
    assert first["allocated_cores"] == 2
    assert 0.6 <= first["cpu_cores"] <= 1.3, first  # the busy process, not the reporter alone
    assert 50 <= first["seconds"] <= 90

    # The attacks, while the job runs.  Someone else's own key, on someone else's batch job:
    fake = {"job_id": job_id, "samples": [[first["t"], 60, 0.0, 2, 1, 2, None, None]]}
    answer = post_report(portal, report_key(secret, "chtest2", "beta"), fake)
    assert answer.status_code == 403, answer.text
    assert "not a started job of chtest2" in answer.json()["message"]
    # The owner's key for another cluster, naming this job's number: that cluster has no such
    # job of theirs.
    answer = post_report(portal, report_key(secret, "chtest3", "alpha"), fake)
    assert answer.status_code == 403, answer.text
    # A job still in the queue has no use to report.
    queued = int(
        sbatch_as("chtest3", "beta", f"--account={account}", "--begin=now+1hour", "--wrap", "true")
    )
    try:
        answer = post_report(
            portal, report_key(secret, "chtest3", "beta"), {**fake, "job_id": queued}
        )
        assert answer.status_code == 403, answer.text
    finally:
        slurm("beta", "scancel", str(queued))
    assert person.get(samples_url, timeout=30).json()["samples"] == body["samples"]

    # Cancelled, the job sends its minute so far as it ends; My jobs lists it with its chart.
    slurm("beta", "scancel", str(job_id))
    wait_until(
        lambda: len(person.get(samples_url, timeout=30).json()["samples"]) > len(body["samples"]),
        60,
        f"batch job {job_id} sent nothing as it was cancelled",
    )
    jobs = wait_until(
        lambda: [
            j
            for j in person.get(f"{portal.url}/hub/api/corehour/jobs", timeout=60).json()["jobs"]
            if j["cluster"] == "beta" and str(j["job_id"]) == str(job_id)
        ],
        60,
        f"My jobs does not list batch job {job_id}",
    )
    assert jobs[0]["history_samples"] >= 2
    page = person.get(f"{portal.url}/hub/corehour/jobs", timeout=60).text
    assert f'data-cluster="beta" data-job-id="{job_id}"' in page
