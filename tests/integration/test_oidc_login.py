"""Single sign-on against a real OpenID Connect provider (tests/oidc_provider.py) and a real
portal whose site file says ``auth: {kind: oidc}``.

Everything goes over HTTP as a browser would: /hub/oauth_login, the provider's login form,
the code back to the hub's callback, the hub's token exchange (with PKCE), the id_token
checked against the provider's published keys.  Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import yaml
from tornado import web

from extensions.courses.identity import IdentityError
from extensions.sso.identities import IdentityStore
from extensions.sso.oidc import CorehourOIDCAuthenticator
from tests.harness import HUB_BIN, REPO, Portal, portal_site
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
USERS = [ANNA, BEN, OTHER_ANNA]


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
def sso_portal(workdir, provider, secret_file, clusters):
    portal_dir = workdir / "portal"
    portal_dir.mkdir()
    logins = portal_dir / "logins.jsonl"
    # The documented hook point for the course code: every signed-in auth model, as it
    # reaches Authenticator.post_auth_hook, is written down here.
    record_logins = f"""
import json as _json
def _record_login(authenticator, handler, auth_model):
    with open({str(logins)!r}, "a") as f:
        f.write(_json.dumps(auth_model) + "\\n")
    return auth_model
c.CorehourOIDCAuthenticator.post_auth_hook = _record_login
"""
    site = _sso_site(portal_dir, provider, secret_file)
    portal = Portal(portal_dir, BASE_PORT, site=site, extra_config=record_logins).start()
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
    users_file = provider.workdir / "oidc_users.json"
    try:
        users_file.write_text(json.dumps([renamed, BEN, OTHER_ANNA]))
        provider.stop()
        provider.start()
        _, callback = sign_in(sso_portal, provider, renamed)
        assert callback.status_code == 302, callback.text
        login = recorded_login(sso_portal, "anna-muller")
        assert login["auth_state"]["email"] == "a.mueller@uni.example"
        assert sso_portal.request("GET", "/users/a-mueller").status_code == 404
    finally:
        users_file.write_text(json.dumps(USERS))
        provider.stop()
        provider.start()


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


# -- a hub that cannot use its provider does not start -----------------------------------


def _start_hub(site: dict, workdir) -> subprocess.CompletedProcess:
    (workdir / "site.yaml").write_text(yaml.safe_dump(site))
    return subprocess.run(
        [str(HUB_BIN / "jupyterhub"), "-f", str(REPO / "jupyterhub_config.py")],
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
