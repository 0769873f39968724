"""The words of corehour's notifications (extensions/notify/messages.py)."""

from __future__ import annotations

import pytest

from extensions.notify.messages import EndedJob, duration, job_ended

pytestmark = pytest.mark.unit

JOB = EndedJob(
    cluster="beta",
    job_id="100042",
    name="fit",
    user="ann",
    state="COMPLETED",
    exit_code=0,
    elapsed_s=600,
    cores=4,
    cpu_seconds=600.0,  # one core's worth of four
    cost="12.345",
    output_path="/home/ann/fit-100042.out",
    output_tail="\n".join(f"step {i}" for i in range(30)),
)


def test_a_finished_jobs_mail_names_the_job_its_efficiency_its_cost_and_its_output():
    message = job_ended(JOB)
    assert message.event == "job_ended"
    assert message.subject == "Job 100042 (fit) on beta finished: 12.345 credits"
    body = message.body
    assert "Ran for:     10 min 00 s on 4 cores" in body
    assert "Efficiency:  25 % of its CPU time used (3.0 cores idle on average)" in body
    assert "Cost:        12.345 credits\n" in body
    assert "ask for fewer cores; it used about 1" in body
    assert "/home/ann/fit-100042.out" in body
    # The last 20 lines, not the first.
    assert "    step 29" in body and "    step 10" in body and "    step 9\n" not in body


def test_a_failed_job_says_how_and_a_cost_not_yet_settled_says_so():
    failed = EndedJob(
        **{**JOB.__dict__, "state": "OUT_OF_MEMORY", "exit_code": 137, "final": False}
    )
    message = job_ended(failed)
    assert message.event == "job_failed"
    assert "ran out of memory: 12.345 credits" in message.subject
    assert "with exit code 137." in message.body
    assert "so far (the final bill follows within a minute)" in message.body


def test_without_measurements_or_billing_the_mail_says_what_it_knows():
    bare = EndedJob(**{**JOB.__dict__, "cpu_seconds": None, "cost": None, "output_tail": ""})
    body = job_ended(bare).body
    assert "Efficiency:  not measured" in body and "Cost:" not in body
    assert "mailed when a batch job of yours ends" in body


@pytest.mark.parametrize(
    ("seconds", "words"), [(5, "5 s"), (65, "1 min 05 s"), (3725, "1 h 02 min")]
)
def test_durations_read_as_people_say_them(seconds, words):
    assert duration(seconds) == words
