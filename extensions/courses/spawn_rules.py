"""Whether a server may start on a course's account: the term, the course's profiles and
images, and what the student has spent against their cap.

One of the spawner's admission steps (centre/admission.py), between billing's choice of
account and its money check, so a refused course spawn never reaches Slurm.  Pure: the step
asks the billing service for the course (``hub-reads/course``, answered by
spawn_reads.py, the ledger's side) on a ledger thread.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from billing_hooks import ledger_calls
from billing_hooks.ledger_calls import LedgerUnavailable
from centre.admission import Admission, AdmissionRefused, SharedStep
from centre.materials import Materials
from centre.pricing import format_credits
from extensions.courses.terms import term_state


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

    def to_json(self) -> dict:
        return {
            **self.__dict__,
            "term_start": self.term_start.isoformat(),
            "term_end": self.term_end.isoformat(),
            "profiles": list(self.profiles),
            "images": list(self.images),
        }

    @classmethod
    def from_json(cls, data: dict) -> CourseSpawn:
        return cls(
            **{
                **data,
                "term_start": dt.date.fromisoformat(data["term_start"]),
                "term_end": dt.date.fromisoformat(data["term_end"]),
                "profiles": tuple(data["profiles"]),
                "images": tuple(data["images"]),
            }
        )


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


class CourseAdmission(SharedStep):
    """The admission step for starts charged to a course's account; others pass untouched."""

    def __init__(self, read: Callable[[str, dict], object]):
        # read("course", body): the billing service's hub-reads (LedgerClient.read).
        self.read = read

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
        found = self.read("course", {"account": account, "username": username})
        return CourseSpawn.from_json(found) if found is not None else None
