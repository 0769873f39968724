"""A hub-side API for the course service: a course's roles and group members, in one call.

``PUT /hub/api/corehour/courses/<slug>`` with ``{"people": {"alice": "student", ...}}``
creates the course's roles if they are new (JupyterHub has no REST API for roles), creates
hub users that do not exist yet, and sets the three course groups to exactly those people.
Only a caller holding the custom scope :data:`SYNC_SCOPE` may use it: the billing service,
which runs the course pages.  It is a scope of its own so that the service needs neither
``admin:users`` nor ``admin:groups``, which would let it make anyone an admin or change any
group.  Loaded with ``c.JupyterHub.extra_handlers`` (see roots/hub.py).

``GET`` on the same path gives each member's course server and last activity: one call per
refresh of a course page, however many people the hub has.
"""

from __future__ import annotations

import json

from jupyterhub import orm
from jupyterhub import roles as hub_roles_api
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.utils import isoformat
from tornado import web

from centre.names import COURSE_ROLES
from extensions.courses.roles import (
    course_server,
    groups_by_role,
    hub_roles,
    students_of,
    wanted_groups,
)

SLUG = r"[a-z][a-z0-9-]{1,30}"


SYNC_SCOPE = "custom:corehour-courses:sync"
CUSTOM_SCOPES = {
    SYNC_SCOPE: {
        "description": "Set the course groups and course roles of corehour's courses, "
        "creating the hub users of enrolled people, and read their course servers.",
    }
}


class CourseGroupsHandler(APIHandler):
    # Not @needs_scope: it checks scope names when this module is imported, which is while
    # the config loads, before the hub has registered its custom scopes.
    async def put(self, slug: str) -> None:
        if SYNC_SCOPE not in self.expanded_scopes:
            raise web.HTTPError(403, f"syncing a course needs the scope {SYNC_SCOPE}")
        people = self._people()
        changed = apply_course(self, slug, people)
        self.db.commit()
        self.log.info("course %s: %d people, %d group changes", slug, len(people), changed)
        self.write(json.dumps({"course": slug, "people": len(people), "changes": changed}))

    def get(self, slug: str) -> None:
        if SYNC_SCOPE not in self.expanded_scopes:
            raise web.HTTPError(403, f"reading a course's servers needs the scope {SYNC_SCOPE}")
        self.write(json.dumps({"course": slug, "people": course_servers(self, slug)}))

    def _people(self) -> dict[str, str]:
        body = self.get_json_body() or {}
        people = body.get("people") if isinstance(body, dict) else None
        if not isinstance(people, dict):
            raise web.HTTPError(400, "people: send an object of username → course role")
        for name, role in people.items():
            if role not in COURSE_ROLES:
                raise web.HTTPError(
                    400, f"people.{name[:40]}: role must be one of {list(COURSE_ROLES)}"
                )
            if not isinstance(name, str) or not self.authenticator.validate_username(name):
                raise web.HTTPError(400, f"people: {name[:40]!r} is not a valid username")
        return people


def apply_course(handler, slug: str, people: dict[str, str]) -> int:
    """Make the course's roles and set its groups to ``people``, with the hub's database
    session of ``handler`` (any hub request handler); returns how many memberships changed.
    The caller commits."""
    db = handler.db
    for spec in hub_roles(slug, students_of(people)):
        role = hub_roles_api.create_role(db, {**spec, "groups": []}, commit=False)
        for group_name in spec["groups"]:
            hub_roles_api.grant_role(db, _group(db, group_name), role, commit=False)
    for name in people:
        handler.user_from_username(name)
    changed = 0
    for group_name, members in wanted_groups(slug, people).items():
        group = _group(db, group_name)
        current = {u.name for u in group.users}
        if current != members:
            group.users = [handler.find_user(name).orm_user for name in sorted(members)]
            changed += len(current ^ members)
    return changed


def course_servers(handler, slug: str) -> dict[str, dict]:
    """Each member of the course's groups: their last activity and their course server
    (None unless it runs or is starting or stopping), read from the hub's own memory."""
    name = course_server(slug)
    people: dict[str, dict] = {}
    for group_name in groups_by_role(slug).values():
        group = orm.Group.find(handler.db, name=group_name)
        for orm_user in group.users if group else ():
            server = None
            if name in orm_user.orm_spawners:
                spawner = handler.users[orm_user].spawners[name]
                if spawner.active:
                    server = {
                        "pending": spawner.pending,
                        "ready": spawner.ready,
                        "url": spawner.user.url + name + "/",
                        "started": isoformat(spawner.orm_spawner.started),
                        "last_activity": isoformat(spawner.orm_spawner.last_activity),
                    }
            people[orm_user.name] = {
                "last_activity": isoformat(orm_user.last_activity),
                "server": server,
            }
    return people


def _group(db, name: str) -> orm.Group:
    group = orm.Group.find(db, name=name)
    if group is None:
        group = orm.Group(name=name)
        db.add(group)
        db.flush()
    return group


def extra_handlers() -> list[tuple[str, type]]:
    return [(rf"/api/corehour/courses/({SLUG})", CourseGroupsHandler)]
