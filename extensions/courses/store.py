"""Courses in the ledger database: create one, enrol people, and read what they spent.

A course row sits next to its ledger account (kind "course", named ``course-<slug>``, which
is also its Slurm account).  Students and TAs are members of that account, so they may
charge it; instructors are its managers, so the billing pages show them its statement.
Callers own the transaction (``with sessions.begin():``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from billing_hooks.ledger import NewAccount, add_member, create_account, record_transaction
from billing_hooks.models import (
    Account,
    Charge,
    Course,
    Enrolment,
    Membership,
    Transaction,
)
from centre.names import COURSE_ROLES
from centre.pricing import MC_PER_CREDIT
from extensions.courses import roster, settings

SOURCES = ("csv", "api", "sso")


def account_name(slug: str) -> str:
    return f"course-{slug}"


def credits_to_mc(credits) -> int:
    return int(credits * MC_PER_CREDIT)


def create_course(session: Session, spec: settings.Course, budget_mc: int, actor: str) -> Course:
    """The course and its account, with ``budget_mc`` as the opening top-up."""
    if find(session, spec.slug) is not None:
        raise settings.CourseError("slug", f"a course named '{spec.slug}' already exists")
    account = create_account(
        session,
        NewAccount(
            name=account_name(spec.slug), kind="course", owner=actor, display_name=spec.title
        ),
        actor=actor,
    )
    if budget_mc:
        record_transaction(
            session, account.id, "topup", budget_mc, actor, f"budget of course {spec.slug}"
        )
    course = Course(
        slug=spec.slug,
        title=spec.title,
        account_id=account.id,
        term_start=spec.term_start,
        term_end=spec.term_end,
        student_cap_mc=credits_to_mc(spec.student_cap),
        default_profile=spec.default_profile,
        profiles=list(spec.profiles),
        images=list(spec.images),
        materials=spec.materials.model_dump() if spec.materials else None,
        created_by=actor,
    )
    session.add(course)
    session.flush()
    return course


def course_students(database_url: str) -> dict[str, list[str]]:
    """Every course's slug and its students, for the hub's course roles at start (on a
    ledger its caller has migrated)."""
    from billing_hooks.db import make_engine

    engine = make_engine(database_url, read_only=True)
    try:
        with Session(engine) as session:
            students: dict[str, list[str]] = {
                slug: [] for slug in session.scalars(select(Course.slug).order_by(Course.slug))
            }
            rows = session.execute(
                select(Course.slug, Enrolment.username)
                .join(Course, Course.id == Enrolment.course_id)
                .where(Enrolment.role == "student")
                .order_by(Enrolment.username)
            )
            for slug, username in rows:
                students[slug].append(username)
            return students
    finally:
        engine.dispose()


def find(session: Session, slug: str) -> Course | None:
    return session.scalar(select(Course).where(Course.slug == slug))


def for_account(session: Session, account_id: int) -> Course | None:
    return session.scalar(select(Course).where(Course.account_id == account_id))


def all_courses(session: Session) -> list[Course]:
    return list(session.scalars(select(Course).order_by(Course.term_start.desc(), Course.slug)))


def courses_of(session: Session, username: str) -> list[tuple[Course, str]]:
    rows = session.execute(
        select(Course, Enrolment.role)
        .join(Enrolment, Enrolment.course_id == Course.id)
        .where(Enrolment.username == username)
        .order_by(Course.term_start.desc(), Course.slug)
    )
    return [(course, role) for course, role in rows]


def role_in(session: Session, course: Course, username: str) -> str | None:
    return session.scalar(
        select(Enrolment.role).where(
            Enrolment.course_id == course.id, Enrolment.username == username
        )
    )


@dataclass(frozen=True)
class EnrolReport:
    added: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: int


def enrol(
    session: Session, course: Course, rows: Iterable[roster.Enrolment], source: str
) -> EnrolReport:
    """Add or update everyone in ``rows`` (already checked whole by the roster parser).

    A class list (``source`` "csv" or "api") sets the listed role, the provider's groups
    ("sso") the provider's; the enrolment's role is the higher of the two, so a list never
    takes away what the provider gave, nor the provider what a list gave.
    """
    assert source in SOURCES, source
    current = {e.username: e for e in course.enrolments}
    added, changed, unchanged = [], [], 0
    account = session.get(Account, course.account_id)
    for row in rows:
        enrolment = current.get(row.username)
        if enrolment is None:
            enrolment = Enrolment(
                course_id=course.id,
                username=row.username,
                display_name=row.name,
                email=row.email,
                source=source,
            )
            session.add(enrolment)
            current[row.username] = enrolment
            added.append(row.username)
            before = None
        else:
            before = (enrolment.role, enrolment.display_name, enrolment.email)
            enrolment.display_name = row.name or enrolment.display_name
            enrolment.email = row.email or enrolment.email
        if source == "sso":
            enrolment.sso_role = row.role
        else:
            enrolment.listed_role = row.role
        enrolment.role = higher_role(enrolment.listed_role, enrolment.sso_role)
        if before is not None:
            if before != (enrolment.role, enrolment.display_name, enrolment.email):
                changed.append(row.username)
            else:
                unchanged += 1
        add_member(session, account, row.username, _member_role(enrolment.role))
    session.flush()
    return EnrolReport(tuple(added), tuple(changed), unchanged)


def grant_from_provider(
    session: Session, course: Course, username: str, role: str | None, name: str, email: str
) -> bool:
    """Set the role the provider's groups give ``username`` now (None: none).  Their
    enrolment becomes the higher of it and the class list's role, and goes when neither
    gives one.  True when their role in the course changed."""
    assert role is None or role in COURSE_ROLES, role
    enrolment = session.scalar(
        select(Enrolment).where(Enrolment.course_id == course.id, Enrolment.username == username)
    )
    if enrolment is None and role is None:
        return False
    if enrolment is None:
        row = roster.Enrolment(0, username, role, name[:200], email[:254])
        enrol(session, course, [row], "sso")
        return True
    enrolment.sso_role = role
    wanted = higher_role(enrolment.listed_role, role)
    if wanted is None:
        return unenrol(session, course, username)
    if wanted == enrolment.role:
        session.flush()
        return False
    enrolment.role = wanted
    add_member(session, session.get(Account, course.account_id), username, _member_role(wanted))
    session.flush()
    return True


def higher_role(*roles: str | None) -> str | None:
    """The highest of the course roles given (None counts as no role)."""
    given = [role for role in roles if role is not None]
    return max(given, key=COURSE_ROLES.index) if given else None


def _member_role(course_role: str) -> str:
    # Instructors manage the course account (they see its statement); others spend from it.
    return "manager" if course_role == "instructor" else "member"


def unenrol(session: Session, course: Course, username: str) -> bool:
    """Take someone out of the course; what they spent stays on the course's bills."""
    gone = session.execute(
        delete(Enrolment).where(Enrolment.course_id == course.id, Enrolment.username == username)
    ).rowcount
    session.execute(
        delete(Membership).where(
            Membership.account_id == course.account_id, Membership.username == username
        )
    )
    return bool(gone)


def people(session: Session, course: Course) -> dict[str, str]:
    """username → course role, for the hub's groups."""
    rows = session.execute(
        select(Enrolment.username, Enrolment.role).where(Enrolment.course_id == course.id)
    )
    return {name: role for name, role in rows}


def set_cap(session: Session, course: Course, username: str, cap_mc: int | None) -> Enrolment:
    enrolment = session.scalar(
        select(Enrolment).where(Enrolment.course_id == course.id, Enrolment.username == username)
    )
    if enrolment is None:
        raise settings.CourseError("username", f"'{username[:40]}' is not in {course.slug}")
    enrolment.cap_mc = cap_mc
    session.flush()
    return enrolment


def cap_of(course: Course, enrolment: Enrolment) -> int:
    return course.student_cap_mc if enrolment.cap_mc is None else enrolment.cap_mc


@dataclass(frozen=True)
class Spent:
    mc: int = 0
    jobs: int = 0
    core_seconds: int = 0
    gpu_seconds: int = 0
    last_charge: int | None = None


def spent_by_person(session: Session, course: Course) -> dict[str, Spent]:
    rows = session.execute(
        select(
            Charge.username,
            func.sum(Charge.amount_mc),
            func.count(func.distinct(Charge.cluster + "/" + Charge.job_id)),
            func.sum(Charge.cpu_seconds),
            func.sum(Charge.gpu_seconds),
            func.max(Charge.interval_end),
        )
        .where(Charge.account_id == course.account_id)
        .group_by(Charge.username)
    )
    return {
        name: Spent(int(mc or 0), int(jobs or 0), int(cpu or 0), int(gpu or 0), last)
        for name, mc, jobs, cpu, gpu, last in rows
    }


def spent_by(session: Session, course: Course, username: str) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Charge.amount_mc), 0)).where(
                Charge.account_id == course.account_id, Charge.username == username
            )
        )
    )


def budget_mc(session: Session, course: Course) -> int:
    """All the money that came into the course's account."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Transaction.amount_mc), 0)).where(
                Transaction.account_id == course.account_id
            )
        )
    )


def daily_spend(session: Session, course: Course) -> list[tuple[dt.date, int]]:
    """What the course spent each UTC day, by when the charged time was used."""
    day = func.floor(Charge.interval_start / 86400)
    rows = session.execute(
        select(day, func.sum(Charge.amount_mc))
        .where(Charge.account_id == course.account_id)
        .group_by(day)
        .order_by(day)
    )
    epoch = dt.date(1970, 1, 1)
    return [(epoch + dt.timedelta(days=int(d)), int(mc)) for d, mc in rows]
