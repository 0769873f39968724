"""Servers and terminal jobs on gamma, the remote centre the portal reaches only over ssh, billed
exactly against gamma's own accounting (docs/centres.md)."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine

from centre.site import parse_site, public_site
from spawners.routing import ANSWER_TTL_SECONDS
from tests.billing_checks import expected_mc, ledger_job, sbatch_as, wait_finished, wait_until
from tests.gamma import (
    GAMMA_HOMES,
    GAMMA_RATE_FACTOR,
    GAMMA_SLURM_CONF,
    gamma_sacct_job,
    gamma_site,
    login_argv,
    on_gamma,
)
from tests.harness import DEPLOY, Portal, job_state, slurm, squeue_jobs

PORT = 28900
PERSON = "chtest2"
FILLER = "chtest3"  # fills alpha and beta so that only gamma can start a server now


@pytest.fixture(scope="module")
def portal(tmp_path_factory, users):
    workdir = tmp_path_factory.mktemp("gamma")
    portal = Portal(workdir, PORT, site=gamma_site(PORT, workdir)).start()
    yield portal
    portal.stop_all(users)
    portal.stop()


@pytest.fixture(scope="module")
def ledger(portal):
    engine = create_engine(portal.billing_db)
    yield engine
    engine.dispose()


def server_environment(person: str) -> dict[str, str]:
    """The environment of the person's running notebook server, read as root from /proc."""
    for proc in Path("/proc").iterdir():
        try:
            if proc.stat().st_uid != _uid(person):
                continue
            if b"jupyterhub-singleuser" not in (proc / "cmdline").read_bytes():
                continue
            raw = (proc / "environ").read_bytes()
        except OSError:
            continue
        return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    raise AssertionError(f"no notebook server process of {person}")


def _uid(person: str) -> int:
    return pwd.getpwnam(person).pw_uid


def command_lines() -> list[str]:
    lines = []
    for proc in Path("/proc").iterdir():
        try:
            lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return lines


def test_a_server_on_gamma_is_served_through_the_proxy_and_billed_exactly(portal, ledger):
    token = portal.user_token(PERSON)
    reply = portal.start_server(PERSON, token, cluster="gamma", profile="cpu")
    assert reply.status_code in (201, 202), reply.text
    model = portal.wait_ready(PERSON, timeout=90)
    assert model["state"]["cluster"] == "gamma"
    job_id = model["state"]["job_id"]

    # The job runs on gamma's node, and the proxy reaches the server there.
    # (squeue --json of Slurm 22.05 ignores -j: pick the job out.)
    jobs = json.loads(on_gamma("squeue", "--json").stdout)["jobs"]
    job = next(job for job in jobs if str(job["job_id"]) == job_id)
    assert (job["nodes"], job["user_name"]) == ("gamma", PERSON)
    status = requests.get(
        f"{portal.url}/user/{PERSON}/api/status",
        headers={"Authorization": f"token {token}"},
        timeout=10,
    )
    assert status.status_code == 200, status.text

    # The server calls home to the hub over gamma's link, with a token no command line shows.
    environment = server_environment(PERSON)
    assert environment["JUPYTERHUB_API_URL"].startswith("http://10.77.0.1:")
    server_token = environment["JUPYTERHUB_API_TOKEN"]
    assert len(server_token) >= 32
    assert not [line for line in command_lines() if server_token in line]
    # Only what a server needs came from the hub: not the proxy's token, not the hub's PATH.
    assert "CONFIGPROXY_AUTH_TOKEN" not in environment
    assert environment["SLURM_CONF"] == "/etc/corehour/gamma/slurm.conf"

    portal.stop_server(PERSON)
    portal.wait_gone(PERSON)
    wait_finished(ledger, "gamma", job_id, timeout=90)
    sacct = gamma_sacct_job(job_id)
    amount, cpu_seconds, _rows = ledger_job(ledger, "gamma", job_id)
    assert sacct["cluster"] == "gamma" and sacct["time"]["elapsed"] > 0
    assert amount == expected_mc(sacct, GAMMA_RATE_FACTOR)
    cpus = next(t["count"] for t in sacct["tres"]["allocated"] if t["type"] == "cpu")
    assert cpu_seconds == cpus * sacct["time"]["elapsed"]


def test_a_terminal_job_on_gamma_is_billed_exactly_against_gammas_sacct(portal, ledger):
    token = portal.user_token(PERSON)
    account = portal.wait_billing(token)["accounts"][0]["name"]
    reply = on_gamma(
        "sbatch", "--parsable", f"--account={account}", "-c", "2",
        f"--chdir=/home/{PERSON}", "--output=/dev/null", "--wrap", "sleep 3",
        as_person=PERSON,
    )  # fmt: skip
    assert reply.returncode == 0, reply.stderr
    job_id = reply.stdout.strip().split(";")[0]
    wait_finished(ledger, "gamma", job_id, timeout=90)
    sacct = gamma_sacct_job(job_id)
    amount, cpu_seconds, _rows = ledger_job(ledger, "gamma", job_id)
    assert sacct["account"] == account
    assert amount == expected_mc(sacct, GAMMA_RATE_FACTOR)
    assert cpu_seconds == 2 * sacct["time"]["elapsed"]


def test_auto_prefers_the_cheaper_local_clusters_while_they_have_room(portal):
    token = portal.user_token(PERSON)
    reply = portal.start_server(PERSON, token, cluster="auto", profile="cpu")
    assert reply.status_code in (201, 202), reply.text
    try:
        assert portal.wait_ready(PERSON, timeout=90)["state"]["cluster"] == "alpha"
    finally:
        portal.stop_server(PERSON)
        portal.wait_gone(PERSON)


def test_auto_sends_a_server_to_gamma_when_alpha_and_beta_are_full(portal):
    token = portal.user_token(FILLER)
    account = portal.wait_billing(token)["accounts"][0]["name"]
    fillers = {
        cluster: sbatch_as(
            FILLER, cluster, f"--account={account}", "-c", "32", "--wrap", "sleep 600"
        )
        for cluster in ("alpha", "beta")
    }
    try:
        for cluster, job_id in fillers.items():
            wait_until(
                lambda c=cluster, j=job_id: any(
                    str(job["job_id"]) == j and job_state(job) == "RUNNING"
                    for job in squeue_jobs(c)
                ),
                60,
                f"the filler job on {cluster} did not start",
            )
        # Answers from before the fill may be reused for this long (spawners/routing.py).
        time.sleep(ANSWER_TTL_SECONDS)
        token = portal.user_token(PERSON)
        # What the spawn form shows first: gamma, over ssh, starts now at twice the price.
        params = {"profile": "cpu", "cluster": "auto", "cores": "1", "memory_gb": "2",
                  "walltime_hours": "1", "image": "base"}  # fmt: skip
        estimates = portal.request("GET", "/corehour/start-estimates", token=token, params=params)
        assert estimates.status_code == 200, estimates.text
        rows = {row["cluster"]: row for row in estimates.json()["clusters"]}
        assert rows["gamma"]["state"] == "now" and rows["gamma"]["auto_pick"], rows
        assert rows["alpha"]["state"] == rows["beta"]["state"] == "later", rows
        assert rows["gamma"]["hourly_mc"] == GAMMA_RATE_FACTOR * rows["alpha"]["hourly_mc"]
        reply = portal.start_server(PERSON, token, cluster="auto", profile="cpu")
        assert reply.status_code in (201, 202), reply.text
        model = portal.wait_ready(PERSON, timeout=90)
        assert model["state"]["cluster"] == "gamma"
    finally:
        for cluster, job_id in fillers.items():
            slurm(cluster, "scancel", job_id, check=False)
        portal.stop_server(PERSON)
        portal.wait_gone(PERSON)


CUT_SECONDS = 60


def test_a_60_s_cut_to_gamma_kills_no_server_and_charges_nothing_twice(portal, ledger):
    token = portal.user_token(PERSON)
    reply = portal.start_server(PERSON, token, cluster="gamma", profile="cpu")
    assert reply.status_code in (201, 202), reply.text
    job_id = portal.wait_ready(PERSON, timeout=90)["state"]["job_id"]
    other = portal.login(FILLER)

    subprocess.run([str(DEPLOY / "gamma.sh"), "cut"], check=True, capture_output=True)
    try:
        cut_at = time.monotonic()
        notice = ""
        while time.monotonic() - cut_at < CUT_SECONDS:
            model = portal.server_model(PERSON)
            assert model is not None and model["ready"], "the server was dropped during the cut"
            if not notice:
                page = other.get(f"{portal.url}/hub/spawn/{FILLER}", timeout=30).text
                notice = next(
                    (line for line in page.splitlines() if "cannot be reached" in line), ""
                )
            time.sleep(1)
        # The spawn form says which centre is away, and why.
        assert "Cluster gamma cannot be reached right now" in notice
        assert "(ssh to gamma failed: " in notice
        # auto does not wait on it: a server for someone else starts at once elsewhere.
        started = time.monotonic()
        reply = portal.start_server(
            FILLER, portal.user_token(FILLER), cluster="auto", profile="cpu"
        )
        assert reply.status_code in (201, 202), reply.text
        assert portal.wait_ready(FILLER, timeout=60)["state"]["cluster"] == "alpha"
        assert time.monotonic() - started < 30
    finally:
        subprocess.run([str(DEPLOY / "gamma.sh"), "mend"], check=True, capture_output=True)
        portal.stop_server(FILLER)

    # Back: the same job still serves, and its bill is exact: no second of it charged twice.
    jobs = json.loads(on_gamma("squeue", "--json").stdout)["jobs"]
    job = next(job for job in jobs if str(job["job_id"]) == job_id)
    assert job_state(job) == "RUNNING"
    assert portal.server_model(PERSON)["ready"]
    portal.stop_server(PERSON)
    portal.wait_gone(PERSON)
    wait_finished(ledger, "gamma", job_id, timeout=120)
    sacct = gamma_sacct_job(job_id)
    amount, cpu_seconds, _rows = ledger_job(ledger, "gamma", job_id)
    assert sacct["time"]["elapsed"] > CUT_SECONDS
    assert amount == expected_mc(sacct, GAMMA_RATE_FACTOR)
    cpus = next(t["count"] for t in sacct["tres"]["allocated"] if t["type"] == "cpu")
    assert cpu_seconds == cpus * sacct["time"]["elapsed"]


KIT_SUBMISSION = """
from voila_apps.kit.jobs import batch_script, check_resources
from voila_apps.kit.slurm import load_site, submit

site = load_site()
request = check_resources({"cluster": "gamma", "profile": "cpu", "cores": 1}, site)
script = batch_script(
    request, name="kit-check", workdir="/home/%(person)s", body="hostname; sleep 2",
    output="/dev/null", account="%(account)s",
)
print("APP JOB", submit(site, "gamma", script))
"""


def test_an_app_job_from_a_server_on_gamma_runs_there_and_is_billed_exactly(portal, ledger):
    """The apps' own Slurm runner (voila_apps/kit/slurm.py), run as it runs in an app server
    on gamma: inside a job there, with the server's site and app code."""
    account = portal.wait_billing(portal.user_token(PERSON))["accounts"][0]["name"]
    site_json = json.dumps(public_site(parse_site(portal.site, "the test site")))
    code = KIT_SUBMISSION % {"person": PERSON, "account": account}
    outer = "\n".join([
        "#!/bin/bash",
        f"#SBATCH --account={account}",
        f"#SBATCH --chdir=/home/{PERSON}",
        f"#SBATCH --output=/home/{PERSON}/kit-outer-%j.out",
        f"export COREHOUR_SITE_JSON={shlex.quote(site_json)}",
        "export PYTHONPATH=/opt/corehour/apps",
        f"/opt/corehour/images/base/bin/python -c {shlex.quote(code)}",
        "",
    ])  # fmt: skip
    reply = subprocess.run(
        login_argv(shlex.join(["sudo", "-n", "-u", PERSON, "env",
                               f"SLURM_CONF={GAMMA_SLURM_CONF}", "sbatch", "--parsable", "--wait"])),
        input=outer, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert reply.returncode == 0, reply.stderr
    outer_id = reply.stdout.strip().split(";")[0]
    printed = (GAMMA_HOMES / PERSON / f"kit-outer-{outer_id}.out").read_text()
    assert "APP JOB " in printed, printed
    app_job = printed.split("APP JOB ", 1)[1].split()[0]

    wait_finished(ledger, "gamma", app_job, timeout=90)
    sacct = gamma_sacct_job(app_job)
    assert (sacct["cluster"], sacct["name"], sacct["account"]) == ("gamma", "kit-check", account)
    amount, _cpu_seconds, _rows = ledger_job(ledger, "gamma", app_job)
    assert amount == expected_mc(sacct, GAMMA_RATE_FACTOR)


def _tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: its sha256 and owner."""
    return {
        str(path.relative_to(root)): (
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_uid,
        )
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_a_folder_copied_from_beta_to_gamma_arrives_intact_and_owned_by_the_person(portal):
    person = pwd.getpwnam(PERSON)
    source = Path(person.pw_dir) / "copy-source"  # beta's homes are the hub host's
    shutil.rmtree(source, ignore_errors=True)
    (source / "deep" / "er").mkdir(parents=True)
    (source / "notes.txt").write_text("results of run 1\n")
    (source / "deep" / "er" / "data.bin").write_bytes(os.urandom(3 << 20))
    subprocess.run(["chown", "-R", f"{person.pw_uid}:{person.pw_gid}", str(source)], check=True)
    target = GAMMA_HOMES / PERSON / "from-beta" / "run1"
    shutil.rmtree(target.parent, ignore_errors=True)

    token = portal.user_token(PERSON)
    body = {"from_cluster": "beta", "from_path": "copy-source",
            "to_cluster": "gamma", "to_path": "from-beta/run1"}  # fmt: skip
    reply = portal.request("POST", "/corehour/transfers", token=token, json=body)
    assert reply.status_code == 202, reply.text
    transfer = reply.json()["id"]
    progress = wait_until(
        lambda: (
            (p := portal.request("GET", f"/corehour/transfers/{transfer}", token=token).json())[
                "state"
            ]
            in ("done", "failed")
            and p
        ),
        120,
        "the copy did not end",
    )
    assert progress["state"] == "done", progress
    assert progress["percent"] == 100 and progress["copied_bytes"] >= 3 << 20
    copied = _tree(target)
    assert copied == _tree(source)
    assert {uid for _, uid in copied.values()} == {person.pw_uid}
    assert (target / "deep" / "er").stat().st_uid == person.pw_uid

    # Only the person sees their copy; a bad path is named and copies nothing.
    other = portal.user_token(FILLER)
    assert portal.request("GET", f"/corehour/transfers/{transfer}", token=other).status_code == 404
    body["to_path"] = "../chtest3"
    refused = portal.request("POST", "/corehour/transfers", token=token, json=body)
    assert refused.status_code == 400 and "to_path" in refused.text
    flood = portal.request(
        "POST", "/corehour/transfers", token=token, json={**body, "x": "y" * 8192}
    )
    assert flood.status_code == 413
