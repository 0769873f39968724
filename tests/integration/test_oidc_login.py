"""Single sign-on against a real OpenID Connect provider (tests/oidc_provider.py) and a real
portal whose site file says ``auth: {kind: oidc}``.

Everything goes over HTTP as a browser would: /hub/oauth_login, the provider's login form,
the code back to the hub's callback, the hub's token exchange (with PKCE), the id_token
checked against the provider's published keys.  Nothing is mocked.

The ``test_attack_*`` tests are issue 12's provider ↔ portal attacks, each as the attacker
would try it at a real provider: a username claim of ``root@…`` or of an admin's name, an
e-mail the provider never verified, a local person's name, a self-made instructors group,
and a role kept after its group is gone.  Each fails on 8efa8d7.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy
import yaml
from alembic import command
from tornado import web

from billing_hooks.db import alembic_config, make_engine, session_factory
from billing_hooks.models import Membership
from centre.site import load_site
from extensions.courses import store
from extensions.courses.identity import IdentityError
from extensions.courses.roster import Enrolment as Row
from extensions.courses.settings import parse_course
from extensions.sso.identities import IdentityStore
from extensions.sso.oidc import CorehourOIDCAuthenticator
from tests.harness import HUB_BIN, REPO, TEST_ADMIN, Portal, portal_site
from tests.ledger_db import sqlite_url
from tests.oidc import OIDCProvider, submit_login_form
from tests.oidc_provider import s256

pytestmark = pytest.mark.integration

BASE_PORT = 27700
PROVIDER_PORT = BASE_PORT + 50
CLIENT_ID = "corehour"
CALLBACK = f"http://127.0.0.1:{BASE_PORT}/hub/oauth_callback"
PASSWORD = "oidc-test-pw"
ANNA = {
    "sub": "u-1001",
    "username": "anna",
    "password": PASSWORD,
    "email": "Anna.Müller@uni.example",
    "name": "Anna Müller",
    "groups": ["hpc-admins", "chem-101"],
}
BEN = {
    "sub": "u-1002",
    "username": "ben",
    "password": PASSWORD,
    "email": "ben.okafor@uni.example",
    "name": "Ben Okafor",
    "groups": ["chem-101"],
}
# Another person whose e-mail gives the same account name as Anna's.
OTHER_ANNA = {
    "sub": "u-2001",
    "username": "anna2",
    "password": PASSWORD,
    "email": "anna.muller@other.example",
    "name": "Anna Muller",
    "groups": [],
}


def person(sub: str, username: str, email: str, groups: list[str] = ()) -> dict:
    name = email.split("@")[0].replace(".", " ").title()
    return {
        "sub": sub,
        "username": username,
        "password": PASSWORD,
        "email": email,
        "name": name,
        "groups": list(groups),
    }


# Attackers: each has a real account at the provider and chooses only their e-mail.
ROOT = person("x-root", "mallory", "root@evil.example")
HPCADMIN = person("x-hpcadmin", "mallory2", "HPCAdmin@evil.example")  # hub.admin_users
LOCAL = person("x-local", "mallory3", "chtest1@evil.example")  # a local person's account
UNVERIFIED = {**person("x-unverified", "carol", "carol.mayer@uni.example"), "email_verified": False}
# A person an admin links to an existing local account on purpose.
DORA = person("u-3001", "dora", "dora.quinn@uni.example")
# People whose course roles come from the provider's groups.
EVE = person("u-4001", "eve", "eve.stone@uni.example")
FRANK = person("u-4002", "frank", "frank.lee@uni.example")
GINA = person("u-4003", "gina", "gina.ruiz@uni.example")
HANK = person("u-4004", "hank", "hank.berg@uni.example")
USERS = [ANNA, BEN, OTHER_ANNA, ROOT, HPCADMIN, LOCAL, UNVERIFIED, DORA, EVE, FRANK, GINA, HANK]
COURSE = "sso201"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("sso")


@pytest.fixture(scope="module")
def secret_file(workdir):
    path = workdir / "oidc-client-secret"
    path.write_text(secrets.token_urlsafe(24))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def provider(workdir, secret_file):
    provider = OIDCProvider(
        workdir / "provider", PROVIDER_PORT, USERS, CLIENT_ID, secret_file, [CALLBACK]
    ).start()
    yield provider
    provider.stop()


def _sso_site(workdir, provider, secret_file) -> dict:
    site = portal_site(BASE_PORT, workdir)
    # hpcadmin as in deploy/site.example.yaml: the name an attacker would ask for.
    site["hub"]["admin_users"] = [TEST_ADMIN, "hpcadmin"]
    # Course sync runs, but makes no Unix accounts for the many people signed in here.
    site["courses"]["create_unix_accounts"] = False
    site["auth"] = {
        "kind": "oidc",
        "issuer": provider.issuer,
        "client_id": CLIENT_ID,
        "client_secret_file": str(secret_file),
        "admin_groups": ["hpc-admins"],
        "login_service": "Uni Example SSO",
    }
    return site


@pytest.fixture(scope="module")
def sso_portal(workdir, provider, secret_file, users):
    portal_dir = workdir / "portal"
    portal_dir.mkdir()
    logins = portal_dir / "logins.jsonl"
    # The documented hook point for the course code: every signed-in auth model, as it
    # reaches Authenticator.post_auth_hook, is written down here, then handed on to the
    # course code's own hook.
    record_logins = f"""
import json as _json
_course_sync = c.CorehourOIDCAuthenticator.post_auth_hook
async def _record_login(authenticator, handler, auth_model):
    with open({str(logins)!r}, "a") as f:
        f.write(_json.dumps(auth_model) + "\\n")
    return await _course_sync(authenticator, handler, auth_model)
c.CorehourOIDCAuthenticator.post_auth_hook = _record_login
"""
    site = _sso_site(portal_dir, provider, secret_file)
    portal = Portal(portal_dir, BASE_PORT, site=site, extra_config=record_logins)
    try:
        portal.start()
    except Exception:  # leave no proxy on the test ports for the next run
        portal.stop()
        raise
    portal.logins = logins
    yield portal
    portal.stop()


def sign_in(portal: Portal, provider: OIDCProvider, person: dict):
    """A browser's sign-in: the hub's callback answer (not followed) and the session."""
    session = requests.Session()
    form = session.get(f"{portal.url}/hub/oauth_login", timeout=30)
    assert form.url.startswith(f"{provider.issuer}/authorize?"), form.url
    assert "code_challenge_method=S256" in form.url
    back = submit_login_form(session, form, person["username"], person["password"])
    assert back.status_code == 302, back.text
    assert back.headers["Location"].startswith(CALLBACK + "?code=")
    return session, session.get(back.headers["Location"], allow_redirects=False, timeout=30)


def recorded_login(portal: Portal, name: str) -> dict:
    models = [json.loads(line) for line in portal.logins.read_text().splitlines()]
    return [m for m in models if m["name"] == name][-1]


def test_the_login_page_offers_the_provider(sso_portal):
    page = requests.get(f"{sso_portal.url}/hub/login", timeout=30)
    assert page.status_code == 200
    assert "Sign in with Uni Example SSO" in page.text
    assert 'name="password"' not in page.text  # no local password form


def test_sign_in_makes_the_rule_s_account_and_admin_from_groups(sso_portal, provider):
    session, callback = sign_in(sso_portal, provider, ANNA)
    assert callback.status_code == 302, callback.text
    assert "jupyterhub-session-id" in session.cookies
    home = session.get(f"{sso_portal.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 200
    assert "anna-muller" in home.text

    anna = sso_portal.request("GET", "/users/anna-muller")
    assert anna.status_code == 200, anna.text
    assert anna.json()["admin"] is True
    assert recorded_login(sso_portal, "anna-muller") == {
        "name": "anna-muller",
        "admin": True,
        "auth_state": {
            "issuer": provider.issuer,
            "sub": "u-1001",
            "email": "Anna.Müller@uni.example",
            "name": "Anna Müller",
            "groups": ["hpc-admins", "chem-101"],
            "course_groups": [],
        },
        "user_info": None,
    }

    _, callback = sign_in(sso_portal, provider, BEN)
    assert callback.status_code == 302, callback.text
    ben = sso_portal.request("GET", "/users/ben-okafor")
    assert ben.status_code == 200, ben.text
    assert ben.json()["admin"] is False
    assert recorded_login(sso_portal, "ben-okafor")["auth_state"]["groups"] == ["chem-101"]


def test_an_admin_flag_set_by_hand_is_taken_back_at_sign_in(sso_portal, provider):
    sign_in(sso_portal, provider, ANNA)
    sign_in(sso_portal, provider, BEN)
    # Only an admin may make another admin: Anna is one, by her provider group.
    token = sso_portal.request("POST", "/users/anna-muller/tokens", json={"note": "tests"})
    assert token.status_code == 201, token.text
    made = sso_portal.request(
        "PATCH", "/users/ben-okafor", token=token.json()["token"], json={"admin": True}
    )
    assert made.status_code == 200, made.text
    assert sso_portal.request("GET", "/users/ben-okafor").json()["admin"] is True
    _, callback = sign_in(sso_portal, provider, BEN)
    assert callback.status_code == 302
    assert sso_portal.request("GET", "/users/ben-okafor").json()["admin"] is False


def test_a_second_person_with_the_same_name_is_refused_also_after_a_restart(sso_portal, provider):
    _, callback = sign_in(sso_portal, provider, ANNA)
    assert callback.status_code == 302
    users_before = {u["name"] for u in sso_portal.request("GET", "/users").json()}

    for restarted in (False, True):
        if restarted:  # the subject → name map must outlive the hub process
            sso_portal.restart_hub()
        _, refused = sign_in(sso_portal, provider, OTHER_ANNA)
        assert refused.status_code == 403, (restarted, refused.text[:300])
        assert "already belongs to someone else" in refused.text
        assert "Ask the centre" in refused.text
        _, callback = sign_in(sso_portal, provider, ANNA)
        assert callback.status_code == 302, callback.text
        assert recorded_login(sso_portal, "anna-muller")["auth_state"]["sub"] == "u-1001"

    assert {u["name"] for u in sso_portal.request("GET", "/users").json()} == users_before


def test_a_new_e_mail_keeps_the_account_and_new_provider_keys_are_fetched(sso_portal, provider):
    _, callback = sign_in(sso_portal, provider, ANNA)
    assert callback.status_code == 302
    renamed = {**ANNA, "email": "a.mueller@uni.example"}
    # A restarted provider has a new signing key too, which the hub must fetch again.
    try:
        provider.set_users([renamed, *USERS[1:]])
        provider.stop()
        provider.start()
        _, callback = sign_in(sso_portal, provider, renamed)
        assert callback.status_code == 302, callback.text
        login = recorded_login(sso_portal, "anna-muller")
        assert login["auth_state"]["email"] == "a.mueller@uni.example"
        assert sso_portal.request("GET", "/users/a-mueller").status_code == 404
    finally:
        provider.set_users(USERS)
        provider.stop()
        provider.start()


# -- attacks on the names a sign-in gives (issue 12) -------------------------------------


def signed_out(portal: Portal, session: requests.Session) -> bool:
    home = session.get(f"{portal.url}/hub/home", allow_redirects=False, timeout=30)
    return home.status_code == 302 and "/hub/login" in home.headers["Location"]


@pytest.mark.parametrize(
    ("attacker", "name", "why"),
    [
        (ROOT, "root", "is a reserved name"),
        (HPCADMIN, "hpcadmin", "is one of the portal"),
        (LOCAL, "chtest1", "already belongs to a local account"),
    ],
    ids=["root", "admin-name", "local-account"],
)
def test_attack_sign_in_as_root_an_admin_or_a_local_account_is_refused(
    sso_portal, provider, attacker, name, why
):
    users_before = {u["name"] for u in sso_portal.request("GET", "/users").json()}
    session, refused = sign_in(sso_portal, provider, attacker)
    assert refused.status_code == 403, (name, refused.status_code, refused.text[:300])
    assert f"gives the account name &#39;{name}&#39;" in refused.text
    assert why in refused.text
    assert signed_out(sso_portal, session)
    assert {u["name"] for u in sso_portal.request("GET", "/users").json()} == users_before
    if name == "hpcadmin":  # the hub's own admin is still an admin, and still no one's login
        assert sso_portal.request("GET", "/users/hpcadmin").json()["admin"] is True


def test_attack_sign_in_with_an_unverified_e_mail_is_refused(sso_portal, provider):
    session, refused = sign_in(sso_portal, provider, UNVERIFIED)
    assert refused.status_code == 403, refused.text[:300]
    assert "has not verified your e-mail address" in refused.text
    assert signed_out(sso_portal, session)
    assert sso_portal.request("GET", "/users/carol-mayer").status_code == 404
    # Once the provider has verified it, the same person signs in.
    try:
        provider.set_users([*USERS, {**UNVERIFIED, "email_verified": True}])
        _, callback = sign_in(sso_portal, provider, UNVERIFIED)
        assert callback.status_code == 302, callback.text[:300]
        assert sso_portal.request("GET", "/users/carol-mayer").status_code == 200
    finally:
        provider.set_users(USERS)


def test_an_admin_links_a_person_to_an_existing_account(sso_portal, provider):
    # Dora's e-mail gives dora-quinn, but her account is the local chtest2: the admin links it.
    db = f"sqlite:///{sso_portal.state / 'identities.sqlite'}"
    link = [sys.executable, "-m", "extensions.sso.assign", "--db", db, provider.issuer]
    linked = subprocess.run(
        [*link, DORA["sub"], "chtest2"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert linked.returncode == 0, linked.stderr
    assert f"{DORA['sub']} of {provider.issuer} now signs in as chtest2" in linked.stdout
    _, callback = sign_in(sso_portal, provider, DORA)
    assert callback.status_code == 302, callback.text[:300]
    assert recorded_login(sso_portal, "chtest2")["auth_state"]["sub"] == DORA["sub"]
    assert sso_portal.request("GET", "/users/dora-quinn").status_code == 404

    # A link cannot hand out a name another subject holds, nor make anyone root.
    taken = subprocess.run(
        [*link, "someone-else", "chtest2"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert taken.returncode == 1 and "already held by subject 'u-3001'" in taken.stderr
    rooted = subprocess.run(
        [*link, ROOT["sub"], "root"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert rooted.returncode == 0, rooted.stderr
    _, refused = sign_in(sso_portal, provider, ROOT)
    assert refused.status_code == 403 and "is a reserved name" in refused.text


# -- attacks on course roles from the provider's groups (issue 12) ------------------------

ROLE_OF_GROUP = {
    f"course-{COURSE}": "student",
    f"course-{COURSE}-tas": "ta",
    f"course-{COURSE}-instructors": "instructor",
}


@pytest.fixture(scope="module")
def course(sso_portal):
    """The course sso201, and a token of the tests' admin for the billing service."""
    admin = sso_portal.user_token(TEST_ADMIN)
    sso_portal.wait_billing(admin)
    today = dt.datetime.now(dt.UTC).date()
    spec = {
        "slug": COURSE,
        "title": "Sign-in attacks",
        "term_start": (today - dt.timedelta(days=1)).isoformat(),
        "term_end": (today + dt.timedelta(days=30)).isoformat(),
        "student_cap": "20",
        "budget": "100",
        "default_profile": "cpu",
        "profiles": ["cpu"],
        "images": ["base"],
    }
    made = sso_portal.billing("POST", "api/courses", admin, json=spec)
    assert made.status_code == 201, made.text
    return admin


def role_in_course(portal: Portal, name: str) -> tuple[str | None, list[str]]:
    """Their role in the ledger, and the roles their hub groups give (what the scopes follow)."""
    engine = sqlalchemy.create_engine(portal.billing_db)
    try:
        with engine.connect() as db:
            ledger = db.execute(
                sqlalchemy.text(
                    "SELECT e.role FROM enrolment e JOIN course c ON c.id = e.course_id "
                    "WHERE c.slug = :slug AND e.username = :name"
                ),
                {"slug": COURSE, "name": name},
            ).scalar()
    finally:
        engine.dispose()
    user = portal.request("GET", f"/users/{name}")
    groups = user.json()["groups"] if user.status_code == 200 else []
    return ledger, sorted(ROLE_OF_GROUP[g] for g in groups if g in ROLE_OF_GROUP)


def sign_in_with_groups(portal: Portal, provider: OIDCProvider, who: dict, groups: list[str]):
    changed = {**who, "groups": groups}
    provider.set_users([u for u in USERS if u["sub"] != who["sub"]] + [changed])
    try:
        _, callback = sign_in(portal, provider, changed)
    finally:
        provider.set_users(USERS)
    assert callback.status_code == 302, callback.text[:300]


def test_attack_an_unprefixed_instructors_group_gives_no_role(sso_portal, provider, course):
    # Groups anyone could make at a provider with self-service groups.
    groups = [f"course-{COURSE}-instructors", f"course-{COURSE}-tas", f"course-{COURSE}"]
    sign_in_with_groups(sso_portal, provider, EVE, groups)
    assert recorded_login(sso_portal, "eve-stone")["auth_state"]["groups"] == groups
    assert role_in_course(sso_portal, "eve-stone") == (None, [])
    # The same group under the site's prefix (auth.course_groups_prefix) is trusted.
    sign_in_with_groups(sso_portal, provider, EVE, [f"corehour:course-{COURSE}-instructors"])
    assert role_in_course(sso_portal, "eve-stone") == ("instructor", ["instructor"])


def test_attack_a_role_stays_after_its_group_is_dropped(sso_portal, provider, course):
    # Both spellings of the group: only the prefixed one counts now (test above), and
    # either way the role must go with the group.
    instructors = [f"corehour:course-{COURSE}-instructors", f"course-{COURSE}-instructors"]

    # Only the group made Frank an instructor: without it he leaves the course.
    sign_in_with_groups(sso_portal, provider, FRANK, instructors)
    assert role_in_course(sso_portal, "frank-lee") == ("instructor", ["instructor"])
    sign_in_with_groups(sso_portal, provider, FRANK, [])
    assert role_in_course(sso_portal, "frank-lee") == (None, [])

    # The class list says Gina is a student; the group made her an instructor for a while.
    listed = sso_portal.billing(
        "POST",
        f"api/courses/{COURSE}/enrolments",
        course,
        json={"people": [{"username": "gina-ruiz", "role": "student"}]},
    )
    assert listed.status_code == 200, listed.text
    sign_in_with_groups(sso_portal, provider, GINA, instructors)
    assert role_in_course(sso_portal, "gina-ruiz") == ("instructor", ["instructor"])
    sign_in_with_groups(sso_portal, provider, GINA, [])
    assert role_in_course(sso_portal, "gina-ruiz") == ("student", ["student"])

    # The reverse: the group made Hank a TA first, then the class list named him a student.
    tas = [f"corehour:course-{COURSE}-tas", f"course-{COURSE}-tas"]
    sign_in_with_groups(sso_portal, provider, HANK, tas)
    assert role_in_course(sso_portal, "hank-berg") == ("ta", ["ta"])
    listed = sso_portal.billing(
        "POST",
        f"api/courses/{COURSE}/enrolments",
        course,
        json={"people": [{"username": "hank-berg", "role": "student"}]},
    )
    assert listed.status_code == 200, listed.text
    assert role_in_course(sso_portal, "hank-berg") == ("ta", ["ta"])  # the group still holds
    sign_in_with_groups(sso_portal, provider, HANK, [])
    assert role_in_course(sso_portal, "hank-berg") == ("student", ["student"])


# -- the provider and the id_token checks, without a hub ---------------------------------


def authorize(session: requests.Session, provider: OIDCProvider, **params) -> requests.Response:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": CALLBACK,
        "scope": "openid email profile groups",
        "state": "st",
        **params,
    }
    return session.get(f"{provider.issuer}/authorize", params=query, allow_redirects=False)


def code_for(provider: OIDCProvider, person: dict, verifier: str) -> str:
    session = requests.Session()
    form = authorize(session, provider, code_challenge=s256(verifier), code_challenge_method="S256")
    back = submit_login_form(session, form, person["username"], person["password"])
    return parse_qs(urlsplit(back.headers["Location"]).query)["code"][0]


def token_request(provider, secret_file, code, **extra) -> requests.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": CLIENT_ID,
        "client_secret": secret_file.read_text(),
        **extra,
    }
    return requests.post(f"{provider.issuer}/token", data=data, timeout=30)


def test_the_provider_requires_pkce(provider, secret_file):
    no_challenge = authorize(requests.Session(), provider)
    assert no_challenge.status_code == 302
    assert "error=invalid_request" in no_challenge.headers["Location"]
    plain = authorize(
        requests.Session(), provider, code_challenge="x" * 43, code_challenge_method="plain"
    )
    assert "error=invalid_request" in plain.headers["Location"]

    verifier = secrets.token_urlsafe(32)
    for wrong in ({}, {"code_verifier": secrets.token_urlsafe(32)}):
        refused = token_request(provider, secret_file, code_for(provider, BEN, verifier), **wrong)
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
        assert "code_verifier" in refused.json()["error_description"]
    good = token_request(
        provider, secret_file, code_for(provider, BEN, verifier), code_verifier=verifier
    )
    assert good.status_code == 200, good.text
    assert good.json()["token_type"] == "Bearer"


def test_a_tampered_or_misaddressed_id_token_is_refused(provider, secret_file):
    verifier = secrets.token_urlsafe(32)
    tokens = token_request(
        provider, secret_file, code_for(provider, ANNA, verifier), code_verifier=verifier
    ).json()
    id_token = tokens["id_token"]

    def check(token: str, client_id: str = CLIENT_ID) -> dict:
        authenticator = CorehourOIDCAuthenticator(
            issuer=provider.issuer, jwks_url=f"{provider.issuer}/jwks", client_id=client_id
        )
        return asyncio.run(authenticator.verified_id_claims(token))

    claims = check(id_token)
    assert (claims["sub"], claims["aud"], claims["iss"]) == ("u-1001", CLIENT_ID, provider.issuer)
    assert claims["groups"] == ANNA["groups"]

    header, _payload, signature = id_token.split(".")
    ben_tokens = token_request(
        provider, secret_file, code_for(provider, BEN, verifier), code_verifier=verifier
    ).json()
    bens_payload = ben_tokens["id_token"].split(".")[1]
    cases = [
        (f"{header}.{bens_payload}.{signature}", CLIENT_ID, "signature does not match"),
        (id_token, "another-portal", "made this sign-in for another application"),
        ("not-a-jwt", CLIENT_ID, "not a JWT"),
    ]
    for token, client_id, message in cases:
        with pytest.raises(web.HTTPError) as refused:
            check(token, client_id)
        assert refused.value.status_code == 403
        assert message in refused.value.get_message()


# -- the subject → name table ------------------------------------------------------------


def test_names_are_kept_by_subject_in_the_identity_table(tmp_path):
    url = f"sqlite:///{tmp_path / 'identities.sqlite'}"
    issuer = "https://login.uni.example"
    store = IdentityStore(url)
    assert store.name_for(issuer, "u-1", "Anna.Müller@uni.example") == "anna-muller"
    assert store.name_for(issuer, "u-1", "a.mueller@uni.example") == "anna-muller"
    with pytest.raises(IdentityError, match="'anna-muller' already belongs to someone else"):
        store.name_for(issuer, "u-2", "anna.muller@other.example")
    with pytest.raises(IdentityError, match="already belongs"):  # same subject, other provider
        store.name_for("https://other.example", "u-1", "anna.muller@other.example")
    with pytest.raises(IdentityError, match="sent no username"):
        store.name_for(issuer, "u-3", None)

    reopened = IdentityStore(url)
    assert reopened.name_for(issuer, "u-1", "someone.else@uni.example") == "anna-muller"
    with pytest.raises(IdentityError, match="already belongs"):
        reopened.name_for(issuer, "u-2", "Anna.Muller@uni.example")
    assert reopened.name_for(issuer, "u-2", "2024.student@uni.example") == "u2024-student"


def test_a_refused_name_is_not_held_and_a_linked_one_is_checked_again(tmp_path):
    store = IdentityStore(f"sqlite:///{tmp_path / 'identities.sqlite'}")
    issuer = "https://login.uni.example"
    seen = []

    def refuse_hpcadmin(name: str, first: bool) -> None:
        seen.append((name, first))
        if name == "hpcadmin":
            raise IdentityError("no")

    with pytest.raises(IdentityError):
        store.name_for(issuer, "x-1", "HPCAdmin@evil.example", refuse_hpcadmin)
    # Nothing was recorded: the name is still free for an admin to link on purpose.
    assert store.assign(issuer, "u-9", "hpcadmin") is None
    with pytest.raises(IdentityError):  # and the rules still apply to the linked subject
        store.name_for(issuer, "u-9", "whatever@uni.example", refuse_hpcadmin)
    assert store.name_for(issuer, "u-1", "anna@uni.example", refuse_hpcadmin) == "anna"
    assert store.name_for(issuer, "u-1", "anna@uni.example", refuse_hpcadmin) == "anna"
    assert seen == [("hpcadmin", True), ("hpcadmin", False), ("anna", True), ("anna", False)]
    assert store.assign(issuer, "u-1", "anna-b") == "anna"
    with pytest.raises(IdentityError, match="already held by subject 'u-1'"):
        store.assign(issuer, "u-2", "anna-b")


# -- what the provider gave, kept apart from the class list, in the ledger -----------------


def test_the_provider_s_role_is_kept_apart_from_the_class_list(tmp_path):
    site = load_site(REPO / "deploy" / "site.example.yaml")
    spec = {
        "slug": "chem101",
        "title": "Chemistry",
        "term_start": "2027-01-11",
        "term_end": "2027-05-28",
        "student_cap": "40",
        "default_profile": "cpu",
        "profiles": ["cpu"],
        "images": ["base"],
    }
    sessions = session_factory(make_engine(sqlite_url(tmp_path)))

    def grant(name: str, role: str | None) -> bool:
        with sessions.begin() as session:
            course = store.find(session, "chem101")
            return store.grant_from_provider(session, course, name, role, "", "")

    def state(name: str) -> tuple:
        with sessions() as session:
            course = store.find(session, "chem101")
            member = session.scalar(
                sqlalchemy.select(Membership.role).where(
                    Membership.account_id == course.account_id, Membership.username == name
                )
            )
            return store.role_in(session, course, name), member

    with sessions.begin() as session:
        course = store.create_course(session, parse_course(spec, site), 100_000, actor="admin")
        store.enrol(session, course, [Row(1, "ann", "student")], "csv")
    assert grant("ann", "instructor") is True
    assert state("ann") == ("instructor", "manager")
    assert grant("ann", "instructor") is False
    with sessions.begin() as session:  # a new upload neither lowers nor keeps the raise
        report = store.enrol(session, store.find(session, "chem101"), [Row(1, "ann", "ta")], "api")
        assert report.unchanged == 1
    assert grant("ann", None) is True
    assert state("ann") == ("ta", "member")

    assert grant("bob", None) is False
    assert grant("bob", "ta") is True
    assert state("bob") == ("ta", "member")
    assert grant("bob", None) is True
    assert state("bob") == (None, None)


def test_the_migration_fills_in_what_each_source_gave(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    config = alembic_config(url)
    command.upgrade(config, "0004")
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as db:
        db.execute(
            sqlalchemy.text(
                "INSERT INTO account (id, name, kind, owner, display_name, tier, "
                "price_multiplier, credit_limit_mc, balance_mc, reference_mc, status, "
                "held_in_slurm, created_at) VALUES (1, 'course-c', 'course', 'admin', '', "
                "'standard', 1, 0, 0, 0, 'active', 0, 0)"
            )
        )
        db.execute(
            sqlalchemy.text(
                "INSERT INTO course (id, slug, title, account_id, term_start, term_end, "
                "student_cap_mc, default_profile, profiles, images, created_by, created_at) "
                "VALUES (1, 'c', 'C', 1, '2027-01-11', '2027-05-28', 0, 'cpu', '[]', '[]', "
                "'admin', 0)"
            )
        )
        for i, (name, role, source) in enumerate(
            [("ann", "student", "csv"), ("bob", "ta", "api"), ("cy", "instructor", "sso")]
        ):
            db.execute(
                sqlalchemy.text(
                    "INSERT INTO enrolment (id, course_id, username, role, display_name, "
                    "email, source, created_at) VALUES (:i, 1, :n, :r, '', '', :s, 0)"
                ),
                {"i": i + 1, "n": name, "r": role, "s": source},
            )
    command.upgrade(config, "head")
    with engine.connect() as db:
        rows = db.execute(
            sqlalchemy.text("SELECT username, listed_role, sso_role FROM enrolment ORDER BY 1")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("ann", "student", None),
        ("bob", "ta", None),
        ("cy", None, "instructor"),
    ]


# -- a hub that cannot use its provider does not start -----------------------------------


def _start_hub(site: dict, workdir) -> subprocess.CompletedProcess:
    (workdir / "site.yaml").write_text(yaml.safe_dump(site))
    return subprocess.run(
        [str(HUB_BIN / "corehour-hub")],
        cwd=workdir,
        env={
            "PATH": f"{HUB_BIN}:/usr/bin:/bin",
            "COREHOUR_SITE": str(workdir / "site.yaml"),
            "COREHOUR_STATE_DIR": str(workdir),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_hub_refuses_to_start_without_a_usable_provider(tmp_path, provider, secret_file):
    site = _sso_site(tmp_path, provider, secret_file)
    nobody = "http://127.0.0.1:27751"
    hub = _start_hub({**site, "auth": {**site["auth"], "issuer": nobody}}, tmp_path)
    assert hub.returncode == 2
    assert f"corehour: auth: cannot read {nobody}/.well-known/openid-configuration" in hub.stderr

    slash = provider.issuer + "/"
    hub = _start_hub({**site, "auth": {**site["auth"], "issuer": slash}}, tmp_path)
    assert hub.returncode == 2
    assert f"issuer is '{provider.issuer}', but the site file says '{slash}'" in hub.stderr

    leaky = tmp_path / "leaky-secret"
    leaky.write_text("s3cret")
    leaky.chmod(0o644)
    hub = _start_hub({**site, "auth": {**site["auth"], "client_secret_file": str(leaky)}}, tmp_path)
    assert hub.returncode == 2
    assert f"auth.client_secret_file: {leaky} can be read by others (mode 0644)" in hub.stderr
    assert not (tmp_path / "jupyterhub.sqlite").exists()
