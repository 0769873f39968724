"""At every sign-in through the identity provider: its groups claim decides the person's
courses and their role in each.

Group names follow the hub's own course groups: ``course-<slug>`` makes a student,
``course-<slug>-tas`` a TA and ``course-<slug>-instructors`` an instructor (the highest one
wins).  Groups of courses that do not exist are ignored.  The claim adds and updates
enrolments, and takes away only the ones it made (source "sso"), so a class list uploaded by
an instructor is never undone by a sign-in.  The hub's course groups are then set from the
ledger, in the same request, so the new roles hold from this sign-in on.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing_hooks.models import Course, Enrolment
from extensions.courses import store
from extensions.courses.hub_api import apply_course
from extensions.courses.roster import Enrolment as Row
from extensions.courses.unix_accounts import ensure_accounts

log = logging.getLogger("corehour.courses")
RANK = {"student": 0, "ta": 1, "instructor": 2}
SUFFIXES = (("-instructors", "instructor"), ("-tas", "ta"), ("", "student"))


def memberships(groups: object, slugs: set[str]) -> dict[str, str]:
    """slug → role, from the provider's groups; anything that is not a course group is ignored."""
    found: dict[str, str] = {}
    for group in groups if isinstance(groups, list) else ():
        if not isinstance(group, str) or not group.startswith("course-"):
            continue
        rest = group.removeprefix("course-")
        for suffix, role in SUFFIXES:
            if not rest.endswith(suffix):
                continue
            slug = rest[: len(rest) - len(suffix)]
            if slug in slugs:
                if RANK[role] > RANK.get(found.get(slug, ""), -1):
                    found[slug] = role
                break
    return found


def sync_person(session: Session, username: str, name: str, email: str, groups: object) -> set[str]:
    """Bring ``username``'s enrolments in line with the claim; the slugs that changed."""
    courses = {c.slug: c for c in session.scalars(select(Course))}
    wanted = memberships(groups, set(courses))
    held = {
        course.slug: enrolment
        for enrolment, course in session.execute(
            select(Enrolment, Course)
            .join(Course, Course.id == Enrolment.course_id)
            .where(Enrolment.username == username)
        )
    }
    changed = set()
    for slug, role in wanted.items():
        current = held.get(slug)
        if current is not None and current.role == role:
            continue
        store.enrol(session, courses[slug], [Row(0, username, role, name[:200], email)], "sso")
        changed.add(slug)
    for slug, enrolment in held.items():
        if slug not in wanted and enrolment.source == "sso":
            store.unenrol(session, courses[slug], username)
            changed.add(slug)
    return changed


def make_post_auth_hook(sessions: sessionmaker[Session], create_unix_accounts: bool):
    """``Authenticator.post_auth_hook`` for the OIDC authenticator (see extensions/sso/oidc.py)."""

    async def sync_courses(authenticator, handler, auth_model: dict) -> dict:
        state = auth_model.get("auth_state") or {}
        username = auth_model["name"]
        accounts = await ensure_accounts([username], create_unix_accounts)
        if accounts.missing:
            log.warning("%s signed in but has no Unix account yet", username)

        def update() -> dict[str, dict[str, str]]:
            with sessions.begin() as session:
                changed = sync_person(
                    session,
                    username,
                    str(state.get("name") or ""),
                    str(state.get("email") or ""),
                    state.get("groups"),
                )
                return {slug: store.people(session, store.find(session, slug)) for slug in changed}

        for slug, people in (await asyncio.to_thread(update)).items():
            apply_course(handler, slug, people)
            handler.db.commit()
            log.info("%s: course %s synced from the identity provider's groups", username, slug)
        return auth_model

    return sync_courses
