"""Who may do what in a course: pure rules over a person's standing in it.

An admin may do everything, in every course.  An instructor runs their own course: reads
the roster and usage, enrols, starts, stops and opens students' servers, and changes caps.
A TA reads the roster and usage and opens students' servers, nothing more.  A student sees
their own course's page (their usage and the course's terms), never the roster.  Someone not
in the course may do nothing in it.
"""

from __future__ import annotations

from enum import StrEnum


class Standing(StrEnum):
    ADMIN = "admin"
    INSTRUCTOR = "instructor"
    TA = "ta"
    STUDENT = "student"


class Action(StrEnum):
    SEE_COURSE = "see the course"
    READ_ROSTER = "read the roster and its usage"
    OPEN_SERVERS = "open students' servers"
    START_STOP = "start and stop students' servers"
    ENROL = "enrol people"
    SET_CAPS = "change caps"
    EDIT_COURSE = "change the course's settings"
    CREATE_COURSE = "create courses"


ALLOWED: dict[Standing, frozenset[Action]] = {
    Standing.ADMIN: frozenset(Action),
    Standing.INSTRUCTOR: frozenset(Action) - {Action.CREATE_COURSE, Action.EDIT_COURSE},
    Standing.TA: frozenset({Action.SEE_COURSE, Action.READ_ROSTER, Action.OPEN_SERVERS}),
    Standing.STUDENT: frozenset({Action.SEE_COURSE}),
}


class CourseForbidden(Exception):
    """The person may see the course but not do this; the message says who may."""


class CourseNotFound(Exception):
    pass


def standing(admin: bool, role: str | None) -> Standing | None:
    if admin:
        return Standing.ADMIN
    return Standing(role) if role in {s.value for s in Standing} else None


def require(slug: str, who: Standing | None, action: Action) -> Standing:
    """``who``'s standing when it allows ``action``; else why not."""
    if who is None:
        raise CourseForbidden(f"you are not in course '{slug[:40]}'")
    if action not in ALLOWED[who]:
        allowed = sorted(s.value for s, actions in ALLOWED.items() if action in actions)
        raise CourseForbidden(
            f"only {', '.join(a + 's' for a in allowed)} of course '{slug}' can {action.value}"
        )
    return who
