"""Servers start as Slurm jobs on the cluster and partition asked for, and only there."""

import re
import subprocess

import pytest
import requests

from tests.harness import alive_jobs, slurm, squeue_jobs


def the_job(cluster, user):
    jobs = alive_jobs(cluster, user)
    assert len(jobs) == 1, jobs
    return jobs[0]


def test_default_server_is_reachable_through_the_proxy_with_hub_auth(portal, tokens):
    user = "chtest1"
    response = portal.start_server(user, tokens[user])
    assert response.status_code in (201, 202), response.text
    portal.wait_ready(user)

    status = requests.get(
        f"{portal.url}/user/{user}/api/status",
        headers={"Authorization": f"token {tokens[user]}"},
        timeout=10,
    )
    assert status.status_code == 200
    assert "started" in status.json()
    jobs = alive_jobs("alpha", user) + alive_jobs("beta", user)
    assert len(jobs) == 1
    assert jobs[0]["partition"] == "cpu"


def test_gpu_server_on_alpha_gets_one_gpu_from_slurm(portal, tokens):
    user = "chtest1"
    response = portal.start_server(
        user, tokens[user], "gpu", profile="gpu", cluster="alpha", gpus=1
    )
    assert response.status_code in (201, 202), response.text
    portal.wait_ready(user, "gpu")

    job = the_job("alpha", user)
    assert job["partition"] == "gpu"
    assert re.search(r"\bgres/gpu=1\b", job["tres_alloc_str"]), job["tres_alloc_str"]
    detail = slurm("alpha", "scontrol", "show", "job", str(job["job_id"])).stdout
    assert re.search(r"\bTRES=\S*gres/gpu=1\b", detail), detail


def test_server_on_beta_runs_on_beta(portal, tokens):
    user = "chtest2"
    response = portal.start_server(user, tokens[user], cluster="beta", cores="2")
    assert response.status_code in (201, 202), response.text
    portal.wait_ready(user)

    job = the_job("beta", user)
    assert job["cluster"] == "beta"
    assert alive_jobs("alpha", user) == []
    assert re.search(r"\bcpu=2\b", job["tres_alloc_str"]), job["tres_alloc_str"]
    reply = requests.get(
        f"{portal.url}/user/{user}/api/status",
        headers={"Authorization": f"token {tokens[user]}"},
        timeout=10,
    )
    assert reply.status_code == 200


HOSTILE = [
    ({"profile": "cpu", "prologue": "touch /tmp/corehour-pwned"}, "prologue"),
    ({"profile": "cpu", "nprocs": 6, "partition": "gpu", "options": "--gres=gpu:3"}, "nprocs"),
    ({"cmd": ["/bin/sh", "-c", "id"]}, "cmd"),
    ({"cores": "1; touch /tmp/corehour-pwned"}, "cores"),
    ({"cores": 10**9}, "cores"),
    ({"cores": "2.5"}, "cores"),
    ({"gpus": 2}, "gpus"),
    ({"profile": "gpu", "gpus": 8}, "gpus"),
    ({"cluster": "gamma"}, "cluster"),
    ({"image": "$(id)"}, "image"),
    ({"walltime_hours": 1000}, "walltime_hours"),
]


@pytest.mark.parametrize(("options", "field"), HOSTILE)
def test_hostile_options_over_rest_get_400_and_no_job(portal, tokens, options, field):
    user = "chtest3"
    before = {
        c: {j["job_id"] for j in squeue_jobs(c) if j["user_name"] == user}
        for c in ("alpha", "beta")
    }
    response = portal.start_server(user, tokens[user], "hostile", **options)
    assert response.status_code == 400, response.text
    assert field in response.json()["message"]
    after = {
        c: {j["job_id"] for j in squeue_jobs(c) if j["user_name"] == user}
        for c in ("alpha", "beta")
    }
    # No new job: jobs that ended earlier may leave squeue meanwhile (MinJobAge).
    assert {c: after[c] - before[c] for c in after} == {"alpha": set(), "beta": set()}
    model = portal.server_model(user, "hostile")
    assert model is None or not model.get("ready")


def test_user_b_gets_403_on_user_a_server(portal, tokens):
    portal.start_server("chtest1", tokens["chtest1"])
    portal.wait_ready("chtest1")
    headers = {"Authorization": f"token {tokens['chtest2']}"}
    reply = requests.get(f"{portal.url}/user/chtest1/api/status", headers=headers, timeout=10)
    assert reply.status_code == 403
    reply = portal.request("DELETE", "/users/chtest1/server", token=tokens["chtest2"])
    assert reply.status_code in (403, 404)
    assert portal.server_model("chtest1")["ready"]


def test_one_person_runs_a_cpu_and_a_gpu_server_at_once_up_to_the_limit(portal, tokens):
    user = "chtest3"
    limit = portal.site["hub"]["named_server_limit_per_user"]
    assert portal.start_server(user, tokens[user], "cpu", profile="cpu").status_code in (201, 202)
    assert portal.start_server(user, tokens[user], "gpu", profile="gpu").status_code in (201, 202)
    portal.wait_ready(user, "cpu")
    portal.wait_ready(user, "gpu")
    partitions = sorted(j["partition"] for c in ("alpha", "beta") for j in alive_jobs(c, user))
    assert partitions == ["cpu", "gpu"]
    assert limit == 2
    refused = portal.start_server(user, tokens[user], "third")
    assert refused.status_code == 400
    assert "maximum of 2 named servers" in refused.json()["message"]


def test_no_server_starts_as_root_a_system_account_or_someone_outside_the_portal(portal):
    """The attack: anyone allowed to start another person's server (an admin's token, a
    course role, a REST call) names root, a daemon or a local account outside the portal
    group.  The spawner refuses each before Slurm sees anything."""
    outsider = "choutsider"
    if subprocess.run(["id", "-u", outsider], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", outsider], check=True)
    for name, rule in [
        ("root", "reserved name"),
        ("daemon", "reserved name"),
        (outsider, "not in the portal's group"),
    ]:
        portal.request("POST", "/users", json={"usernames": [name]})
        reply = portal.request("POST", f"/users/{name}/server", json={})
        assert reply.status_code == 403, (name, reply.status_code, reply.text)
        assert rule in reply.json()["message"], reply.text
        assert portal.server_model(name) is None
        assert alive_jobs("alpha", name) == [] and alive_jobs("beta", name) == []
