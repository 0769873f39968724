"""One notification per job and event, whoever reports it first: Slurm's MailProg or the meter."""

from __future__ import annotations

from billing_hooks.models import Notification

JOB_END = "job_ended"


def job_key(cluster: str, job_id: str, event: str) -> str:
    return f"job:{cluster}:{job_id}:{event}"


def job_end(cluster: str, job_id: str, username: str, detail: dict) -> Notification:
    """A job's end, waiting for its facts (sender.py writes it once they are in)."""
    return Notification(
        dedupe_key=job_key(cluster, job_id, JOB_END),
        username=username,
        event=JOB_END,
        cluster=cluster,
        job_id=job_id,
        subject="",
        body="",
        state="waiting",
        attempts=0,
        error="",
        read=False,
        detail=detail,
    )
