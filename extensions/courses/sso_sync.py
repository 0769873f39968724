"""At every sign-in through the identity provider: its course groups decide the person's
courses and their role in each.

The authenticator hands on only the groups the site trusts: those under
``auth.course_groups_prefix``, with the prefix taken off (``auth_state["course_groups"]``,
see extensions/sso/oidc.py); any other group, however it is named, gives no course role.
Their names follow the hub's own course groups: ``course-<slug>`` makes a student,
``course-<slug>-tas`` a TA and ``course-<slug>-instructors`` an instructor (the highest one
wins).  Groups of courses that do not exist are ignored.

What the groups give is kept apart from what a class list gave (``store.grant_from_provider``):
the person's role is the higher of the two, so a dropped group takes back exactly what it
gave (an instructor by group who was uploaded as a student is a student again; one whom only
the group enrolled leaves the course), and a sign-in never undoes a class list.  The hub's
course groups are then set from the ledger, in the same request, so the new roles hold from
this sign-in on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from billing_hooks.models import Course, Enrolment
from extensions.courses import store
from extensions.courses.hub_api import apply_course
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
    """Bring ``username``'s provider-given roles in line with ``groups`` (the trusted course
    groups, prefix already off); the slugs whose role changed."""
    courses = {c.slug: c for c in session.scalars(select(Course))}
    wanted = memberships(groups, set(courses))
    held = set(
        session.scalars(
            select(Course.slug)
            .join(Enrolment, Enrolment.course_id == Course.id)
            .where(Enrolment.username == username)
        )
    )
    return {
        slug
        for slug in held | set(wanted)
        if store.grant_from_provider(
            session, courses[slug], username, wanted.get(slug), name, email
        )
    }


def make_post_auth_hook(
    sessions: sessionmaker[Session],
    create_unix_accounts: bool,
    leave_slurm: Callable[[str, list[str]], Awaitable[None]] | None = None,
):
    """``Authenticator.post_auth_hook`` for the OIDC authenticator (see extensions/sso/oidc.py).

    ``leave_slurm(account, usernames)`` takes people out of a course's Slurm account when the
    provider's groups no longer enrol them, so they cannot go on spending its budget from a
    terminal (the composition root hands in ``SlurmAccounts.remove_members``)."""

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
                    state.get("course_groups"),
                )
                return {slug: store.people(session, store.find(session, slug)) for slug in changed}

        for slug, people in (await asyncio.to_thread(update)).items():
            apply_course(handler, slug, people)
            handler.db.commit()
            log.info("%s: course %s synced from the identity provider's groups", username, slug)
            if username not in people and leave_slurm is not None:
                try:
                    await leave_slurm(store.account_name(slug), [username])
                except Exception as e:  # Slurm may be down; the sign-in itself goes on
                    log.error("%s left course %s but is still in Slurm: %s", username, slug, e)
        return auth_model

    return sync_courses
