"""The JupyterHub groups and roles of a course: what its instructors and TAs may do in the hub.

Students are the members of ``course-<slug>``.  Instructors are the members of
``course-<slug>-instructors`` and TAs of ``course-<slug>-tas``; those groups hold the roles
below, whose scopes reach only the students' group.  The hub checks these scopes itself when
an instructor opens a student's server (``access:servers``) or calls its REST API, so the
course pages are not the only guard.
"""

from __future__ import annotations

from billing_hooks.models import COURSE_ROLES


def student_group(slug: str) -> str:
    return f"course-{slug}"


def staff_group(slug: str, role: str) -> str:
    return f"course-{slug}-{role}s"


def groups_by_role(slug: str) -> dict[str, str]:
    return {
        "student": student_group(slug),
        "ta": staff_group(slug, "ta"),
        "instructor": staff_group(slug, "instructor"),
    }


def hub_roles(slug: str) -> list[dict]:
    """Role specs as ``JupyterHub.load_roles`` takes them, bound to the staff groups."""
    students = f"group={student_group(slug)}"
    look = [f"list:users!{students}", f"read:users!{students}", f"read:servers!{students}"]
    return [
        {
            "name": f"course-{slug}-ta",
            "description": f"TAs of course {slug}: read the students and open their servers",
            "scopes": [*look, f"access:servers!{students}"],
            "groups": [staff_group(slug, "ta")],
        },
        {
            "name": f"course-{slug}-instructor",
            "description": f"Instructors of course {slug}: read, open, start and stop students' servers",
            "scopes": [*look, f"access:servers!{students}", f"servers!{students}"],
            "groups": [staff_group(slug, "instructor")],
        },
    ]


def wanted_groups(slug: str, people: dict[str, str]) -> dict[str, set[str]]:
    """Each course group's members, from ``people`` (username → course role)."""
    assert set(people.values()) <= set(COURSE_ROLES), people
    by_role = groups_by_role(slug)
    members: dict[str, set[str]] = {group: set() for group in by_role.values()}
    for username, role in people.items():
        members[by_role[role]].add(username)
    return members
