"""Courses on a real portal: create, enrol from CSV, warm up a class of 30, roles and limits.

Everything here goes through the real hub, the billing service that runs the course pages,
real Slurm (alpha and beta) and real Unix accounts; nothing is mocked.
"""

from __future__ import annotations

import datetime as dt
import pwd
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.billing_checks import sbatch_as
from tests.harness import (
    SLURM_CONF,
    TEST_ADMIN,
    Portal,
    alive_jobs,
    ensure_users,
    portal_site,
    slurm,
)

pytestmark = pytest.mark.integration

PORT = 27600
COURSE, OTHER, ENDED = "phys101", "chem201", "hist100"
INSTRUCTOR, TA, OTHER_INSTRUCTOR = "chinst1", "chta1", "chinst2"
STUDENTS = [f"chs{i:02d}" for i in range(1, 31)]
# Enrolled as a second TA (so no server): an account name no earlier run made.
NEWCOMER = f"chnew{secrets.token_hex(3)}"
# Made beforehand with passwords, to log in; the course makes the other 28 itself.
WITH_PASSWORDS = (INSTRUCTOR, TA, OTHER_INSTRUCTOR, "chs01", "chs02")
SERVER = f"course-{COURSE}"
TODAY = dt.datetime.now(dt.UTC).date()


def course_settings(slug: str, **changes) -> dict:
    settings = {
        "slug": slug,
        "title": f"Course {slug}",
        "term_start": (TODAY - dt.timedelta(days=7)).isoformat(),
        "term_end": (TODAY + dt.timedelta(days=60)).isoformat(),
        "student_cap": "5",
        "default_profile": "cpu",
        "profiles": ["cpu"],
        "images": ["base"],
        "budget": "500",
    }
    settings.update(changes)
    return settings


@pytest.fixture(scope="module")
def portal(tmp_path_factory, clusters):
    ensure_users(TEST_ADMIN, *WITH_PASSWORDS)
    workdir = tmp_path_factory.mktemp("courses")
    site = portal_site(PORT, workdir)
    # A class of 30 each with one course server, plus room for the tests' own.
    site["hub"]["named_server_limit_per_user"] = 3
    portal = Portal(workdir, PORT, site=site).start()
    yield portal
    portal.stop_all(STUDENTS)
    portal.stop()


@pytest.fixture(scope="module")
def tokens(portal):
    return {name: portal.user_token(name) for name in (TEST_ADMIN, *WITH_PASSWORDS)}


def api(portal, method: str, path: str, token: str, **kwargs) -> requests.Response:
    return portal.billing(method, f"api/{path}", token, **kwargs)


def authorize_form(html: str) -> list[tuple[str, str]]:
    """The hidden fields of the hub's "Authorize access" page, as the browser would send them."""
    return re.findall(r'<input type="hidden" name="(_xsrf|scopes)" value="([^"]*)"', html)


def post_csv(portal, slug: str, token: str, text: str) -> requests.Response:
    return requests.post(
        f"{portal.billing_url}/api/courses/{slug}/enrolments",
        data=text.encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "text/csv"},
        timeout=120,
    )


@pytest.fixture(scope="module")
def courses(portal, tokens):
    admin = tokens[TEST_ADMIN]
    portal.wait_billing(admin)
    for slug in (COURSE, OTHER):
        reply = api(portal, "POST", "courses", admin, json=course_settings(slug))
        assert reply.status_code == 201, reply.text
    ended = course_settings(
        ENDED,
        term_start=(TODAY - dt.timedelta(days=90)).isoformat(),
        term_end=(TODAY - dt.timedelta(days=1)).isoformat(),
    )
    assert api(portal, "POST", "courses", admin, json=ended).status_code == 201
    staff = [
        (COURSE, [{"username": INSTRUCTOR, "role": "instructor"}]),
        (OTHER, [{"username": OTHER_INSTRUCTOR, "role": "instructor"}]),
        (
            ENDED,
            [
                {"username": INSTRUCTOR, "role": "instructor"},
                {"username": "chs02", "role": "student"},
            ],
        ),
    ]
    for slug, people in staff:
        reply = api(portal, "POST", f"courses/{slug}/enrolments", admin, json={"people": people})
        assert reply.status_code == 200, reply.text
    return COURSE


def has_account(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def enrolled(portal, tokens, courses):
    """The instructor enrols the TA and 30 students from a CSV file.

    On a fresh machine the course makes 28 Unix accounts.  Accounts are never deleted here
    (Slurm keeps a user's old uid until slurmctld restarts), so on a second run on the same
    machine only ``NEWCOMER``, a name no run used before, is new."""
    lines = ["username,role,name,email", f"{TA},ta,Tess Assistant,tess@uni.example"]
    lines += [f"{s},student,Student {s[-2:]},{s}@uni.example" for s in STUDENTS]
    lines.append(f"{NEWCOMER},ta,New Comer,")
    missing = {name for name in (*STUDENTS, NEWCOMER) if not has_account(name)}
    reply = post_csv(portal, COURSE, tokens[INSTRUCTOR], "\n".join(lines))
    assert reply.status_code == 200, reply.text
    yield {**reply.json(), "missing_before": missing}
    subprocess.run(["userdel", "-r", NEWCOMER], capture_output=True)


def test_admins_create_courses_and_bad_settings_name_the_field(portal, tokens, courses):
    admin = tokens[TEST_ADMIN]
    bad = [
        (course_settings("bad1", profiles=["nope"]), "profiles"),
        (course_settings("bad2", term_end="2020-01-01"), "term_end"),
        (course_settings("bad3", student_cap="-1"), "student_cap"),
        (course_settings("Bad 4"), "slug"),
        (course_settings("bad5", budget="lots"), "budget"),
        (course_settings("bad6", images=["nope"]), "images"),
        (course_settings("bad7", prologue="rm -rf /"), "prologue"),
        (course_settings(COURSE), "slug"),  # exists already
    ]
    for settings, field in bad:
        reply = api(portal, "POST", "courses", admin, json=settings)
        assert reply.status_code == 400, (settings, reply.text)
        assert reply.json()["field"] == field, reply.text
    listed = {c["slug"] for c in api(portal, "GET", "courses", admin).json()["courses"]}
    assert listed == {COURSE, OTHER, ENDED}
    account = api(portal, "GET", f"accounts/course-{COURSE}", admin).json()
    assert (account["kind"], account["balance"]) == ("course", "500.000")
    # Only admins create courses.
    reply = api(portal, "POST", "courses", tokens[INSTRUCTOR], json=course_settings("mine"))
    assert reply.status_code == 403, reply.text


def test_a_csv_with_bad_rows_enrols_nobody_and_names_every_line(portal, tokens, courses):
    csv_text = "\n".join(
        [
            "username,role,name",
            "chs01,student,Ann",
            "Bad Name,student,Bob",
            "chs03,professor,Cy",
            "chs01,student,Ann again",
            "chs05,student",
        ]
    )
    reply = post_csv(portal, COURSE, tokens[INSTRUCTOR], csv_text)
    assert reply.status_code == 400, reply.text
    problems = {(p["line"], p["field"]) for p in reply.json()["problems"]}
    assert problems == {(3, "username"), (4, "role"), (5, "username"), (6, "row")}
    roster = api(portal, "GET", f"courses/{COURSE}/roster", tokens[INSTRUCTOR]).json()["roster"]
    assert [r["username"] for r in roster] == [INSTRUCTOR]


def test_a_class_of_30_is_enrolled_from_csv_warmed_up_opened_and_stopped(portal, tokens, enrolled):
    assert len(enrolled["added"]) == 32, enrolled
    # Everyone without a Unix account got one, and a Slurm association.
    assert NEWCOMER in enrolled["missing_before"]
    assert set(enrolled["unix_accounts_created"]) == enrolled["missing_before"]
    assert enrolled["unix_accounts_missing"] == []
    assert all(has_account(name) for name in (*STUDENTS, NEWCOMER))
    for cluster in ("alpha", "beta"):
        rows = slurm(
            cluster, "sacctmgr", "-n", "-P", "show", "association",
            f"account=course-{COURSE}", "format=user",
        ).stdout.split()  # fmt: skip
        assert set(STUDENTS) <= set(rows), (cluster, rows)
    admin = tokens[TEST_ADMIN]
    group = portal.request("GET", f"/groups/course-{COURSE}", token=admin).json()
    assert sorted(group["users"]) == STUDENTS
    tas = portal.request("GET", f"/groups/course-{COURSE}-tas", token=admin).json()
    assert sorted(tas["users"]) == sorted([TA, NEWCOMER])

    started = time.monotonic()
    reply = api(portal, "POST", f"courses/{COURSE}/servers", tokens[INSTRUCTOR], json={})
    assert reply.status_code == 200, reply.text
    assert reply.json()["requested"] == 30
    for name in STUDENTS:
        portal.wait_ready(name, SERVER, timeout=240)
    elapsed = time.monotonic() - started
    print(f"\nstart all: 30 course servers ready {elapsed:.1f} s after the click")

    jobs = [j for c in ("alpha", "beta") for j in alive_jobs(c) if j["user_name"] in STUDENTS]
    assert len(jobs) == 30
    assert {j["account"] for j in jobs} == {f"course-{COURSE}"}
    roster = api(portal, "GET", f"courses/{COURSE}/roster", tokens[TA]).json()["roster"]
    states = {r["username"]: r["server"] for r in roster if r["role"] == "student"}
    assert set(states.values()) == {"running"}, states

    # The instructor and the TA open a student's server; another student cannot.
    # (Opening a page goes through the hub's OAuth, which decides; the API then follows.)
    server_url = f"{portal.url}/user/chs01/{SERVER}"
    for helper in (INSTRUCTOR, TA):
        browser = portal.login(helper)
        page = browser.get(f"{server_url}/lab", timeout=60)
        # The hub asks the helper to confirm access to someone else's server.
        assert "/hub/api/oauth2/authorize" in page.url, page.url
        assert page.status_code == 200, (helper, page.status_code, page.text[:300])
        page = browser.post(page.url, data=authorize_form(page.text), timeout=60)
        assert page.status_code == 200, (helper, page.status_code, page.text[:300])
        assert page.url.startswith(f"{server_url}/lab"), page.url
        status = browser.get(f"{server_url}/api/status", timeout=60)
        assert status.status_code == 200 and "started" in status.json(), status.text[:300]
    stranger = portal.login("chs02")
    page = stranger.get(f"{server_url}/lab", timeout=60)
    assert page.status_code == 403, page.text[:300]
    assert stranger.get(f"{server_url}/api/status", timeout=60).status_code == 403
    # The same through the REST API, with the other student's token.
    reply = requests.get(
        f"{server_url}/api/contents",
        headers={"Authorization": f"token {tokens['chs02']}"},
        timeout=60,
    )
    assert reply.status_code == 403, reply.text[:300]

    reply = api(portal, "DELETE", f"courses/{COURSE}/servers", tokens[INSTRUCTOR], json={})
    assert reply.status_code == 200, reply.text
    for name in STUDENTS:
        portal.wait_gone(name, SERVER, timeout=60)
    deadline = time.monotonic() + 30
    while any(j["user_name"] in STUDENTS for c in ("alpha", "beta") for j in alive_jobs(c)):
        assert time.monotonic() < deadline, "course jobs still in Slurm after stop all"
        time.sleep(0.5)


def test_students_see_only_their_own(portal, tokens, enrolled):
    student = tokens["chs02"]
    mine = api(portal, "GET", f"courses/{COURSE}", student)
    assert mine.status_code == 200, mine.text
    assert mine.json()["you"]["username"] == "chs02"
    assert "roster" not in mine.json()
    listed = {
        c["slug"]: c["your_role"] for c in api(portal, "GET", "courses", student).json()["courses"]
    }
    assert listed == {COURSE: "student", ENDED: "student"}
    refused = [
        ("GET", f"courses/{COURSE}/roster", None),
        ("GET", f"courses/{COURSE}/usage.csv", None),
        ("POST", f"courses/{COURSE}/servers", {}),
        ("POST", f"courses/{COURSE}/servers", {"usernames": ["chs01"]}),
        ("PATCH", f"courses/{COURSE}/enrolments/chs02", {"cap": "100"}),
        ("GET", f"courses/{OTHER}", None),
        ("GET", "accounts/u-chs01/charges", None),
    ]
    for method, path, body in refused:
        reply = api(portal, method, path, student, json=body)
        assert reply.status_code == 403, (method, path, reply.status_code, reply.text)
    # The pages say the same to a logged-in browser.
    browser = portal.login("chs02")
    page = browser.get(f"{portal.billing_url}/courses/{COURSE}/dashboard", timeout=30)
    assert page.status_code == 403, page.text[:300]
    page = browser.get(f"{portal.billing_url}/courses/{COURSE}", timeout=30)
    assert page.status_code == 200 and 'id="roster"' not in page.text
    # The hub itself does not even show another student's server to a student's token.
    reply = portal.request("POST", f"/users/chs01/servers/{SERVER}", token=student, json={})
    assert reply.status_code == 404, reply.text


def test_staff_of_one_course_cannot_reach_another_and_tas_only_read(portal, tokens, enrolled):
    reply = api(portal, "GET", f"courses/{OTHER}/roster", tokens[INSTRUCTOR])
    assert reply.status_code == 403, reply.text
    reply = api(portal, "POST", f"courses/{OTHER}/servers", tokens[INSTRUCTOR], json={})
    assert reply.status_code == 403, reply.text
    reply = api(portal, "GET", f"courses/{COURSE}/roster", tokens[OTHER_INSTRUCTOR])
    assert reply.status_code == 403, reply.text
    # Through the hub: course A's instructor may start A's students; anyone else's servers
    # are not even visible to their token (the hub answers 404 rather than confirm a name).
    reply = portal.request("POST", "/users/chtest1/servers/x", token=tokens[INSTRUCTOR], json={})
    assert reply.status_code == 404, reply.text

    ta = tokens[TA]
    assert api(portal, "GET", f"courses/{COURSE}/roster", ta).status_code == 200
    assert api(portal, "GET", f"courses/{COURSE}/usage.csv", ta).status_code == 200
    for method, path, body in [
        ("PATCH", f"courses/{COURSE}/enrolments/chs03", {"cap": "100"}),
        ("POST", f"courses/{COURSE}/servers", {"usernames": ["chs03"]}),
        (
            "POST",
            f"courses/{COURSE}/enrolments",
            {"people": [{"username": "chs40", "role": "student"}]},
        ),
        ("DELETE", f"courses/{COURSE}/enrolments/chs03", None),
    ]:
        reply = api(portal, method, path, ta, json=body)
        assert reply.status_code == 403, (method, path, reply.text)
    # The hub: the TA may start only their own servers, so a student's is "not found" (the
    # hub's answer when a scope exists but its filter does not reach the resource).
    reply = portal.request("POST", f"/users/chs03/servers/{SERVER}", token=ta, json={})
    assert reply.status_code == 404, reply.text
    assert not portal.server_model("chs03", SERVER)


def test_an_instructor_cannot_enrol_root_an_admin_or_someone_elses_account(
    portal, tokens, enrolled
):
    """The attack: enrol root (the hub would make the user, and the course role start and open
    its server as root), the portal's admin, a daemon, or a local account outside the portal."""
    stranger = "chstranger"
    if not has_account(stranger):
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", stranger], check=True)
    names = ["root", TEST_ADMIN, "daemon", stranger]
    people = [{"username": name, "role": "student"} for name in names]
    reply = api(
        portal, "POST", f"courses/{COURSE}/enrolments", tokens[INSTRUCTOR], json={"people": people}
    )
    assert reply.status_code == 400, reply.text
    problems = {p["line"]: p["message"] for p in reply.json()["problems"]}
    assert "reserved name" in problems[1], problems
    assert "portal's admins" in problems[2], problems
    assert "reserved name" in problems[3], problems
    assert "only an admin" in problems[4], problems
    reply = post_csv(portal, COURSE, tokens[INSTRUCTOR], "username,role\nroot,instructor\n")
    assert reply.status_code == 400 and "reserved name" in reply.text, reply.text

    roster = api(portal, "GET", f"courses/{COURSE}/roster", tokens[INSTRUCTOR]).json()["roster"]
    assert not {r["username"] for r in roster} & set(names)
    for name in ("root", stranger):
        groups = subprocess.run(["id", "-nG", name], capture_output=True, text=True).stdout
        assert "corehour" not in groups.split(), (name, groups)
    assert portal.request("GET", "/users/root").status_code == 404


def test_course_staff_reach_no_personal_server_of_a_student(portal, tokens, enrolled):
    """The attack: a TA or instructor uses the course role on a student's own server, or starts
    one that the student's personal account pays for."""
    student = "chs01"
    reply = portal.start_server(student, portal.token)
    assert reply.status_code in (201, 202), reply.text
    portal.wait_ready(student, timeout=120)
    personal = f"{portal.url}/user/{student}"
    for helper in (INSTRUCTOR, TA):
        page = portal.login(helper).get(f"{personal}/lab", timeout=60)
        assert page.status_code == 403, (helper, page.url, page.text[:300])
        reply = requests.get(
            f"{personal}/api/contents",
            headers={"Authorization": f"token {tokens[helper]}"},
            timeout=60,
        )
        assert reply.status_code == 403, (helper, reply.text[:300])
    instructor = tokens[INSTRUCTOR]
    reply = portal.request("DELETE", f"/users/{student}/server", token=instructor)
    assert reply.status_code in (403, 404), reply.text
    reply = portal.request(
        "POST", f"/users/{student}/servers/paid-by-you", token=instructor, json={}
    )
    assert reply.status_code in (403, 404), reply.text
    assert portal.server_model(student, "paid-by-you") is None
    assert portal.server_model(student) is not None  # still the student's, still running
    portal.stop_server(student)
    portal.wait_gone(student, timeout=60)


def expanded_scopes(portal, token: str) -> set[str]:
    reply = requests.get(
        f"{portal.api}/user", headers={"Authorization": f"token {token}"}, timeout=30
    )
    assert reply.status_code == 200, reply.text
    return set(reply.json()["scopes"])


def service_token(pid: int) -> str:
    """A hub service's API token, from its process environment (the tests run as root)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes()
    variables = dict(line.split(b"=", 1) for line in environ.split(b"\0") if b"=" in line)
    return variables[b"JUPYTERHUB_API_TOKEN"].decode()


def test_every_role_holds_only_the_scopes_it_needs(portal, tokens, enrolled):
    """The expanded scopes of the billing service, the idle culler, the course staff and a
    student, as the hub itself reports them: least privilege, and no filter that reaches a
    personal server."""
    billing = expanded_scopes(portal, service_token(portal.billing_service_pid()))
    assert "custom:corehour-courses:sync" in billing
    admin_scopes = {s for s in billing if s.startswith("admin")}
    assert admin_scopes == {"admin:server_state"}, admin_scopes  # no admin:users, admin:groups
    assert {"servers", "read:users", "list:users"} <= billing
    culler_pid = subprocess.run(
        ["pgrep", "-f", f"billing_hooks.idle --site {portal.workdir / 'site.yaml'}"],
        capture_output=True, text=True,
    ).stdout.split()[0]  # fmt: skip
    culler = expanded_scopes(portal, service_token(int(culler_pid)))
    # It reads activity and stops servers; it cannot start one, open one or read anyone's state.
    assert "delete:servers" in culler and "list:users" in culler
    assert not {"servers", "access:servers", "admin:server_state", "admin:users"} & culler, culler

    students = {f"server={name}/{SERVER}" for name in STUDENTS}
    # The instructor also teaches the ended course, whose one student is chs02.
    reach = {TA: students, INSTRUCTOR: students | {f"server=chs02/course-{ENDED}"}}
    for who, may_start in ((TA, False), (INSTRUCTOR, True)):
        scopes = expanded_scopes(portal, tokens[who])
        server_scopes = {
            s
            for s in scopes
            if s.split("!")[0] in {"servers", "access:servers", "read:servers", "delete:servers"}
        }
        others = {s for s in server_scopes if not s.endswith(f"!user={who}")}
        others = {s for s in others if not s.endswith(f"!server={who}/")}
        filters = {s.split("!", 1)[1] for s in others if "!" in s}
        # Only the students' course servers; never a group filter or an unfiltered scope.
        assert filters == reach[who], sorted(filters ^ reach[who])[:5]
        assert ("servers!server=chs01/" + SERVER in scopes) is may_start
        assert not any(s.startswith("admin") for s in scopes), scopes
    student = expanded_scopes(portal, tokens["chs02"])
    assert not [s for s in student if "chs01" in s or "group=" in s], student


def test_a_token_is_held_to_its_scopes(portal, tokens, enrolled):
    made = portal.request(
        "POST",
        f"/users/{INSTRUCTOR}/tokens",
        token=tokens[INSTRUCTOR],
        json={"note": "read only", "scopes": [f"read:users!group=course-{COURSE}"]},
    )
    assert made.status_code == 201, made.text
    narrow = made.json()["token"]
    assert portal.request("GET", "/users/chs05", token=narrow).status_code == 200
    reply = portal.request("POST", f"/users/chs05/servers/{SERVER}", token=narrow, json={})
    assert reply.status_code == 403, reply.text
    # Without access to the billing service, the course API refuses it too.
    reply = api(portal, "GET", f"courses/{COURSE}/roster", narrow)
    assert reply.status_code == 403, reply.text


def test_caps_and_usage_csv(portal, tokens, enrolled):
    instructor = tokens[INSTRUCTOR]
    reply = api(
        portal, "PATCH", f"courses/{COURSE}/enrolments/chs03", instructor, json={"cap": "0"}
    )
    assert reply.status_code == 200, reply.text
    for bad in ({"cap": "-1"}, {"cap": "many"}, {"cap": "1", "extra": 1}, {}):
        reply = api(portal, "PATCH", f"courses/{COURSE}/enrolments/chs03", instructor, json=bad)
        assert reply.status_code == 400, (bad, reply.text)
        assert reply.json()["field"] == "cap"
    # Staff have caps too, and only an admin sets them: no instructor raises their own.
    for name in (TA, INSTRUCTOR):
        reply = api(
            portal, "PATCH", f"courses/{COURSE}/enrolments/{name}", instructor, json={"cap": "99"}
        )
        assert reply.status_code == 403, reply.text
    csv_text = api(portal, "GET", f"courses/{COURSE}/usage.csv", instructor).text
    lines = csv_text.splitlines()
    assert lines[0] == "username,role,name,email,spent,cap,percent_of_cap,jobs"
    row = next(line for line in lines if line.startswith("chs03,"))
    assert row.split(",")[5] == "0.000"
    assert len(lines) == 1 + 33


def test_course_spawns_follow_the_course_rules(portal, tokens, enrolled):
    def start(user: str, **options) -> requests.Response:
        options.setdefault("account", f"course-{COURSE}")
        options.setdefault("profile", "cpu")
        return portal.request(
            "POST", f"/users/{user}/servers/{SERVER}", token=tokens[user], json=options
        )

    # chs03's cap is 0 (the test above): refused before Slurm, saying why.
    tokens["chs03"] = portal.user_token("chs03")
    reply = start("chs03")
    assert reply.status_code == 403, reply.text
    assert re.search(r"cap of 0\.000 credits", reply.json()["message"]), reply.text
    # A profile or image the course does not offer.
    tokens["chs04"] = portal.user_token("chs04")
    reply = start("chs04", profile="bigmem")
    assert reply.status_code == 403 and "profile" in reply.json()["message"], reply.text
    reply = start("chs04", image="gpu")
    assert reply.status_code == 403 and "image" in reply.json()["message"], reply.text
    # A course whose term ended: closed, and its reports still readable.
    reply = portal.request(
        "POST",
        f"/users/chs02/servers/course-{ENDED}",
        token=tokens["chs02"],
        json={"profile": "cpu", "account": f"course-{ENDED}"},
    )
    assert reply.status_code == 403 and "ended" in reply.json()["message"], reply.text
    reply = api(portal, "POST", f"courses/{ENDED}/servers", tokens[INSTRUCTOR], json={})
    assert reply.status_code == 207, reply.text
    assert "ended" in reply.json()["results"][0]["message"]
    assert api(portal, "GET", f"courses/{ENDED}/roster", tokens[INSTRUCTOR]).status_code == 200
    assert not alive_jobs("alpha", "chs02") and not alive_jobs("alpha", "chs03")


def test_a_ta_spends_the_course_budget_only_up_to_a_cap(portal, tokens, enrolled):
    """The attack: TAs had no cap, so a TA could run course servers on the course's money
    without limit."""
    reply = api(
        portal, "PATCH", f"courses/{COURSE}/enrolments/{TA}", tokens[TEST_ADMIN], json={"cap": "0"}
    )
    assert reply.status_code == 200, reply.text
    reply = portal.request(
        "POST", f"/users/{TA}/servers/{SERVER}", token=tokens[TA],
        json={"profile": "cpu", "account": f"course-{COURSE}"},
    )  # fmt: skip
    assert reply.status_code == 403, reply.text
    assert re.search(r"cap of 0\.000 credits", reply.json()["message"]), reply.text
    assert not alive_jobs("alpha", TA) and not alive_jobs("beta", TA)


def test_a_course_without_money_refuses_spawns(portal, tokens, courses):
    admin = tokens[TEST_ADMIN]
    reply = api(portal, "POST", "courses", admin, json=course_settings("broke1", budget="0"))
    assert reply.status_code == 201, reply.text
    people = {"people": [{"username": "chs01", "role": "student"}]}
    assert api(portal, "POST", "courses/broke1/enrolments", admin, json=people).status_code == 200
    reply = portal.request(
        "POST",
        "/users/chs01/servers/course-broke1",
        token=tokens["chs01"],
        json={"profile": "cpu", "account": "course-broke1"},
    )
    assert reply.status_code == 402, reply.text
    assert "Not enough credits in account course-broke1" in reply.json()["message"]
    assert not alive_jobs("alpha", "chs01") and not alive_jobs("beta", "chs01")


def test_a_student_who_reaches_their_cap_is_stopped_with_a_message(portal, tokens, enrolled):
    student = "chs05"
    tokens[student] = portal.user_token(student)
    # What the warm-up cost them, and 0.1 credits more: ten seconds of one core at the
    # test rates.
    roster = api(portal, "GET", f"courses/{COURSE}/roster", tokens[INSTRUCTOR]).json()["roster"]
    spent_mc = next(r["spent_mc"] for r in roster if r["username"] == student)
    cap = f"{(spent_mc + 100) / 1000:.3f}"
    reply = api(
        portal, "PATCH", f"courses/{COURSE}/enrolments/{student}", tokens[INSTRUCTOR],
        json={"cap": cap},
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    reply = portal.request(
        "POST",
        f"/users/{student}/servers/{SERVER}",
        token=tokens[student],
        json={"profile": "cpu", "account": f"course-{COURSE}"},
    )
    assert reply.status_code in (201, 202), reply.text
    portal.wait_ready(student, SERVER, timeout=90)
    portal.wait_gone(student, SERVER, timeout=90)
    notices = api(portal, "GET", "me", tokens[student]).json()["notices"]
    assert any(
        f"reached your cap of {cap} credits in course phys101" in n["message"] for n in notices
    ), notices
    row = next(
        r
        for r in api(portal, "GET", f"courses/{COURSE}/roster", tokens[INSTRUCTOR]).json()["roster"]
        if r["username"] == student
    )
    assert row["spent_mc"] >= spent_mc + 100 and row["server"] == "stopped", row
    reply = portal.request(
        "POST",
        f"/users/{student}/servers/{SERVER}",
        token=tokens[student],
        json={"profile": "cpu", "account": f"course-{COURSE}"},
    )
    assert reply.status_code == 403 and "used your cap" in reply.json()["message"], reply.text


MATERIALS = Path("/srv/corehour-tests")


def git(*argv: str, cwd: Path) -> None:
    subprocess.run(["git", *argv], cwd=cwd, check=True, capture_output=True)


def test_course_materials_arrive_and_never_overwrite_a_students_work(portal, tokens, courses):
    admin, student = tokens[TEST_ADMIN], "chs06"
    ensure_users(student)
    tokens[student] = portal.user_token(student)
    shutil.rmtree(MATERIALS, ignore_errors=True)
    folder = MATERIALS / "lab201"
    (folder / "week1").mkdir(parents=True)
    (folder / "intro.ipynb").write_text("instructor v1")
    (folder / "week1" / "data.csv").write_text("1,2,3")
    # A git repository on the shared file system; the student's own here, because git
    # refuses repositories owned by someone else unless the site lists them as safe.
    work, repo = MATERIALS / "optics-work", MATERIALS / "optics.git"
    work.mkdir()
    (work / "README.md").write_text("optics v1")
    git("init", "-q", "-b", "main", cwd=work)
    git("add", "-A", cwd=work)
    git("-c", "user.name=Prof", "-c", "user.email=p@uni.example", "commit", "-qm", "v1", cwd=work)
    git("clone", "-q", "--bare", str(work), str(repo), cwd=MATERIALS)
    subprocess.run(["chmod", "-R", "a+rX", str(MATERIALS)], check=True)
    subprocess.run(["chown", "-R", student, str(repo)], check=True)
    home = Path(pwd.getpwnam(student).pw_dir)
    for slug in ("lab201", "optics"):
        shutil.rmtree(home / slug, ignore_errors=True)
    materials = {
        "lab201": {"kind": "folder", "source": str(folder)},
        "optics": {"kind": "git", "source": str(repo), "branch": "main"},
    }
    for slug, source in materials.items():
        reply = api(portal, "POST", "courses", admin, json=course_settings(slug, materials=source))
        assert reply.status_code == 201, reply.text
        people = {"people": [{"username": student, "role": "student"}]}
        assert api(portal, "POST", f"courses/{slug}/enrolments", admin, json=people).ok

    def start_and_stop(slug: str) -> None:
        reply = portal.request(
            "POST",
            f"/users/{student}/servers/course-{slug}",
            token=tokens[student],
            json={"profile": "cpu", "account": f"course-{slug}"},
        )
        assert reply.status_code in (201, 202), reply.text
        portal.wait_ready(student, f"course-{slug}", timeout=90)
        if slug == "lab201":
            # The course server opens on the course's folder.
            browser = portal.login(student)
            page = browser.get(f"{portal.url}/user/{student}/course-{slug}/", timeout=60)
            assert page.url.endswith(f"/user/{student}/course-{slug}/lab/tree/{slug}"), page.url
        portal.stop_server(student, f"course-{slug}")
        portal.wait_gone(student, f"course-{slug}", timeout=60)

    start_and_stop("lab201")
    placed = home / "lab201" / "intro.ipynb"
    assert placed.read_text() == "instructor v1"
    assert placed.stat().st_uid == pwd.getpwnam(student).pw_uid
    assert (home / "lab201" / "week1" / "data.csv").read_text() == "1,2,3"
    placed.write_text("my answers")
    (folder / "intro.ipynb").write_text("instructor v2")
    (folder / "week2.ipynb").write_text("next week")
    subprocess.run(["chmod", "a+r", str(folder / "week2.ipynb")], check=True)
    start_and_stop("lab201")
    assert placed.read_text() == "my answers"
    assert (home / "lab201" / "week2.ipynb").read_text() == "next week"

    start_and_stop("optics")
    assert (home / "optics" / "README.md").read_text() == "optics v1"
    (home / "optics" / "notes.md").write_text("mine")
    (work / "lecture2.md").write_text("lecture 2")
    git("add", "-A", cwd=work)
    git("-c", "user.name=Prof", "-c", "user.email=p@uni.example", "commit", "-qm", "v2", cwd=work)
    subprocess.run(["chown", "-R", "root", str(repo)], check=True)
    git("push", "-q", str(repo), "main", cwd=work)
    subprocess.run(["chown", "-R", student, str(repo)], check=True)
    start_and_stop("optics")
    assert (home / "optics" / "lecture2.md").read_text() == "lecture 2"
    assert (home / "optics" / "notes.md").read_text() == "mine"


def test_a_removed_student_can_no_longer_spend_the_course_budget(portal, tokens, enrolled):
    """The attacks: a student taken out of the course keeps submitting with
    ``--account=course-<slug>`` from a terminal; an instructor, a manager of the course
    account, adds someone as a member of it with no cap."""
    student, account = STUDENTS[-1], f"course-{COURSE}"
    running = sbatch_as(student, "alpha", f"--account={account}", "--wrap", "sleep 300")
    reply = api(portal, "DELETE", f"courses/{COURSE}/enrolments/{student}", tokens[INSTRUCTOR])
    assert reply.status_code in (200, 204), reply.text
    assert not [j for j in alive_jobs("alpha", student) if str(j["job_id"]) == running]
    refused = subprocess.run(
        ["runuser", "-u", student, "--", "env", f"SLURM_CONF={SLURM_CONF['alpha']}",
         "sbatch", f"--account={account}", "-o", "/dev/null", "--wrap", "true"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0, refused.stdout
    assert "Invalid account" in refused.stderr, refused.stderr

    reply = api(
        portal, "POST", f"accounts/{account}/members", tokens[INSTRUCTOR],
        json={"username": "chtest1"},
    )  # fmt: skip
    assert reply.status_code == 403, reply.text
    members = api(portal, "GET", f"accounts/{account}/members", tokens[TEST_ADMIN]).json()
    assert "chtest1" not in {m["username"] for m in members["members"]}
