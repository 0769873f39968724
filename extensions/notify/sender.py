"""Each meter cycle: write the notifications whose facts are in, and mail them.

A job's end waits (state "waiting") until Slurm's accounting shows it ended and the meter has
settled its bill, so the mail's cost is the bill's; if either takes too long the mail goes
with what is known and says so.  Then the message is kept for the notification list and
mailed ("pending" → "sent"); a mail server that refuses it is tried again at the next cycles,
up to :data:`MAX_ATTEMPTS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pwd
import re
import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from billing_hooks.job_bill import job_bill
from billing_hooks.models import Charge, MeteredJob, Notification
from centre.pricing import format_credits
from centre.site import Site
from centre.slurm_cli import AS_PERSON, accounting_argv, cluster_argv, run_command
from centre.slurm_json import ENDED_STATES, SlurmOutputError, slurm_jobs, slurm_number
from centre.slurm_output import output_path

from .keys import job_end
from .mail import mail
from .messages import TAIL_LINES, EndedJob, Message, job_ended

log = logging.getLogger("corehour.notify")

BATCH = 20
# A round at most this often, whatever the meter's interval.
ROUND_S = 10.0
# Jobs the meter settled within this long are notified; older ones were before this started.
RECENT_S = 3600
# A notebook server's job (spawners/spawner.py names them so).
SERVER_JOB = re.compile(r"corehour(-[A-Za-z0-9_.-]+)?")
MAX_ATTEMPTS = 5
# How long a job's end waits for its settled bill, then for sacct's record, before it goes
# without them.
WAIT_FOR_BILL_S = 180
WAIT_FOR_ACCOUNTING_S = 600
SLURM_TIMEOUT_S = 30.0


class NotificationSender:
    def __init__(self, site: Site, sessions: sessionmaker[Session], usage_url: str):
        self.site = site
        self.sessions = sessions
        self.usage_url = usage_url
        self._running: asyncio.Task | None = None
        self._started = -ROUND_S

    async def kick(self) -> None:
        """The meter cycle's step: start a round unless one is still going or one started
        less than ROUND_S ago.  The round runs beside the meter, so slow mail servers or
        Slurm never delay the next charges."""
        if self._running is not None and not self._running.done():
            return
        if time.monotonic() - self._started < ROUND_S:
            return
        self._started = time.monotonic()
        self._running = asyncio.create_task(self.run())

    async def run(self) -> None:
        try:
            await asyncio.to_thread(self.collect_ended)
        except Exception:  # the mails already written must still go
            log.exception("notifications: could not collect the jobs that ended")
        due = await asyncio.to_thread(self._due)
        for notification in due:
            try:
                if notification.state == "waiting":
                    await self._write(notification)
                if notification.state == "pending":
                    await self._send(notification)
            except Exception:
                log.exception("notification %s: failed; trying again next cycle", notification.id)

    def _due(self) -> list[Notification]:
        with self.sessions() as session:
            due = session.scalars(
                select(Notification)
                .where(Notification.state.in_(("waiting", "pending")))
                .order_by(Notification.id)
                .limit(BATCH)
            ).all()
            session.expunge_all()
        return list(due)

    def collect_ended(self, now: int | None = None) -> int:
        """A notification for every job of a portal person that the meter settled lately and
        nobody has reported yet: the person's list shows it, and a batch job's end is mailed
        (a notebook server's is not: the person stopped it, or was told why)."""
        now = now or int(time.time())
        reported = select(Notification.id).where(
            Notification.cluster == MeteredJob.cluster,
            Notification.job_id == MeteredJob.job_id,
            # A job's end is one row: "job_ended", or "job_failed" once written.
            Notification.event.in_(("job_ended", "job_failed")),
        )
        # Read first, then write briefly: the meter writes the same database.
        with self.sessions() as session:
            ended = session.execute(
                select(MeteredJob.cluster, MeteredJob.job_id, MeteredJob.username)
                .where(
                    MeteredJob.finished.is_(True),
                    MeteredJob.charged_until >= now - RECENT_S,
                    ~reported.exists(),
                )
                .limit(BATCH)
            ).all()
            names = {
                (cluster, job_id): session.scalar(
                    select(Charge.job_name)
                    .where(
                        Charge.username == username,  # its index, not the whole table
                        Charge.cluster == cluster,
                        Charge.job_id == job_id,
                    )
                    .limit(1)
                )
                for cluster, job_id, username in ended
            }
        if not ended:
            return 0
        with self.sessions.begin() as session:
            for cluster, job_id, username in ended:
                server = bool(SERVER_JOB.fullmatch(names[(cluster, job_id)] or ""))
                kind = "server" if server else "batch"
                # One row per job even when it ran twice (a requeue) or Slurm reported it
                # meanwhile: a duplicate is skipped, not a reason to lose the others.
                with contextlib.suppress(IntegrityError), session.begin_nested():
                    session.add(
                        job_end(
                            cluster,
                            job_id,
                            username,
                            {"kind": kind, "mail": not server, "source": "meter"},
                        )
                    )
        return len(ended)

    async def _write(self, notification: Notification) -> None:
        # The ledger first (a query), Slurm's accounting only once the bill is settled: a
        # job that is still being charged costs no sacct call per cycle.
        age = int(time.time()) - notification.created_at
        bill = await asyncio.to_thread(self._bill, notification)
        if (bill is None or not bill.final) and age < WAIT_FOR_BILL_S:
            return
        facts = await self._accounting(notification)
        if facts is None and age < WAIT_FOR_ACCOUNTING_S:
            return
        facts = facts or {
            "state": "ENDED",
            "elapsed_s": 0,
            "cores": 0,
            "cpu_seconds": None,
            "exit_code": None,
        }
        detail = notification.detail or {}
        path = (
            output_path(
                detail.get("stdout", "%x-%j.out"),
                detail.get("workdir") or facts.get("workdir") or _home(notification.username),
                notification.job_id,
                detail.get("name") or facts.get("name", ""),
                notification.username,
            )
            if detail.get("kind") != "server"
            else ""
        )
        message = job_ended(
            EndedJob(
                cluster=notification.cluster,
                job_id=notification.job_id,
                name=detail.get("name") or facts.get("name", ""),
                user=notification.username,
                state=facts["state"],
                exit_code=facts["exit_code"],
                elapsed_s=facts["elapsed_s"],
                cores=facts["cores"],
                cpu_seconds=facts["cpu_seconds"],
                cost=format_credits(bill.amount_mc) if bill else "0.000",
                currency=self.site.billing.currency if self.site.billing else "credits",
                final=bool(bill and bill.final),
                output_path=path,
                output_tail=await self._tail(notification, path) if path else "",
                usage_url=self.usage_url,
                asked=detail.get("source") == "slurm",
            )
        )
        # Kept for the person's list; mailed too where wanted (not a notebook server's end).
        state = "pending" if detail.get("mail", True) else "kept"
        written = {"subject": message.subject, "body": message.body, "event": message.event}
        with self.sessions.begin() as session:
            row = session.get(Notification, notification.id)
            for field, value in {**written, "state": state}.items():
                setattr(row, field, value)
        for field, value in {**written, "state": state}.items():
            setattr(notification, field, value)

    def _bill(self, notification: Notification):
        with self.sessions() as session:
            return job_bill(
                session, notification.username, notification.cluster, notification.job_id
            )

    async def _accounting(self, notification: Notification) -> dict | None:
        """The job's end as sacct records it, or None while it does not yet."""
        cluster = self.site.clusters[notification.cluster]
        argv = ["sacct", "--json", "--jobs", notification.job_id]
        result = await run_command(
            accounting_argv(notification.cluster, cluster, argv), timeout=SLURM_TIMEOUT_S
        )
        if not result.ok:
            return None
        try:
            jobs = await asyncio.to_thread(slurm_jobs, result.stdout, "sacct-steps")
        except SlurmOutputError:
            return None
        for job in jobs:
            if str(slurm_number(job.get("job_id"))) != notification.job_id:
                continue
            if job.get("cluster") not in (None, "", notification.cluster):
                continue
            if (job.get("user") or "") != notification.username:
                return None  # someone else's job under this number: never mail it
            return _facts(job)
        return None

    async def _tail(self, notification: Notification, path: str) -> str:
        """The output's end, read as the person: what they may read, nothing else."""
        argv = cluster_argv(
            self.site.clusters[notification.cluster],
            ["tail", "-n", str(TAIL_LINES), path],
            username=notification.username,
            user_prefix=AS_PERSON,
        )
        result = await run_command(argv, timeout=SLURM_TIMEOUT_S)
        return result.stdout if result.ok else ""

    async def _send(self, notification: Notification) -> None:
        settings = self.site.notifications
        to = f"{notification.username}@{settings.mail_domain}"
        message = Message(notification.event, notification.subject, notification.body)
        try:
            await asyncio.to_thread(
                mail, message, to, settings.sender, settings.smtp_host, settings.smtp_port
            )
        except Exception as e:  # the mail server's refusal, or no mail server
            with self.sessions.begin() as session:
                row = session.get(Notification, notification.id)
                row.attempts += 1
                row.error = str(e)[:500]
                if row.attempts >= MAX_ATTEMPTS:
                    row.state = "failed"
            log.warning("notification %s to %s: %s", notification.id, to, e)
            return
        with self.sessions.begin() as session:
            session.get(Notification, notification.id).state = "sent"
        log.info("mailed %s: %s", to, notification.subject)


def _facts(job: dict) -> dict | None:
    state_block = job.get("state") or {}
    state = str(state_block.get("current") or "")
    if state not in ENDED_STATES:
        return None
    times = job.get("time") or {}
    cpu_seconds = _seconds(times.get("total"))
    steps_total = sum(
        _seconds((step.get("time") or {}).get("total")) or 0 for step in job.get("steps") or ()
    )
    allocated = (job.get("tres") or {}).get("allocated") or []
    cores = next(
        (slurm_number(t.get("count")) or 0 for t in allocated if t.get("type") == "cpu"), 0
    )
    measured = max(cpu_seconds or 0, steps_total)
    return {
        "state": state,
        "name": job.get("name") or "",
        "workdir": job.get("working_directory") or "",
        "elapsed_s": slurm_number(times.get("elapsed")) or 0,
        "cores": cores,
        "cpu_seconds": measured if measured > 0 else None,
        "exit_code": slurm_number((job.get("exit_code") or {}).get("return_code")),
    }


def _home(username: str) -> str:
    """Where corehour's own submissions run and write (public API, Job Composer)."""
    try:
        return pwd.getpwnam(username).pw_dir
    except KeyError:
        return ""


def _seconds(value: object) -> float | None:
    if not isinstance(value, dict):
        return None
    return (slurm_number(value.get("seconds")) or 0) + (
        slurm_number(value.get("microseconds")) or 0
    ) / 1e6
