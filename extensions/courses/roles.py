"""The JupyterHub groups and roles of a course: what its instructors and TAs may do in the hub.

Students are the members of ``course-<slug>``.  Instructors are the members of
``course-<slug>-instructors`` and TAs of ``course-<slug>-tas``; those groups hold the roles
below.  Their server scopes name each enrolled student's ``course-<slug>`` server one by one
(``!server=<student>/course-<slug>``), never the students' group: a group filter would open
every server of the student, their personal ones included, and let an instructor start one
billed to the student's own account.  The hub checks these scopes itself when an instructor
opens a student's server (``access:servers``) or calls its REST API, so the course pages are
not the only guard.  The role is rewritten whenever the course's people change.
"""

from __future__ import annotations

from collections.abc import Iterable

from centre.names import COURSE_ROLES


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


def course_server(slug: str) -> str:
    return f"course-{slug}"


def hub_roles(slug: str, students: Iterable[str]) -> list[dict]:
    """Role specs as ``JupyterHub.load_roles`` takes them, bound to the staff groups, reaching
    the ``course-<slug>`` server of each of ``students`` and nothing else of theirs."""
    group = f"group={student_group(slug)}"
    servers = [f"server={name}/{course_server(slug)}" for name in sorted(set(students))]
    look = [f"list:users!{group}", f"read:users!{group}"]
    read = [f"read:servers!{s}" for s in servers]
    access = [f"access:servers!{s}" for s in servers]
    return [
        {
            "name": f"course-{slug}-ta",
            "description": f"TAs of course {slug}: see the students and open their course servers",
            "scopes": [*look, *read, *access],
            "groups": [staff_group(slug, "ta")],
        },
        {
            "name": f"course-{slug}-instructor",
            "description": f"Instructors of course {slug}: see the students, open, start and "
            "stop their course servers",
            "scopes": [*look, *read, *access, *(f"servers!{s}" for s in servers)],
            "groups": [staff_group(slug, "instructor")],
        },
    ]


def students_of(people: dict[str, str]) -> list[str]:
    return sorted(name for name, role in people.items() if role == "student")


def wanted_groups(slug: str, people: dict[str, str]) -> dict[str, set[str]]:
    """Each course group's members, from ``people`` (username → course role)."""
    assert set(people.values()) <= set(COURSE_ROLES), people
    by_role = groups_by_role(slug)
    members: dict[str, set[str]] = {group: set() for group in by_role.values()}
    for username, role in people.items():
        members[by_role[role]].add(username)
    return members
