"""A hostile class list sent to the real billing service, through the real hub and proxy.

At 8efa8d7 the roster's e-mail pattern backtracked quadratically and ran before the
permission check: any student's 1 MiB upload held the billing service's event loop for about
ten minutes.  Now the student is refused before the file is parsed, and the instructor's
copy is parsed in linear time and refused line by line.  The requests' 60 s timeout is the
watchdog that tells those two apart; nothing here measures time.
"""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from tests.harness import TEST_ADMIN, Portal, ensure_users, portal_site

pytestmark = pytest.mark.integration

PORT = 28600
COURSE = "sec101"
INSTRUCTOR, STUDENT = "chtest2", "chtest1"
WATCHDOG_S = 60
TODAY = dt.datetime.now(dt.UTC).date()
# 'a@', 130,997 dots and '@': the longest CSV field; eight rows fill the 1 MiB limit.
HOSTILE = "username,role,email\n" + "".join(f"s{i},student,a@{'.' * 130_997}@\n" for i in range(8))


@pytest.fixture(scope="module")
def portal(tmp_path_factory, clusters):
    ensure_users(TEST_ADMIN, INSTRUCTOR, STUDENT)
    workdir = tmp_path_factory.mktemp("hostile-enrol")
    portal = Portal(workdir, PORT, site=portal_site(PORT, workdir)).start()
    yield portal
    portal.stop()


@pytest.fixture(scope="module")
def tokens(portal):
    tokens = {name: portal.user_token(name) for name in (TEST_ADMIN, INSTRUCTOR, STUDENT)}
    admin = tokens[TEST_ADMIN]
    portal.wait_billing(admin)
    course = {
        "slug": COURSE,
        "title": "Security 101",
        "term_start": TODAY.isoformat(),
        "term_end": (TODAY + dt.timedelta(days=30)).isoformat(),
        "student_cap": "5",
        "default_profile": "cpu",
        "profiles": ["cpu"],
        "images": ["base"],
        "budget": "10",
    }
    assert portal.billing("POST", "api/courses", admin, json=course).status_code == 201
    people = [
        {"username": INSTRUCTOR, "role": "instructor"},
        {"username": STUDENT, "role": "student"},
    ]
    reply = portal.billing(
        "POST", f"api/courses/{COURSE}/enrolments", admin, json={"people": people}
    )
    assert reply.status_code == 200, reply.text
    return tokens


def post_roster(portal: Portal, token: str) -> requests.Response:
    return requests.post(
        f"{portal.billing_url}/api/courses/{COURSE}/enrolments",
        data=HOSTILE.encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "text/csv"},
        timeout=WATCHDOG_S,
    )


def test_a_students_hostile_roster_is_refused_before_it_is_parsed(portal, tokens):
    reply = post_roster(portal, tokens[STUDENT])
    assert reply.status_code == 403, reply.text
    assert "can enrol people" in reply.json()["message"]


def test_an_instructors_hostile_roster_is_parsed_in_linear_time_and_refused(portal, tokens):
    reply = post_roster(portal, tokens[INSTRUCTOR])
    assert reply.status_code == 400, reply.text
    problems = reply.json()["problems"]
    assert [(p["line"], p["field"]) for p in problems] == [(n, "email") for n in range(2, 10)]
    assert problems[0]["message"].endswith("is not an e-mail address")
    # The service still answers, and enrolled nobody.
    roster = portal.billing("GET", f"api/courses/{COURSE}/roster", tokens[INSTRUCTOR])
    assert sorted(r["username"] for r in roster.json()["roster"]) == sorted([INSTRUCTOR, STUDENT])
