"""Single sign-on's pure parts: discovery checks, id_token checks, claims, groups, the secret,
and the sign-in attacks on names and groups (issue 12).

Tokens are made with joserfc and checked with PyJWT, so a shared bug cannot hide.  The
provider itself and the whole sign-in are in tests/integration/test_oidc_login.py.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import time

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import RSAKey
from jwt import PyJWK
from pydantic import ValidationError

from centre.people import PersonRules, UnixAccount
from centre.site import Auth
from extensions.courses.identity import IdentityError
from extensions.courses.sso_sync import memberships
from extensions.sso.claims import (
    ClaimError,
    auth_state_for,
    checked_claims,
    course_groups,
    groups_in,
    is_admin,
    require_verified_email,
    verify_id_token,
)
from extensions.sso.discovery import Discovery, DiscoveryError, check_discovery
from extensions.sso.names import in_passwd_file, sign_in_refusal
from extensions.sso.oidc import CorehourOIDCAuthenticator
from extensions.sso.secret_file import SecretFileError, read_secret_file

pytestmark = pytest.mark.unit

ISSUER = "https://login.uni.example/realms/hpc"
WELL_KNOWN = f"{ISSUER}/.well-known/openid-configuration"
DOC = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/auth",
    "token_endpoint": f"{ISSUER}/token",
    "userinfo_endpoint": f"{ISSUER}/userinfo",
    "jwks_uri": f"{ISSUER}/certs",
    "code_challenge_methods_supported": ["plain", "S256"],
}


# -- discovery ----------------------------------------------------------------------------


def test_discovery_gives_the_endpoints():
    assert check_discovery(DOC, ISSUER) == Discovery(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/auth",
        token_endpoint=f"{ISSUER}/token",
        userinfo_endpoint=f"{ISSUER}/userinfo",
        jwks_uri=f"{ISSUER}/certs",
    )
    without_pkce_list = {k: v for k, v in DOC.items() if k != "code_challenge_methods_supported"}
    assert check_discovery(without_pkce_list, ISSUER).jwks_uri == f"{ISSUER}/certs"


def test_local_http_issuer_may_have_http_endpoints():
    local = "http://127.0.0.1:27750"
    doc = {k: v.replace(ISSUER, local) if isinstance(v, str) else v for k, v in DOC.items()}
    assert check_discovery(doc, local).token_endpoint == f"{local}/token"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"issuer": ISSUER + "/"}, f"issuer is '{ISSUER}/', but the site file says '{ISSUER}'"),
        ({"issuer": None}, "issuer is None"),
        ({"authorization_endpoint": None}, "authorization_endpoint is missing"),
        ({"token_endpoint": ""}, "token_endpoint is missing"),
        ({"userinfo_endpoint": None}, "userinfo_endpoint is missing"),
        ({"jwks_uri": None}, "jwks_uri is missing"),
        ({"jwks_uri": 42}, "jwks_uri is missing"),
        ({"token_endpoint": "http://login.uni.example/token"}, "token_endpoint 'http://"),
        ({"userinfo_endpoint": "ftp://x/userinfo"}, "userinfo_endpoint 'ftp://x/userinfo'"),
        ({"code_challenge_methods_supported": ["plain"]}, "the portal needs S256"),
    ],
)
def test_bad_discovery_names_the_key_and_url(change, named):
    doc = {**DOC, **change}
    doc = {k: v for k, v in doc.items() if v is not None}
    with pytest.raises(DiscoveryError) as bad:
        check_discovery(doc, ISSUER)
    assert str(bad.value).startswith(WELL_KNOWN + ": ")
    assert named in str(bad.value)


@pytest.mark.parametrize("doc", [[], "issuer", None])
def test_discovery_that_is_not_an_object(doc):
    with pytest.raises(DiscoveryError, match=f"{WELL_KNOWN} did not return a JSON object"):
        check_discovery(doc, ISSUER)


# -- id_token -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key():
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


@pytest.fixture(scope="module")
def stray_key():
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


def _claims(**changes):
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "s-1", "aud": "corehour", "iat": now, "exp": now + 300}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(key, alg="RS256", **changes):
    return jose_jwt.encode({"alg": alg, "kid": "k1"}, _claims(**changes), key, algorithms=[alg])


def _verify(token, key, client_id="corehour"):
    public = PyJWK(key.as_dict(private=False)).key
    return verify_id_token(token, public, issuer=ISSUER, client_id=client_id, algorithms=["RS256"])


def test_a_good_id_token_gives_its_claims(key):
    claims = _verify(_token(key, email="anna@uni.example", aud=["corehour", "other"]), key)
    assert (claims["sub"], claims["email"]) == ("s-1", "anna@uni.example")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"exp": int(time.time()) - 120}, "Your sign-in expired"),
        ({"aud": "another-portal"}, "made this sign-in for another application"),
        ({"iss": "https://evil.example"}, f"does not come from {ISSUER}"),
        ({"sub": None}, "token has no 'sub' claim"),
        ({"exp": None}, "token has no 'exp' claim"),
        ({"iat": None}, "token has no 'iat' claim"),
        ({"iat": int(time.time()) + 3600}, "could not be checked"),
    ],
)
def test_id_token_claims_that_refuse(key, changes, message):
    with pytest.raises(ClaimError, match=message):
        _verify(_token(key, **changes), key)


def test_the_client_id_must_be_an_audience(key):
    with pytest.raises(ClaimError, match=r"another application, not this portal \(client 'x'\)"):
        _verify(_token(key), key, client_id="x")


def test_a_tampered_id_token_is_refused(key):
    header, _payload, signature = _token(key).split(".")
    forged = _token(key, sub="s-2").split(".")[1]
    with pytest.raises(ClaimError, match="signature does not match"):
        _verify(f"{header}.{forged}.{signature}", key)


def test_a_token_signed_with_another_key_is_refused(key, stray_key):
    with pytest.raises(ClaimError, match="signature does not match"):
        _verify(_token(stray_key), key)


def test_hs256_keyed_with_the_public_key_is_refused(key):
    # The algorithm-confusion attack: an HMAC "signature" keyed with the public key's bytes.
    # joserfc refuses to build such a key, so the token is put together by hand.
    def part(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    signing_input = f"{header}.{part(json.dumps(_claims()).encode())}"
    mac = hmac.new(key.as_pem(private=False), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{part(mac)}"
    with pytest.raises(ClaimError, match="could not be checked"):
        _verify(token, key)


@pytest.mark.parametrize("junk", ["", "not-a-jwt", "a.b.c"])
def test_junk_is_not_an_id_token(key, junk):
    with pytest.raises(ClaimError, match="could not be checked"):
        _verify(junk, key)


# -- claims and groups --------------------------------------------------------------------


def test_userinfo_adds_to_the_id_token_claims():
    claims = checked_claims(
        {"sub": "s-1", "email": "old@uni.example"},
        {"sub": "s-1", "email": "anna@uni.example", "groups": ["a"]},
        "groups",
    )
    assert claims == {"sub": "s-1", "email": "anna@uni.example", "groups": ["a"]}


def test_userinfo_about_someone_else_is_refused():
    with pytest.raises(ClaimError, match="for another person than its token"):
        checked_claims({"sub": "s-1"}, {"sub": "s-2"}, "groups")
    with pytest.raises(ClaimError, match="for another person than its token"):
        checked_claims({"sub": "s-1"}, {}, "groups")


@pytest.mark.parametrize(
    ("value", "groups"),
    [
        (None, []),
        ([], []),
        ("chem-101", ["chem-101"]),
        (["b", "a", "b"], ["b", "a"]),
        (["/uni/hpc-admins"], ["/uni/hpc-admins"]),
    ],
)
def test_groups_claim(value, groups):
    assert groups_in({"roles": value}, "roles") == groups
    assert groups_in({}, "roles") == []


@pytest.mark.parametrize("junk", [42, {"a": 1}, ["a", 3], ["a", ""], [None]])
def test_a_groups_claim_that_is_not_names_is_refused(junk):
    with pytest.raises(ClaimError, match="'roles' claim is not a list of group names"):
        groups_in({"roles": junk}, "roles")
    with pytest.raises(ClaimError, match="'roles' claim"):
        checked_claims({"sub": "s"}, {"sub": "s", "roles": junk}, "roles")


@pytest.mark.parametrize(
    ("groups", "admin_groups", "admin"),
    [
        (["hpc-admins", "chem-101"], ["hpc-admins"], True),
        (["chem-101"], ["hpc-admins"], False),
        ([], ["hpc-admins"], False),
        (["hpc-admins"], [], False),
        (["HPC-Admins"], ["hpc-admins"], False),  # group names are compared exactly
    ],
)
def test_admin_from_groups(groups, admin_groups, admin):
    assert is_admin(groups, admin_groups) is admin


def test_auth_state_carries_who_and_groups_and_no_tokens():
    claims = {
        "sub": "s-1",
        "email": "Anna.Müller@uni.example",
        "name": "Anna Müller",
        "roles": ["chem-101", "corehour:course-chem101"],
        "groups": ["ignored"],
        "access_token": "secret",
    }
    assert auth_state_for(claims, "roles", ISSUER, "corehour:") == {
        "issuer": ISSUER,
        "sub": "s-1",
        "email": "Anna.Müller@uni.example",
        "name": "Anna Müller",
        "groups": ["chem-101", "corehour:course-chem101"],
        "course_groups": ["course-chem101"],
    }


# -- attack: an e-mail username the provider never checked (issue 12) ---------------------


@pytest.mark.parametrize(
    ("claims", "username_claim"),
    [
        ({"email": "root@evil.example"}, "email"),
        ({"email": "root@evil.example", "email_verified": False}, "email"),
        ({"email": "root@evil.example", "email_verified": "false"}, "email"),
        ({"email": "root@evil.example", "email_verified": 1}, "email"),
        ({"email": "x"}, "email"),  # the email claim is an e-mail whatever it holds
        ({"upn": "hpcadmin@uni.example", "email_verified": False}, "upn"),  # holds an '@'
    ],
)
def test_an_unverified_e_mail_username_is_refused(claims, username_claim):
    with pytest.raises(ClaimError, match="has not verified your e-mail address"):
        require_verified_email({"sub": "s-1", **claims}, username_claim)


@pytest.mark.parametrize(
    ("claims", "username_claim"),
    [
        ({"email": "anna@uni.example", "email_verified": True}, "email"),
        ({"email": "anna@uni.example", "email_verified": "true"}, "email"),  # e.g. Cognito
        ({"preferred_username": "anna"}, "preferred_username"),  # not an e-mail
    ],
)
def test_a_verified_or_non_e_mail_username_passes(claims, username_claim):
    assert require_verified_email({"sub": "s-1", **claims}, username_claim) is None


# -- attack: course roles from groups anyone can make (issue 12) --------------------------


@pytest.mark.parametrize(
    ("groups", "prefix", "trusted"),
    [
        (["course-chem101-instructors"], "corehour:", []),
        (["corehour:course-chem101-instructors"], "corehour:", ["course-chem101-instructors"]),
        (["corehour:", "xcorehour:course-a", "Corehour:course-a"], "corehour:", []),
        (["/corehour/course-a-tas", "/other/course-a"], "/corehour/", ["course-a-tas"]),
    ],
)
def test_only_groups_under_the_prefix_are_course_groups(groups, prefix, trusted):
    assert course_groups(groups, prefix) == trusted


def test_an_unprefixed_instructors_group_gives_no_course_role():
    claims = {"sub": "s-1", "groups": ["course-chem101-instructors", "course-chem101"]}
    state = auth_state_for(claims, "groups", ISSUER, "corehour:")
    assert memberships(state["course_groups"], {"chem101"}) == {}
    claims["groups"].append("corehour:course-chem101-tas")
    state = auth_state_for(claims, "groups", ISSUER, "corehour:")
    assert memberships(state["course_groups"], {"chem101"}) == {"chem101": "ta"}


def test_the_site_s_course_groups_prefix_is_explicit_and_never_empty():
    oidc = {"kind": "oidc", "issuer": ISSUER, "client_id": "c", "client_secret_file": "/s"}
    assert Auth(**oidc).course_groups_prefix == "corehour:"
    assert Auth(**oidc, course_groups_prefix="/hpc/").course_groups_prefix == "/hpc/"
    for bad in ("", "has space"):
        with pytest.raises(ValidationError, match="course_groups_prefix"):
            Auth(**oidc, course_groups_prefix=bad)
    with pytest.raises(Exception, match="empty prefix would trust every group"):
        CorehourOIDCAuthenticator(course_groups_prefix="")


# -- attack: names that sign-in must never hand out (issue 12) ----------------------------

RULES = PersonRules.of(admin_users=["hpcadmin"])


@pytest.mark.parametrize(
    ("account", "first", "message"),
    [
        # root@evil.example gives "root": reserved, even for a subject that holds it.
        (UnixAccount("root", 0), True, "'root' is a reserved name"),
        (UnixAccount("root", 0), False, "'root' is a reserved name"),
        (UnixAccount("root", None), True, "'root' is a reserved name"),
        # HPCAdmin@evil.example gives "hpcadmin", one of hub.admin_users.
        (UnixAccount("hpcadmin", 1001), True, "one of the portal's admins"),
        (UnixAccount("hpcadmin", None), False, "one of the portal's admins"),
        # A system account not on the reserved list, even one an admin linked.
        (UnixAccount("backupsvc", 998), False, "a system account (uid 998)"),
        # A person's local account that no provider subject holds.
        (UnixAccount("chtest1", 1001), True, "already belongs to a local account"),
    ],
)
def test_sign_in_never_hands_out(account, first, message):
    refusal = sign_in_refusal(account, RULES, first_sign_in=first, in_passwd_file=True)
    assert refusal is not None and message in refusal
    assert refusal.startswith(f"Your sign-in gives the account name '{account.name}'")


@pytest.mark.parametrize(
    ("account", "first", "in_file", "adopt"),
    [
        (UnixAccount("anna-muller", None), True, False, False),  # new: the portal makes it
        (UnixAccount("anna-muller", 1500), False, True, False),  # held by this subject
        (UnixAccount("anna-muller", 1500), True, False, True),  # the directory's, adopted
    ],
)
def test_sign_in_gives(account, first, in_file, adopt):
    refusal = sign_in_refusal(
        account, RULES, first_sign_in=first, in_passwd_file=in_file, adopt_directory_accounts=adopt
    )
    assert refusal is None


def test_adopting_directory_accounts_never_adopts_the_machine_s_own():
    local = UnixAccount("ubuntu", 1000)
    refusal = sign_in_refusal(
        local, RULES, first_sign_in=True, in_passwd_file=True, adopt_directory_accounts=True
    )
    assert "already belongs to a local account" in refusal


def test_the_passwd_file_is_read_by_name(tmp_path):
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/bash\nchtest1:x:1001:1002::/home/chtest1:/bin/sh\n")
    assert in_passwd_file("chtest1", passwd) and in_passwd_file("root", passwd)
    assert not in_passwd_file("chtest", passwd) and not in_passwd_file("x", passwd)
    assert in_passwd_file("anyone", tmp_path / "unreadable")  # fails closed: never adopted


def test_the_authenticator_refuses_its_admin_users_and_reserved_names():
    authenticator = CorehourOIDCAuthenticator(admin_users={"hpcadmin"})
    for name in ("hpcadmin", "root", "slurm", "corehour"):
        with pytest.raises(IdentityError, match="which is refused"):
            authenticator.check_name(name, True)
    authenticator = CorehourOIDCAuthenticator(reserved_names={"labadmin"}, min_uid=5000)
    with pytest.raises(IdentityError, match="'labadmin' is a reserved name"):
        authenticator.check_name("labadmin", True)
    assert authenticator.check_name("nobody-has-this-name-x", True) is None


# -- the authenticator's own rules --------------------------------------------------------


def _auth_model(groups, admin=None, name="anna-muller"):
    state = auth_state_for({"sub": "s-1", "groups": groups}, "groups", ISSUER, "corehour:")
    return {"name": name, "admin": admin, "auth_state": state}


@pytest.mark.parametrize(
    ("groups", "admin_before", "admin_after"),
    [
        (["hpc-admins"], None, True),
        (["chem-101"], None, False),  # explicit False: an admin flag set by hand is taken back
        # Attack: a name in admin_users (OAuthenticator marks it admin) gets nothing by name.
        (["chem-101"], True, False),
    ],
)
def test_the_authenticator_makes_admins_from_groups_only(groups, admin_before, admin_after):
    authenticator = CorehourOIDCAuthenticator(
        provider_admin_groups={"hpc-admins"}, admin_users={"hpcadmin"}
    )
    model = _auth_model(groups, admin_before, name="hpcadmin")
    model = asyncio.run(authenticator.update_auth_model(model))
    assert model["admin"] is admin_after


def test_the_authenticator_defaults():
    authenticator = CorehourOIDCAuthenticator()
    assert authenticator.enable_pkce
    assert not authenticator.manage_groups
    assert not authenticator.enable_auth_state
    assert authenticator.username_claim == "email"
    assert authenticator.scope == ["openid", "email", "profile", "groups"]
    assert authenticator.id_token_algorithms == ["RS256"]
    assert authenticator.login_service == "your institution"
    assert authenticator.course_groups_prefix == "corehour:"
    assert authenticator.min_uid == 1000
    assert {"root", "slurm", "corehour"} <= authenticator.reserved_names
    assert authenticator.adopt_directory_accounts is False


# -- the client secret --------------------------------------------------------------------


def test_secret_file_read_when_root_only(tmp_path):
    path = tmp_path / "secret"
    path.write_text("s3cret\n")
    path.chmod(0o600)
    assert read_secret_file(path) == "s3cret"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_secret_file_readable_by_others_is_refused(tmp_path, mode):
    path = tmp_path / "secret"
    path.write_text("s3cret")
    path.chmod(mode)
    with pytest.raises(SecretFileError) as bad:
        read_secret_file(path)
    assert str(bad.value) == (
        f"auth.client_secret_file: {path} can be read by others (mode {mode:04o}); "
        f"make it root-only with: chmod 600 {path}"
    )


def test_missing_or_empty_secret_file(tmp_path):
    with pytest.raises(SecretFileError, match=r"auth.client_secret_file: cannot read .*missing"):
        read_secret_file(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    os.chmod(empty, 0o600)
    with pytest.raises(SecretFileError, match="is empty"):
        read_secret_file(empty)
