"""The local mail server (deploy/mail.sh) delivers a corehour notification to the person's
mailbox, as the demo and TEST deliver every notification."""

from __future__ import annotations

import time

import pytest

from extensions.notify.mail import mail
from extensions.notify.messages import EndedJob, job_ended
from tests.billing_checks import wait_until
from tests.mailboxes import SPOOL, mail_about, mails

pytestmark = pytest.mark.integration


def test_a_job_ended_mail_reaches_the_persons_mailbox(users):
    person = users[0]
    before = len(mails(person))
    marker = f"mail-check-{time.time_ns()}"
    job = EndedJob(
        cluster="beta", job_id="100001", name=marker, user=person, state="COMPLETED",
        exit_code=0, elapsed_s=90, cores=2, cpu_seconds=171.0, cost="0.900",
    )  # fmt: skip
    mail(job_ended(job), f"{person}@localhost", "corehour@localhost")

    subject = f"Job 100001 ({marker}) on beta finished: 0.900 credits"
    arrived = wait_until(
        lambda: mail_about(person, subject, before), 30, f"no mail for {person} in /var/mail"
    )
    assert arrived["To"] == f"{person}@localhost"
    body = arrived.get_content()
    assert "Efficiency:  95 % of its CPU time used" in body
    assert "Cost:        0.900 credits" in body
    assert (SPOOL / person).stat().st_uid != 0  # the person's own mailbox
