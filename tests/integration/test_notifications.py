"""A batch job the portal ran is notified when it ends, with no --mail-type: its mail names
the job, its efficiency and the ledger's exact bill, and the person's list shows it."""

from __future__ import annotations

import time

import pytest

from tests.billing_checks import wait_until
from tests.mailboxes import mail_about, mails
from tests.mailboxes import subject as mail_subject

pytestmark = pytest.mark.integration

BUSY_THEN_DONE = """for i in $(seq 1 25); do echo "result $i"; done
python3 -c 'import time
t = time.time()
while time.time() - t < 3: pass'
"""


def test_a_batch_jobs_end_is_mailed_and_listed_with_its_exact_cost(portal, tokens):
    token = tokens["chtest2"]
    portal.wait_billing(token)
    before = len(mails("chtest2"))
    name = f"notified-{time.time_ns() % 10**8}"
    submitted = portal.request(
        "POST",
        "/corehour/jobs/beta",
        token,
        json={"script": BUSY_THEN_DONE, "name": name, "memory_gb": 1, "cores": 2},
    )
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["job_id"]

    subject = f"Job {job_id} ({name}) on beta finished"
    mail = wait_until(
        lambda: mail_about("chtest2", subject, before), 180, f"no mail for job {job_id}"
    )
    message = mail.get_content()
    bill = portal.billing("GET", f"api/jobs/beta/{job_id}/bill", token).json()
    assert bill["final"], bill
    assert mail_subject(mail) == f"{subject}: {bill['amount']} credits"
    assert "Ran for:" in message and "on 2 cores" in message
    assert "Efficiency:  " in message and "% of its CPU time used" in message
    assert f"Cost:        {bill['amount']} credits\n" in message
    assert "    result 25" in message

    listed = portal.request("GET", "/corehour/phone", token).json()["notifications"]
    mine = [n for n in listed if n["job_id"] == job_id and n["cluster"] == "beta"]
    assert len(mine) == 1 and mine[0]["subject"].endswith(f"finished: {bill['amount']} credits")
    # chtest1 sees none of it.
    theirs = portal.request("GET", "/corehour/phone", tokens["chtest1"]).json()["notifications"]
    assert all(n["job_id"] != job_id for n in theirs)


def test_a_notebook_servers_end_is_listed_but_not_mailed(portal, tokens):
    token = tokens["chtest3"]
    portal.wait_billing(token)
    before = len(mails("chtest3"))
    portal.start_and_wait([("chtest3", "")], tokens, profile="cpu", cluster="alpha")
    job_id = str(portal.server_model("chtest3")["state"]["job_id"])
    portal.stop_server("chtest3")

    def listed():
        items = portal.request("GET", "/corehour/phone", token).json()["notifications"]
        return [n for n in items if n["job_id"] == job_id]

    (item,) = wait_until(listed, 120, f"the server's job {job_id} was never listed")
    assert item["subject"].startswith(f"Job {job_id} (corehour) on alpha")
    time.sleep(5)  # a mail, had one been sent, would be delivered by now
    assert mail_about("chtest3", f"Job {job_id} (corehour)", before) is None
