"""The spawn form's start estimates: each cluster's expected start and price, asked of real
Slurm with ``sbatch --test-only`` as the person, before anything is submitted."""

from datetime import datetime

from tests.harness import TEST_ADMIN, alive_jobs

PERSON = "chtest1"
CPU = {"profile": "cpu", "cluster": "auto", "cores": "2", "memory_gb": "2",
       "walltime_hours": "1", "image": "base"}  # fmt: skip
ESTIMATES = "/corehour/start-estimates"


def server_token(portal, name: str) -> str:
    """A token with the scopes JupyterHub gives a server's own token, and no more."""
    reply = portal.request(
        "POST",
        f"/users/{name}/tokens",
        json={"note": "as a server's", "scopes": ["users:activity!user", "access:servers!user"]},
    )
    assert reply.status_code == 201, reply.text
    return reply.json()["token"]


def test_every_cpu_cluster_says_when_it_would_start_and_what_an_hour_costs(portal):
    token = portal.user_token(PERSON)
    reply = portal.request("GET", ESTIMATES, token=token, params=CPU)
    assert reply.status_code == 200, reply.text
    rows = {row["cluster"]: row for row in reply.json()["clusters"]}
    assert set(rows) == {"alpha", "beta"}, rows
    for row in rows.values():
        # Idle clusters: Slurm's own answer says now, within the scheduler's second or two.
        assert row["state"] == "now", row
        start = datetime.fromisoformat(row["expected_start"])
        assert abs((start - datetime.now()).total_seconds()) < 60, row
        assert row["hourly_mc"] > 0, row
    assert [name for name, row in rows.items() if row["auto_pick"]] == ["alpha"]
    # Asking submits nothing.
    assert not [j for c in ("alpha", "beta") for j in alive_jobs(c, PERSON)]

    # One cluster named: only that one is asked about.
    reply = portal.request("GET", ESTIMATES, token=token, params={**CPU, "cluster": "beta"})
    assert [row["cluster"] for row in reply.json()["clusters"]] == ["beta"]


def test_the_gpu_profile_is_priced_with_its_gpus_on_alpha_only(portal):
    token = portal.user_token(PERSON)
    params = {"profile": "gpu", "cluster": "auto", "cores": "2", "memory_gb": "8", "gpus": "1",
              "walltime_hours": "1", "image": "gpu"}  # fmt: skip
    one = portal.request("GET", ESTIMATES, token=token, params=params).json()["clusters"]
    two = portal.request("GET", ESTIMATES, token=token, params={**params, "gpus": "2"}).json()
    assert [row["cluster"] for row in one] == ["alpha"]
    assert two["clusters"][0]["hourly_mc"] > one[0]["hourly_mc"]


def test_a_bad_field_gets_the_same_refusal_as_a_start(portal):
    token = portal.user_token(PERSON)
    reply = portal.request("GET", ESTIMATES, token=token, params={**CPU, "cores": "999"})
    assert reply.status_code == 400
    assert "cores" in reply.json()["message"] and "1 to 8" in reply.json()["message"]
    unknown = portal.request("GET", ESTIMATES, token=token, params={**CPU, "partition": "x"})
    assert unknown.status_code == 400 and "partition" in unknown.json()["message"]


def test_a_servers_own_token_can_ask_for_no_estimate_and_start_no_copy(portal):
    """The attack: code in a running server holds its token and uses it past the server's
    own scopes, to run Slurm commands or copies as the person."""
    token = server_token(portal, PERSON)
    reply = portal.request("GET", ESTIMATES, token=token, params=CPU)
    assert reply.status_code == 403, reply.text
    assert f"servers!user={PERSON}" in reply.json()["message"]
    body = {"from_cluster": "alpha", "from_path": "src", "to_cluster": "beta", "to_path": "dst"}
    reply = portal.request("POST", "/corehour/transfers", token=token, json=body)
    assert reply.status_code == 403, reply.text
    assert f"servers!user={PERSON}" in reply.json()["message"]


def test_the_spawn_form_carries_the_estimates_address(portal):
    browser = portal.login(PERSON)
    page = browser.get(f"{portal.url}/hub/spawn/{PERSON}", timeout=60)
    assert page.status_code == 200, page.text[:300]
    assert 'id="ch-starts-list"' in page.text
    assert '"estimates_url": "/hub/api/corehour/start-estimates"' in page.text
    # An admin is refused as a person, like a start: no Slurm question is asked for them.
    admin = portal.user_token(TEST_ADMIN)
    reply = portal.request("GET", ESTIMATES, token=admin, params=CPU)
    assert reply.status_code == 403, reply.text
