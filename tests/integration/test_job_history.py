"""The job history over a real hub and Slurm: a running server reports its own minutes, My jobs
draws them, and nobody can write into or read another person's history."""

from __future__ import annotations

import json

import pytest
import requests

from centre.job_samples import REPORT_PATH, report_key
from tests.billing_checks import wait_until
from tests.harness import alive_jobs

pytestmark = pytest.mark.integration


def server_job(user: str) -> tuple[str, int]:
    for cluster in ("alpha", "beta"):
        for job in alive_jobs(cluster, user):
            if job["name"].startswith("corehour"):
                return cluster, int(job["job_id"])
    raise AssertionError(f"no server job of {user} in Slurm")


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
    body = wait_until(
        lambda: (b := person.get(samples_url, timeout=30).json())["samples"] and b,
        150,
        f"job {job_id} on {cluster} reported no sample",
    )
    first = dict(zip(body["fields"], body["samples"][0], strict=True))
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
    assert "not a running server of chtest2" in answer.json()["message"]
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
