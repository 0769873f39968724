"""Whether a server may start on a course's account: the term, the course's profiles and
images, and what the student has spent against their cap.

One of the spawner's admission steps (centre/admission.py), between billing's choice of
account and its money check, so a refused course spawn never reaches Slurm.  Pure, with a
small reader for the ledger and the step that runs them on a ledger thread.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_hooks import ledger_calls
from billing_hooks.db import make_engine, session_factory
from billing_hooks.ledger_calls import LedgerUnavailable
from billing_hooks.models import Account, Enrolment
from centre.admission import Admission, AdmissionRefused, SharedStep
from centre.materials import Materials
from centre.pricing import format_credits
from extensions.courses import store
from extensions.courses.settings import term_state


@dataclass(frozen=True)
class CourseSpawn:
    slug: str
    term_start: dt.date
    term_end: dt.date
    profiles: tuple[str, ...]
    images: tuple[str, ...]
    role: str | None
    spent_mc: int
    cap_mc: int | None  # None for staff, who have no cap
    materials: dict | None = None


class CourseRefused(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check(course: CourseSpawn, profile: str, image: str, today: dt.date) -> None:
    """Nothing when the server may start; else CourseRefused saying why and what to do."""
    if course.role is None:
        raise CourseRefused("account", f"you are not in course {course.slug}")
    term = term_state(course.term_start, course.term_end, today)
    if term == "before":
        raise CourseRefused(
            "account", f"course {course.slug} opens on {course.term_start}; start it from then"
        )
    if term == "ended":
        raise CourseRefused(
            "account",
            f"course {course.slug} ended on {course.term_end}, so its servers are closed; "
            "its reports stay on the Courses page",
        )
    if profile not in course.profiles:
        raise CourseRefused(
            "profile", f"course {course.slug} offers the profiles {', '.join(course.profiles)}"
        )
    if image not in course.images:
        raise CourseRefused(
            "image", f"course {course.slug} offers the images {', '.join(course.images)}"
        )
    if course.cap_mc is not None and course.spent_mc >= course.cap_mc:
        raise CourseRefused(
            "account",
            f"you have used your cap of {format_credits(course.cap_mc)} credits in course "
            f"{course.slug} (spent {format_credits(course.spent_mc)}); ask your instructor",
        )


def course_spawn(session: Session, account_id: int, username: str) -> CourseSpawn | None:
    """The course paid by ``account_id`` as ``username`` stands in it; None if no course."""
    course = store.for_account(session, account_id)
    if course is None:
        return None
    enrolment = session.scalar(
        select(Enrolment).where(Enrolment.course_id == course.id, Enrolment.username == username)
    )
    role = enrolment.role if enrolment else None
    return CourseSpawn(
        slug=course.slug,
        term_start=course.term_start,
        term_end=course.term_end,
        profiles=tuple(course.profiles),
        images=tuple(course.images),
        role=role,
        spent_mc=store.spent_by(session, course, username),
        cap_mc=store.cap_of(course, enrolment) if enrolment else None,
        materials=course.materials,
    )


class CourseAdmission(SharedStep):
    """The admission step for starts charged to a course's account; others pass untouched."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self._reads = None
        self._lock = threading.Lock()

    async def __call__(self, admission: Admission) -> Admission:
        if admission.account_kind != "course":
            return admission
        try:
            course = await ledger_calls.call(self._course, admission.account, admission.username)
        except LedgerUnavailable as e:
            raise AdmissionRefused(503, "account", str(e)) from None
        if course is None:
            return admission
        request = admission.request
        try:
            check(course, request.profile, request.image, dt.datetime.now(dt.UTC).date())
        except CourseRefused as e:
            raise AdmissionRefused(403, e.field, f"{e.field}: {e}") from None
        materials = Materials.from_settings(course.slug, course.materials)
        return dataclasses.replace(admission, materials=materials)

    def _course(self, account: str, username: str) -> CourseSpawn | None:
        """On a ledger thread: the course paid from ``account``, as ``username`` stands in it."""
        with self._lock:
            if self._reads is None:
                engine = make_engine(
                    self.database_url, read_only=True, timeout_s=ledger_calls.TIMEOUT_S
                )
                self._reads = session_factory(engine)
        with self._reads() as session:
            account_id = session.scalar(select(Account.id).where(Account.name == account))
            return course_spawn(session, account_id, username)
