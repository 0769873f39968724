"""The ledger's side of a start charged to a course: the course and how the person stands
in it, answered by the billing service to the hub's course step (spawn_rules.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing_hooks.models import Account, Enrolment
from billing_hooks.service.hub_reads import account_in, username_in
from extensions.courses import store
from extensions.courses.spawn_rules import CourseSpawn


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


def course_read(reads: sessionmaker[Session]):
    """``hub-reads/course``: {"account", "username"} → the CourseSpawn as JSON, or null."""

    def read(body: dict) -> dict | None:
        account, username = account_in(body), username_in(body)
        with reads() as session:
            account_id = session.scalar(select(Account.id).where(Account.name == account))
            found = course_spawn(session, account_id, username) if account_id else None
            return found.to_json() if found is not None else None

    return read
