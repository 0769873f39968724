"""A batch job submitted from a terminal with ``sbatch --mail-type=END`` gets corehour's mail,
not Slurm's empty one: Slurm's MailProg hands the event to the portal, which waits for the
job's settled bill and mails what ran, how long, its efficiency, its cost and its output's end
through the local mail server (docs/notifications.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.billing_checks import sbatch_as, wait_until
from tests.mailboxes import mail_about, mails

pytestmark = pytest.mark.integration

SCRIPT = """#!/bin/bash
for i in $(seq 1 30); do echo "line $i of the mailed job"; done
python3 -c 'import time
t = time.time()
while time.time() - t < 4: pass'
"""


@pytest.fixture
def mailing_portal(portal):
    path = portal.register_slurm_mail()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    yield portal
    portal.unregister_slurm_mail()


def test_a_terminal_jobs_end_mail_names_the_job_its_efficiency_cost_and_output(
    mailing_portal, tokens
):
    portal = mailing_portal
    account = portal.wait_billing(tokens["chtest1"])["accounts"][0]["name"]
    before = len(mails("chtest1"))
    name = f"mailed-{time.time_ns() % 10**8}"
    home = os.path.expanduser("~chtest1")
    job_id = sbatch_as(
        "chtest1", "beta", f"--account={account}", "--mail-type=END", "-J", name,
        "-D", home, "-o", f"{home}/%x-%j.out", script=SCRIPT,
    )  # fmt: skip

    subject = f"Job {job_id} ({name}) on beta finished"
    mail = wait_until(
        lambda: mail_about("chtest1", subject, before), 240, f"no corehour mail for job {job_id}"
    )
    message = mail.get_content()
    assert f"Your job {job_id} ({name}) on beta finished." in message
    assert re.search(r"Efficiency:  \d+ % of its CPU time used", message), message
    bill = portal.billing("GET", f"api/jobs/beta/{job_id}/bill", tokens["chtest1"]).json()
    assert bill["final"], bill
    # The ledger's settled bill, exactly.
    assert f"Cost:        {bill['amount']} credits\n" in message
    assert f"Output:      {home}/{name}-{job_id}.out" in message
    assert (
        "    line 30 of the mailed job" in message
        and "    line 10 of the mailed job" not in message
    )


def test_the_inbox_takes_only_the_portals_token_and_valid_events(mailing_portal):
    portal = mailing_portal
    url = f"{portal.site['billing']['service_url']}/services/billing/slurm-events"
    event = {"cluster": "beta", "job_id": "1", "user": "chtest1", "mail_type": "Ended"}
    for headers in ({}, {"Authorization": "token guess"}, {"Authorization": "token "}):
        assert requests.post(url, json=event, headers=headers, timeout=10).status_code == 403
    token = json.loads(
        (Path("/etc/corehour/slurm-mail.d") / f"{portal.slurm_mail_name}.json").read_text()
    )["token"]
    auth = {"Authorization": f"token {token}"}
    for bad, field in (
        ({**event, "cluster": "nowhere"}, "cluster"),
        ({**event, "job_id": "1; rm"}, "job_id"),
        ({**event, "user": "../root"}, "user"),
    ):
        reply = requests.post(url, json=bad, headers=auth, timeout=10)
        assert reply.status_code == 400 and reply.json()["message"].startswith(field)
    stranger = requests.post(url, json={**event, "user": "nobody"}, headers=auth, timeout=10)
    assert stranger.status_code == 202 and not stranger.json()["stored"]
    assert requests.post(url, data=b"x" * 5000, headers=auth, timeout=10).status_code == 413


def test_the_mail_program_reaches_every_registered_portal_and_says_when_one_fails(tmp_path):
    """deploy/slurm/corehour-slurm-mail, as slurmctld runs it, with a portal that is down."""
    dead = tmp_path / "dead.json"
    dead.write_text(json.dumps({"url": "http://127.0.0.1:9/slurm-events", "token": "x"}))
    result = subprocess.run(
        [
            str(Path(__file__).parents[2] / "deploy/slurm/corehour-slurm-mail"),
            "-s",
            "subject",
            "chtest1",
        ],
        env={"COREHOUR_SLURM_MAIL_CONFIGS": str(tmp_path / "*.json"), "SLURM_JOB_ID": "7"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and f"{dead}:" in result.stderr
