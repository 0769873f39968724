"""Courses' pure rules: who may do what, the hub roles, spawn rules, the roster's views."""

from __future__ import annotations

import datetime as dt

import pytest

from billing_hooks.models import Course, Enrolment
from extensions.courses import roster
from extensions.courses.access import (
    Action,
    CourseForbidden,
    Standing,
    require,
    standing,
)
from extensions.courses.caps import OverCap, over_cap
from extensions.courses.hub import ServerView, _view
from extensions.courses.roles import hub_roles, wanted_groups
from extensions.courses.spawn_rules import CourseRefused, CourseSpawn, check
from extensions.courses.sso_sync import memberships
from extensions.courses.store import Spent
from extensions.courses.views import burn_down, roster_rows, usage_csv

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 11, 26)


@pytest.mark.parametrize(
    ("who", "allowed"),
    [
        (Standing.ADMIN, set(Action)),
        (Standing.INSTRUCTOR, set(Action) - {Action.CREATE_COURSE, Action.EDIT_COURSE}),
        (Standing.TA, {Action.SEE_COURSE, Action.READ_ROSTER, Action.OPEN_SERVERS}),
        (Standing.STUDENT, {Action.SEE_COURSE}),
    ],
)
def test_each_standing_may_do_exactly_its_actions(who, allowed):
    for action in Action:
        if action in allowed:
            assert require("phys101", who, action) is who
        else:
            with pytest.raises(CourseForbidden, match="only admins"):
                require("phys101", who, action)


def test_people_outside_the_course_may_do_nothing_and_admins_everything():
    assert standing(False, None) is None
    assert standing(False, "boss") is None
    assert standing(True, None) is Standing.ADMIN
    assert standing(True, "student") is Standing.ADMIN
    assert standing(False, "ta") is Standing.TA
    with pytest.raises(CourseForbidden, match="not in course 'phys101'"):
        require("phys101", None, Action.SEE_COURSE)


def test_a_ta_refused_a_cap_change_is_told_who_may():
    with pytest.raises(CourseForbidden) as refused:
        require("phys101", Standing.TA, Action.SET_CAPS)
    assert str(refused.value) == "only admins, instructors of course 'phys101' can change caps"


def test_course_roles_reach_only_the_students_course_servers():
    ta, instructor = hub_roles("phys101", ["bo", "ann", "bo"])
    assert ta["groups"] == ["course-phys101-tas"]
    assert instructor["groups"] == ["course-phys101-instructors"]
    for role in (ta, instructor):
        server_scopes = [s for s in role["scopes"] if "servers" in s.split("!")[0]]
        # Never a group filter on a server scope: it would open the students' own servers.
        assert sorted({s.split("!")[1] for s in server_scopes}) == [
            "server=ann/course-phys101",
            "server=bo/course-phys101",
        ]
        user_scopes = set(role["scopes"]) - set(server_scopes)
        assert user_scopes == {"list:users!group=course-phys101", "read:users!group=course-phys101"}
    verbs = {scope.split("!")[0] for scope in instructor["scopes"]}
    assert verbs == {"list:users", "read:users", "read:servers", "access:servers", "servers"}
    assert "servers" not in {scope.split("!")[0] for scope in ta["scopes"]}


def test_a_course_without_students_reaches_no_server():
    for role in hub_roles("phys101", []):
        assert not [s for s in role["scopes"] if "servers" in s]


def test_groups_are_built_from_roles():
    groups = wanted_groups(
        "x1", {"ann": "student", "bo": "ta", "cy": "instructor", "di": "student"}
    )
    assert groups == {
        "course-x1": {"ann", "di"},
        "course-x1-tas": {"bo"},
        "course-x1-instructors": {"cy"},
    }
    assert wanted_groups("x1", {}) == {
        "course-x1": set(),
        "course-x1-tas": set(),
        "course-x1-instructors": set(),
    }


def spawn(**changes) -> CourseSpawn:
    values = dict(
        slug="phys101",
        term_start=dt.date(2026, 10, 1),
        term_end=dt.date(2027, 2, 1),
        profiles=("cpu",),
        images=("base",),
        role="student",
        spent_mc=1000,
        cap_mc=5000,
    )
    values.update(changes)
    return CourseSpawn(**values)


def test_a_student_within_the_term_and_cap_may_start():
    check(spawn(), "cpu", "base", DAY)
    check(spawn(role="instructor", cap_mc=None, spent_mc=10**9), "cpu", "base", DAY)


@pytest.mark.parametrize(
    ("changes", "profile", "image", "field", "words"),
    [
        ({"role": None}, "cpu", "base", "account", "not in course phys101"),
        ({"term_start": DAY + dt.timedelta(days=1)}, "cpu", "base", "account", "opens on"),
        ({"term_end": DAY - dt.timedelta(days=1)}, "cpu", "base", "account", "ended on"),
        ({}, "gpu", "base", "profile", "offers the profiles cpu"),
        ({}, "cpu", "gpu", "image", "offers the images base"),
        ({"spent_mc": 5000}, "cpu", "base", "account", "used your cap of 5.000"),
        ({"cap_mc": 0, "spent_mc": 0}, "cpu", "base", "account", "cap of 0.000"),
    ],
)
def test_course_spawns_are_refused_with_the_reason(changes, profile, image, field, words):
    with pytest.raises(CourseRefused) as refused:
        check(spawn(**changes), profile, image, DAY)
    assert refused.value.field == field
    assert words in str(refused.value)


def test_the_last_day_of_term_is_still_open():
    check(spawn(term_end=DAY), "cpu", "base", DAY)
    check(spawn(term_start=DAY), "cpu", "base", DAY)


def test_burn_down_counts_down_each_day_and_fills_quiet_days():
    daily = [(dt.date(2026, 11, 2), 1500), (dt.date(2026, 11, 4), 500)]
    points = burn_down(10_000, daily, dt.date(2026, 11, 1), dt.date(2026, 11, 5))
    assert points == [
        (dt.date(2026, 11, 1), 10_000),
        (dt.date(2026, 11, 2), 8_500),
        (dt.date(2026, 11, 3), 8_500),
        (dt.date(2026, 11, 4), 8_000),
        (dt.date(2026, 11, 5), 8_000),
    ]
    # A term that starts in the future has no points yet.
    assert burn_down(10_000, [], dt.date(2027, 1, 1), dt.date(2026, 12, 1)) == []


def course_row() -> Course:
    return Course(slug="phys101", student_cap_mc=5000)


def test_roster_rows_put_staff_first_and_give_everyone_their_cap():
    course = course_row()
    enrolments = [
        Enrolment(username="zed", role="student", display_name="Zed", email="", cap_mc=None),
        Enrolment(username="amy", role="student", display_name="=HYPERLINK()", email="", cap_mc=0),
        Enrolment(username="ian", role="instructor", display_name="Ian", email="", cap_mc=None),
    ]
    spent = {"zed": Spent(mc=4500, jobs=3), "ian": Spent(mc=100, jobs=1)}
    servers = {"zed": ServerView("running", url="/user/zed/course-phys101/")}
    rows = roster_rows(course, enrolments, spent, servers)
    assert [r.username for r in rows] == ["ian", "amy", "zed"]
    ian, amy, zed = rows
    # Staff spend the same budget, so they have the course's cap too.
    assert (ian.cap_mc, ian.percent_of_cap) == (5000, 2)
    assert (zed.spent_mc, zed.cap_mc, zed.percent_of_cap, zed.at_cap) == (4500, 5000, 90, False)
    assert amy.cap_mc == 0 and amy.at_cap and amy.server.state == "stopped"
    assert zed.as_json()["server"] == "running"
    text = usage_csv(rows).splitlines()
    assert text[0] == "username,role,name,email,spent,cap,percent_of_cap,jobs"
    assert text[1] == "ian,instructor,Ian,,0.100,5.000,2,1"
    # A name that a spreadsheet would run as a formula is written as text.
    assert text[2] == "amy,student,'=HYPERLINK(),,0.000,0.000,,0"
    assert text[3] == "zed,student,Zed,,4.500,5.000,90,3"


@pytest.mark.parametrize(
    ("server", "state"),
    [
        (None, "stopped"),
        ({"ready": True, "pending": None}, "running"),
        ({"ready": False, "pending": "spawn"}, "starting"),
        ({"ready": True, "pending": "stop"}, "stopping"),
    ],
)
def test_server_states_from_the_hub_model(server, state):
    assert _view(server, "2026-11-26T10:00:00Z").state == state


def test_people_from_json_are_checked_like_csv_rows_and_all_problems_listed():
    rows = roster.parse_people([{"username": "ann", "role": "student", "email": "a@b.example"}])
    assert [(r.username, r.role, r.email) for r in rows] == [("ann", "student", "a@b.example")]
    with pytest.raises(roster.RosterError) as refused:
        roster.parse_people(
            [
                {"username": "Ann B", "role": "boss"},
                {"username": "cy", "role": 3},
                "dee",
                {"username": "ed", "role": "student", "shell": "/bin/sh"},
                {"role": "student"},
                {"username": "fay", "role": "ta"},
                {"username": "fay", "role": "student"},
            ]
        )
    found = {(p.line, p.field) for p in refused.value.problems}
    assert found == {
        (1, "username"),
        (1, "role"),
        (2, "role"),
        (3, "person"),
        (4, "shell"),
        (5, "username"),
        (7, "username"),
    }
    assert str(refused.value).startswith("Nothing was enrolled: item 1, username:")
    for empty in ([], {}, None, "ann,student"):
        with pytest.raises(roster.RosterError):
            roster.parse_people(empty)


def test_only_students_over_their_cap_with_something_running_are_stopped():
    students = [("c1", "ann", 100), ("c1", "bo", 100), ("c1", "cy", 0), ("c2", "ann", 500)]
    spent = {("c1", "ann"): 100, ("c1", "bo"): 99, ("c2", "ann"): 100}
    running = {
        ("c1", "ann"): [("beta", "9"), ("alpha", "3")],
        ("c1", "bo"): [("alpha", "4")],
        ("c2", "ann"): [("alpha", "5")],
    }
    found = over_cap(students, spent, running)
    assert found == [OverCap("c1", "ann", 100, 100, (("alpha", "3"), ("beta", "9")))]
    # cy is at a cap of 0 but runs nothing: nothing to stop.
    assert over_cap([("c1", "cy", 0)], {}, {}) == []


def test_the_groups_claim_gives_each_course_its_highest_role():
    slugs = {"phys101", "chem201", "math"}
    groups = [
        "course-phys101",
        "course-phys101-tas",
        "course-chem201",
        "course-math-instructors",
        "course-bio999",  # no such course
        "staff",
        42,
    ]
    assert memberships(groups, slugs) == {
        "phys101": "ta",
        "chem201": "student",
        "math": "instructor",
    }
    assert memberships(["course-math-tas", "course-math"], {"math"}) == {"math": "ta"}
    assert memberships(None, slugs) == {} and memberships("course-math", slugs) == {}
