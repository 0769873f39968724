"""A course's records and reports on both ledger databases: SQLite and the local PostgreSQL.

No hub and no Slurm: charges are booked straight into the ledger, as the meter books them,
so the sums the dashboard, the usage CSV and the burn-down read can be checked exactly.
"""

from __future__ import annotations

import datetime as dt

import pytest

from billing_hooks.db import make_engine, session_factory
from billing_hooks.ledger import add_charge, audited_balance_mc
from centre.site import load_site
from extensions.courses import store
from extensions.courses.roster import Enrolment
from extensions.courses.settings import CourseError, parse_course
from extensions.courses.views import burn_down
from tests.harness import REPO
from tests.ledger_db import drop_postgres, postgres_url, sqlite_url

pytestmark = pytest.mark.integration

SITE = load_site(REPO / "deploy" / "site.example.yaml")
DAY = 86_400
MONDAY = int(dt.datetime(2027, 1, 18, tzinfo=dt.UTC).timestamp())
BUDGET_MC = 200_000


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path):
    url = sqlite_url(tmp_path) if request.param == "sqlite" else postgres_url()
    engine = make_engine(url)
    yield session_factory(engine), url
    engine.dispose()
    if request.param == "postgresql":
        drop_postgres(url)


def new_course(session, slug: str):
    spec = parse_course(
        {
            "slug": slug,
            "title": f"Course {slug}",
            "term_start": "2027-01-11",
            "term_end": "2027-05-28",
            "student_cap": "40",
            "default_profile": "cpu",
            "profiles": ["cpu"],
            "images": ["base"],
        },
        SITE,
    )
    return store.create_course(session, spec, BUDGET_MC, actor="admin")


def charge(session, course, username, job, start, seconds, amount_mc):
    booked = add_charge(
        session,
        course.account_id,
        username,
        "alpha",
        "cpu",
        job,
        (start, start + seconds),
        2,
        amount_mc,
        idempotency_key=f"{course.slug}/{job}/{start}",
    )
    assert booked


def test_a_class_is_enrolled_charged_and_reported_the_same_on_both_databases(sessions):
    sessions, url = sessions
    with sessions.begin() as session:
        phys = new_course(session, "phys101")
        other = new_course(session, "chem200")
        report = store.enrol(
            session,
            phys,
            [
                Enrolment(1, "ann", "student", "Ann A"),
                Enrolment(2, "bob", "student"),
                Enrolment(3, "tia", "ta"),
                Enrolment(4, "ivan", "instructor"),
            ],
            "csv",
        )
        assert report.added == ("ann", "bob", "tia", "ivan") and report.unchanged == 0
        store.enrol(session, other, [Enrolment(1, "ann", "student")], "api")
        store.set_cap(session, phys, "bob", 5_000)
        # Ann twice on Monday (two jobs) and once on Wednesday; Bob once on Tuesday; Ann's
        # job in the other course must not count here.
        charge(session, phys, "ann", "101", MONDAY + 3_600, 1_800, 1_250)
        charge(session, phys, "ann", "102", MONDAY + 7_200, 900, 750)
        charge(session, phys, "bob", "103", MONDAY + DAY + 60, 3_000, 4_000)
        charge(session, phys, "ann", "104", MONDAY + 2 * DAY + 10, 600, 500)
        charge(session, other, "ann", "105", MONDAY + 600, 600, 9_999)

    with sessions() as session:
        phys = store.find(session, "phys101")
        assert store.people(session, phys) == {
            "ann": "student",
            "bob": "student",
            "tia": "ta",
            "ivan": "instructor",
        }
        assert [(c.slug, role) for c, role in store.courses_of(session, "ann")] == [
            ("chem200", "student"),
            ("phys101", "student"),
        ]
        assert store.role_in(session, phys, "tia") == "ta"
        assert store.role_in(session, phys, "zed") is None

        spent = store.spent_by_person(session, phys)
        assert set(spent) == {"ann", "bob"}
        assert (spent["ann"].mc, spent["ann"].jobs) == (2_500, 3)
        assert spent["ann"].core_seconds == 2 * (1_800 + 900 + 600)
        assert spent["ann"].last_charge == MONDAY + 2 * DAY + 610
        assert (spent["bob"].mc, spent["bob"].jobs) == (4_000, 1)
        assert store.spent_by(session, phys, "ann") == 2_500
        assert store.spent_by(session, phys, "nobody") == 0

        enrolments = {e.username: e for e in phys.enrolments}
        assert store.cap_of(phys, enrolments["ann"]) == 40_000  # the course's cap
        assert store.cap_of(phys, enrolments["bob"]) == 5_000  # his own

        assert store.budget_mc(session, phys) == BUDGET_MC
        monday = dt.date(2027, 1, 18)
        daily = store.daily_spend(session, phys)
        assert daily == [
            (monday, 2_000),
            (monday + dt.timedelta(days=1), 4_000),
            (monday + dt.timedelta(days=2), 500),
        ]
        left = burn_down(BUDGET_MC, daily, dt.date(2027, 1, 11), monday + dt.timedelta(days=2))
        assert left[-1] == (monday + dt.timedelta(days=2), BUDGET_MC - 6_500)
        assert audited_balance_mc(session, phys.account_id) == BUDGET_MC - 6_500

    assert store.course_students(url) == {"chem200": ["ann"], "phys101": ["ann", "bob"]}


def test_unenrolling_keeps_what_was_spent_and_a_slug_is_taken_once(sessions):
    sessions, _url = sessions
    with sessions.begin() as session:
        phys = new_course(session, "phys101")
        store.enrol(session, phys, [Enrolment(1, "ann", "student")], "sso")
        charge(session, phys, "ann", "201", MONDAY, 600, 321)
    with sessions.begin() as session:
        phys = store.find(session, "phys101")
        assert store.unenrol(session, phys, "ann") is True
        assert store.unenrol(session, phys, "ann") is False
    with sessions() as session:
        phys = store.find(session, "phys101")
        assert store.people(session, phys) == {}
        assert store.spent_by(session, phys, "ann") == 321
        with pytest.raises(CourseError) as refused:
            new_course(session, "phys101")
        assert refused.value.field == "slug"
        with pytest.raises(CourseError) as refused:
            store.set_cap(session, phys, "ann", 100)
        assert refused.value.field == "username"
