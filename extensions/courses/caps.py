"""After each metering cycle: stop what a student runs on a course's money once they reach
their cap, and tell them why.

Runs in the billing service's meter loop, next to the account-level enforcement: a course
account may have plenty left while one student has used their share.  Servers are stopped
through the hub; other jobs on the course account (submitted from a terminal or an app) are
cancelled with scancel.  The spawn check (spawn_rules.py) keeps them from starting again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from billing_hooks.enforce import add_notice
from billing_hooks.hub_client import HubClient
from billing_hooks.models import Charge, Course, Enrolment, MeteredJob
from centre.pricing import format_credits
from centre.site import Site
from centre.slurm_cli import cluster_argv, run_command

log = logging.getLogger("corehour.courses")

Job = tuple[str, str]  # (cluster, job id)


@dataclass(frozen=True)
class OverCap:
    course: str
    username: str
    spent_mc: int
    cap_mc: int
    jobs: tuple[Job, ...]


def over_cap(
    students: list[tuple[str, str, int]],
    spent: dict[tuple[str, str], int],
    running: dict[tuple[str, str], list[Job]],
) -> list[OverCap]:
    """Students (course, username, cap) who reached their cap and still run something."""
    found = []
    for course, username, cap in students:
        key = (course, username)
        used = spent.get(key, 0)
        if used >= cap and running.get(key):
            found.append(OverCap(course, username, used, cap, tuple(sorted(running[key]))))
    return found


def find_over_cap(session: Session) -> list[OverCap]:
    students = [
        (slug, username, course_cap if own_cap is None else own_cap)
        for slug, username, course_cap, own_cap in session.execute(
            select(Course.slug, Enrolment.username, Course.student_cap_mc, Enrolment.cap_mc)
            # Everyone enrolled has a cap, staff too: a TA's or instructor's course server
            # spends the same budget.
            .join(Enrolment, Enrolment.course_id == Course.id)
        )
    ]
    running: dict[tuple[str, str], list[Job]] = {}
    for slug, username, cluster, job_id in session.execute(
        select(Course.slug, MeteredJob.username, MeteredJob.cluster, MeteredJob.job_id)
        .join(MeteredJob, MeteredJob.account_id == Course.account_id)
        .where(MeteredJob.finished.is_(False))
    ):
        running.setdefault((slug, username), []).append((cluster, job_id))
    if not running:
        return []
    spent = {
        (slug, username): int(mc)
        for slug, username, mc in session.execute(
            select(Course.slug, Charge.username, func.sum(Charge.amount_mc))
            .join(Charge, Charge.account_id == Course.account_id)
            .group_by(Course.slug, Charge.username)
        )
    }
    return over_cap(students, spent, running)


class CapEnforcer:
    def __init__(
        self,
        site: Site,
        sessions: sessionmaker[Session],
        hub: HubClient,
        courses_url: str,
        slurm_timeout: float = 30.0,
    ):
        self.site = site
        self.sessions = sessions
        self.hub = hub
        self.courses_url = courses_url
        self.slurm_timeout = slurm_timeout

    async def run(self) -> list[OverCap]:
        found = await asyncio.to_thread(self._find)
        for student in found:
            await self._stop(student)
        return found

    def _find(self) -> list[OverCap]:
        with self.sessions() as session:
            return find_over_cap(session)

    async def _stop(self, student: OverCap) -> None:
        log.warning(
            "%s reached the cap of course %s: stopping %d jobs",
            student.username,
            student.course,
            len(student.jobs),
        )
        stopped = await self.hub.stop_servers_running(student.jobs)
        remaining = set(student.jobs) - {job for job, _server in stopped}
        for cluster in sorted({c for c, _ in remaining}):
            ids = sorted(j for c, j in remaining if c == cluster)
            result = await run_command(
                cluster_argv(self.site.clusters[cluster], ["scancel", *ids]),
                timeout=self.slurm_timeout,
            )
            if not result.ok:
                log.error("scancel on %s failed: %s", cluster, result.stderr.strip())
        await asyncio.to_thread(self._tell, student)

    def _tell(self, student: OverCap) -> None:
        message = (
            f"You reached your cap of {format_credits(student.cap_mc)} credits in course "
            f"{student.course} (spent {format_credits(student.spent_mc)}), so your course "
            "server was stopped. Ask your instructor to raise your cap; your files are kept. "
            f"Course page: {self.courses_url}/{student.course}"
        )
        with self.sessions.begin() as session:
            for cluster, job_id in student.jobs:
                add_notice(session, student.username, "danger", message, f"cap:{cluster}:{job_id}")
