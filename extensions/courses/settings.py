"""A course's settings, checked against the site: term dates, the per-student cap, the
profiles and images its students may use, and where its materials come from.

An admin creates a course through a form or the API; every value is treated as hostile and
a refusal names the field.  The course's group, ledger account and Slurm account share its
slug, so the slug follows the rules of all three.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from centre.site import Site
from extensions.courses.terms import Term, term_state

CourseSlug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,30}$")]
_GIT_URL = re.compile(r"https://[A-Za-z0-9.-]+(:\d{1,5})?/[A-Za-z0-9._~/-]+(\.git)?")
_FOLDER = re.compile(r"/[A-Za-z0-9._/-]+")
_BRANCH = re.compile(r"[A-Za-z0-9._/-]{1,100}")


class CourseError(ValueError):
    """A refused course; ``field`` names the setting and the message says what is allowed."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class Materials(BaseModel):
    """A folder on the shared file system, or a git repository pulled with nbgitpuller."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["folder", "git"]
    source: str = Field(max_length=500)
    branch: str = "main"

    @model_validator(mode="after")
    def _source_fits_kind(self) -> Materials:
        if self.kind == "folder" and (not _FOLDER.fullmatch(self.source) or ".." in self.source):
            raise ValueError("source: a folder is an absolute path without '..'")
        local_repository = _FOLDER.fullmatch(self.source) and ".." not in self.source
        if self.kind == "git" and not (_GIT_URL.fullmatch(self.source) or local_repository):
            raise ValueError(
                "source: a git repository is an https:// URL, or the path of one on the "
                "shared file system"
            )
        if not _BRANCH.fullmatch(self.branch) or ".." in self.branch:
            raise ValueError("branch: letters, digits, '.', '_', '/' or '-'")
        return self


class Course(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: CourseSlug
    title: str = Field(min_length=1, max_length=120)
    term_start: dt.date
    term_end: dt.date
    student_cap: Decimal = Field(gt=0, le=1_000_000, max_digits=12, decimal_places=3)
    default_profile: str
    profiles: tuple[str, ...] = Field(min_length=1, max_length=20)
    images: tuple[str, ...] = Field(min_length=1, max_length=20)
    materials: Materials | None = None

    @property
    def group(self) -> str:
        return f"course-{self.slug}"

    def term(self, today: dt.date) -> Term:
        return term_state(self.term_start, self.term_end, today)


def parse_course(data: object, site: Site) -> Course:
    """The course, or CourseError naming the first bad field."""
    if not isinstance(data, dict):
        raise CourseError("course", "send a JSON object of the course's settings")
    try:
        course = Course.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "course"
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown setting"
        if ": " in message and field == "materials":  # the validator names the inner field
            inner, message = message.split(": ", 1)
            field = f"materials.{inner}"
        raise CourseError(field, message) from None
    _check_against_site(course, site)
    return course


def _check_against_site(course: Course, site: Site) -> None:
    if course.slug.endswith(("-tas", "-instructors")):
        # Those endings name the course's staff groups (extensions/courses/roles.py).
        raise CourseError("slug", "must not end in '-tas' or '-instructors'")
    if course.term_end < course.term_start:
        raise CourseError("term_end", f"must be on or after term_start ({course.term_start})")
    if (course.term_end - course.term_start).days > 400:
        raise CourseError("term_end", "a term lasts at most 400 days")
    for profile in course.profiles:
        if profile not in site.profiles:
            raise CourseError(
                "profiles", f"no profile '{profile[:40]}'; the site has {sorted(site.profiles)}"
            )
    if course.default_profile not in course.profiles:
        raise CourseError(
            "default_profile", f"must be one of the course's profiles {list(course.profiles)}"
        )
    offered = {image for p in course.profiles for image in site.profiles[p].images}
    for image in course.images:
        if image not in offered:
            raise CourseError(
                "images",
                f"'{image[:40]}' is not offered by the course's profiles; use {sorted(offered)}",
            )
