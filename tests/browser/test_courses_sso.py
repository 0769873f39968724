"""Courses in a real browser, signed in through a real OpenID Connect provider.

The instructor signs in at the provider (tests/oidc_provider.py), finds the course on the
Courses page, starts a student's server from the dashboard and opens it.  A student signs
in the same way and sees only their own course.  The provider's groups claim is what puts
each of them in the course: its groups under the site's ``auth.course_groups_prefix``
(``corehour:`` by default), as a centre would name them.
"""

from __future__ import annotations

import datetime as dt
import pwd
import secrets

import pytest
import requests
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait

from extensions.sso.identities import IdentityStore
from tests.browser.helpers import shot
from tests.harness import TEST_ADMIN, Portal, ensure_users, portal_site
from tests.oidc import OIDCProvider, submit_login_form

pytestmark = pytest.mark.browser

PORT = 27800
PROVIDER_PORT = PORT + 50
PASSWORD = "sso-course-pw"
TODAY = dt.datetime.now(dt.UTC).date()


def person(sub: str, email: str, name: str, groups: list[str]) -> dict:
    return {
        "sub": sub,
        "username": email.split("@")[0],
        "password": PASSWORD,
        "email": email,
        "name": name,
        "groups": groups,
    }


# Unix names by the documented rule: the e-mail's local part, '.' becoming '-'.
PROF = person("p-1", "prof.ada@uni.example", "Ada Lovelace", ["corehour:course-sso101-instructors"])
STUDENT = person("s-1", "stu.one@uni.example", "Stu One", ["corehour:course-sso101", "library"])
OTHER = person("s-2", "stu.two@uni.example", "Stu Two", ["corehour:course-other2"])
NAMES = {"prof-ada": PROF, "stu-one": STUDENT, "stu-two": OTHER}


@pytest.fixture(scope="module")
def sso_portal(tmp_path_factory, clusters):
    # The sign-in makes their Unix accounts (the site file says so).  They are not deleted
    # between runs: slurmctld keeps a user's uid until it restarts, so a re-made account
    # with a new uid could not submit.
    ensure_users(TEST_ADMIN)
    workdir = tmp_path_factory.mktemp("courses-sso")
    secret = workdir / "client-secret"
    secret.write_text(secrets.token_urlsafe(24))
    secret.chmod(0o600)
    provider = OIDCProvider(
        workdir / "provider",
        PROVIDER_PORT,
        [PROF, STUDENT, OTHER],
        "corehour",
        secret,
        [f"http://127.0.0.1:{PORT}/hub/oauth_callback"],
    ).start()
    site = portal_site(PORT, workdir)
    site["auth"] = {
        "kind": "oidc",
        "issuer": provider.issuer,
        "client_id": "corehour",
        "client_secret_file": str(secret),
        "login_service": "Uni Example",
    }
    portal = Portal(workdir, PORT, site=site)
    # A first sign-in never takes an existing account, and an earlier run made these: link
    # them to the same people, as an admin would (python -m extensions.sso.assign).
    identities = IdentityStore(f"sqlite:///{portal.state / 'identities.sqlite'}")
    for name, who in NAMES.items():
        if _has_account(name):
            identities.assign(provider.issuer, who["sub"], name)
    identities.engine.dispose()
    try:
        portal.start()
    except Exception:  # leave no proxy or provider on the test ports for the next run
        portal.stop()
        provider.stop()
        raise
    admin = portal.user_token(TEST_ADMIN)
    portal.wait_billing(admin)
    for slug in ("sso101", "other2"):
        course = {
            "slug": slug,
            "title": f"Course {slug}",
            "term_start": (TODAY - dt.timedelta(days=1)).isoformat(),
            "term_end": (TODAY + dt.timedelta(days=30)).isoformat(),
            "student_cap": "20",
            "budget": "200",
            "default_profile": "cpu",
            "profiles": ["cpu"],
            "images": ["base"],
        }
        reply = portal.billing("POST", "api/courses", admin, json=course)
        assert reply.status_code == 201, reply.text
    yield portal, provider
    portal.stop_all(list(NAMES))
    portal.stop()
    provider.stop()


def _has_account(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def sign_in_with_requests(portal: Portal, who: dict) -> None:
    """A first sign-in, so that the claim has enrolled the person before others look."""
    session = requests.Session()
    form = session.get(f"{portal.url}/hub/oauth_login", timeout=30)
    back = submit_login_form(session, form, who["username"], who["password"])
    page = session.get(back.headers["Location"], timeout=60)
    assert page.status_code == 200, page.text[:300]


def sign_in(driver, portal: Portal, who: dict) -> None:
    driver.get(f"{portal.url}/hub/oauth_login")
    wait = WebDriverWait(driver, 60)
    wait.until(ready.presence_of_element_located((By.ID, "username")))
    driver.find_element(By.ID, "username").send_keys(who["username"])
    driver.find_element(By.ID, "password").send_keys(who["password"])
    driver.find_element(By.ID, "sign-in").click()
    wait.until(
        lambda d: (
            d.current_url.startswith(f"{portal.url}/hub/")
            and "oauth" not in d.current_url
            and d.execute_script("return document.readyState") == "complete"
        )
    )


def test_the_instructor_signs_in_warms_up_a_student_and_opens_their_server(sso_portal, browser):
    portal, _provider = sso_portal
    sign_in_with_requests(portal, STUDENT)
    sign_in_with_requests(portal, OTHER)
    wait = WebDriverWait(browser, 90)

    sign_in(browser, portal, PROF)
    browser.find_element(By.ID, "nav-courses").click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, '[data-course="sso101"] a')))
    rows = browser.find_elements(By.CSS_SELECTOR, "#courses tbody tr")
    assert [r.get_attribute("data-course") for r in rows] == ["sso101"]
    browser.find_element(By.CSS_SELECTOR, '[data-course="sso101"] a').click()
    wait.until(ready.presence_of_element_located((By.ID, "roster")))
    assert "/courses/sso101/dashboard" in browser.current_url
    people = {
        r.get_attribute("data-user"): r.get_attribute("data-role")
        for r in browser.find_elements(By.CSS_SELECTOR, "#roster tbody tr")
    }
    assert people == {"prof-ada": "instructor", "stu-one": "student"}

    browser.find_element(By.CSS_SELECTOR, '.ch-toggle[data-user="stu-one"]').click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".alert")))
    assert "Starting 1 of 1 servers" in browser.find_element(By.CSS_SELECTOR, ".alert").text
    assert pwd.getpwnam("stu-one")  # made at the student's first sign-in
    # The roster refreshes itself: the Open button appears once the server is running.
    opener = (By.CSS_SELECTOR, '.ch-open[data-user="stu-one"]:not(.d-none)')
    WebDriverWait(browser, 120).until(ready.visibility_of_element_located(opener))
    state = browser.find_element(By.CSS_SELECTOR, '.ch-state[data-user="stu-one"]').text
    assert state == "running"
    shot(browser, "course-dashboard")
    # On a phone the page fits the screen; only the roster table scrolls sideways.
    browser.set_window_size(390, 844)
    try:
        overflow = (
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        # The chart redraws for the new width a moment after the resize.
        try:
            WebDriverWait(browser, 5).until(lambda d: d.execute_script(overflow) <= 0)
        except TimeoutException:
            wide = browser.execute_script(
                "return [...document.querySelectorAll('body *')].filter(e => e.scrollWidth > "
                "document.documentElement.clientWidth).map(e => e.tagName + '#' + e.id + '.' + "
                "e.className).slice(-5)"
            )
            raise AssertionError(
                f"the dashboard is {browser.execute_script(overflow)}px wider than a phone: {wide}"
            ) from None
        assert browser.find_element(By.ID, "start-all").is_displayed()
        shot(browser, "course-dashboard-phone")
    finally:
        browser.set_window_size(1280, 900)

    link = browser.find_element(*opener).get_attribute("href")
    assert link == f"{portal.url}/user/stu-one/course-sso101/"
    browser.get(link)
    # The hub asks the instructor to confirm access to the student's server, then opens it.
    wait.until(ready.element_to_be_clickable((By.CSS_SELECTOR, "form button[type=submit]")))
    assert "stu-one" in browser.page_source
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    wait.until(lambda d: d.current_url.startswith(f"{portal.url}/user/stu-one/course-sso101/lab"))
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".jp-LabShell")))
    shot(browser, "course-student-server-opened-by-instructor")


def test_a_student_signs_in_and_sees_only_their_own_course(sso_portal, browser):
    portal, _provider = sso_portal
    wait = WebDriverWait(browser, 60)
    sign_in(browser, portal, STUDENT)
    browser.find_element(By.ID, "nav-courses").click()
    wait.until(ready.presence_of_element_located((By.ID, "courses")))
    rows = browser.find_elements(By.CSS_SELECTOR, "#courses tbody tr")
    assert [(r.get_attribute("data-course"), r.text.split()[-1]) for r in rows] == [
        ("sso101", "student")
    ]
    browser.find_element(By.CSS_SELECTOR, '[data-course="sso101"] a').click()
    wait.until(ready.presence_of_element_located((By.ID, "my-server")))
    assert browser.find_elements(By.ID, "roster") == []
    assert (
        "of your cap of 20.000"
        in browser.find_element(By.ID, "you-spent").find_element(By.XPATH, "..").text
    )
    shot(browser, "course-student-view")
    # The dashboard and another course are refused, with the reason.
    browser.get(f"{portal.url}/services/billing/courses/sso101/dashboard")
    assert browser.find_element(By.TAG_NAME, "body").text.startswith("403: only")
    browser.get(f"{portal.url}/services/billing/courses/other2")
    assert "403: you are not in course 'other2'" in browser.find_element(By.TAG_NAME, "body").text
