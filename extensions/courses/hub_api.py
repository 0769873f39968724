"""A hub-side API for the course service: a course's roles and group members, in one call.

``PUT /hub/api/corehour/courses/<slug>`` with ``{"people": {"alice": "student", ...}}``
creates the course's roles if they are new (JupyterHub has no REST API for roles), creates
hub users that do not exist yet, and sets the three course groups to exactly those people.
Only a caller holding both ``admin:groups`` and ``admin:users`` may use it: the billing
service, which runs the course pages, and admins.  Loaded with
``c.JupyterHub.extra_handlers`` (see spawners/configurer.py).
"""

from __future__ import annotations

import json

from jupyterhub import orm
from jupyterhub import roles as hub_roles_api
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from billing_hooks.models import COURSE_ROLES
from extensions.courses.roles import hub_roles, wanted_groups

SLUG = r"[a-z][a-z0-9-]{1,30}"


class CourseGroupsHandler(APIHandler):
    @needs_scope("admin:groups")
    async def put(self, slug: str) -> None:
        if "admin:users" not in self.expanded_scopes:
            raise web.HTTPError(403, "syncing a course needs admin:users as well as admin:groups")
        people = self._people()
        changed = apply_course(self, slug, people)
        self.db.commit()
        self.log.info("course %s: %d people, %d group changes", slug, len(people), changed)
        self.write(json.dumps({"course": slug, "people": len(people), "changes": changed}))

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
    for spec in hub_roles(slug):
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


def _group(db, name: str) -> orm.Group:
    group = orm.Group.find(db, name=name)
    if group is None:
        group = orm.Group(name=name)
        db.add(group)
        db.flush()
    return group


def extra_handlers() -> list[tuple[str, type]]:
    return [(rf"/api/corehour/courses/({SLUG})", CourseGroupsHandler)]
