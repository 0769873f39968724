"""Site-file validation: a bad file names the bad key."""

import copy

import pytest
import yaml

from centre.site import SiteConfigError, load_site, parse_site

from .conftest import EXAMPLE_SITE


@pytest.fixture
def raw():
    return yaml.safe_load(EXAMPLE_SITE.read_text())


def test_example_site_loads(site):
    assert list(site.clusters) == ["alpha", "beta"]
    assert site.clusters_for("cpu") == ("alpha", "beta")
    assert site.clusters_for("gpu") == ("alpha",)
    assert site.clusters_for("bigmem") == ("beta",)
    assert site.clusters["alpha"].partitions["gpu"].gpus_per_node == 4


def _mutate(raw, path, value):
    data = copy.deepcopy(raw)
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (["clusters", "alpha", "slurm_cnf"], "/x", "clusters.alpha.slurm_cnf: unknown key"),
        (["profiles", "cpu", "cores", "max"], "lots", "profiles.cpu.cores.max"),
        (["profiles", "cpu", "cores", "default"], 99, "profiles.cpu.cores"),
        (
            ["profiles", "cpu", "images"],
            ["base", "nope"],
            "profiles.cpu.images: unknown image 'nope'",
        ),
        (["profiles", "gpu", "clusters"], ["beta"], "cluster 'beta' has no partition 'gpu'"),
        (["profiles", "cpu", "gpus"], {"min": 0, "max": 1, "default": 0}, "profiles.cpu.gpus.max"),
        (["default_profile"], "huge", "default_profile: 'huge' is not a profile"),
        (["clusters", "Alpha!"], {"partitions": {"cpu": {}}}, "clusters.Alpha!"),
        (["images", "base", "prefix"], "relative/path", "images.base.prefix"),
        (["clusters", "alpha", "partitions"], {}, "clusters.alpha"),
        (["hub", "poll_interval"], -1, "hub.poll_interval"),
        (
            ["logging"],
            {"level": "LOUD"},
            "logging.level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'",
        ),
        (["logging"], {"format": "xml"}, "logging.format: Input should be 'text' or 'json'"),
        (["logging"], {"formt": "json"}, "logging.formt: unknown key"),
        (
            ["profiles", "cpu", "cores"],
            {"min": 0, "max": 4, "default": 1},
            "profiles.cpu.cores.min",
        ),
        (["profiles"], KeyError, "profiles: Field required"),
    ],
)
def test_bad_site_names_the_key(raw, path, value, named):
    with pytest.raises(SiteConfigError) as bad:
        parse_site(_mutate(raw, path, value), "site.yaml")
    assert named in str(bad.value)
    assert str(bad.value).startswith("The site file site.yaml is not valid")


def test_logging_defaults_to_info_as_text(site):
    assert (site.logging.level, site.logging.format) == ("INFO", "text")


def test_unreadable_and_non_yaml_files(tmp_path):
    with pytest.raises(SiteConfigError, match="Cannot read the site file"):
        load_site(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [unclosed\n")
    with pytest.raises(SiteConfigError, match="not valid YAML"):
        load_site(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(SiteConfigError, match="YAML mapping"):
        load_site(listing)


OIDC = {
    "kind": "oidc",
    "issuer": "https://login.uni.example/realms/hpc",
    "client_id": "corehour",
    "client_secret_file": "/etc/corehour/oidc-client-secret",
}


def test_auth_defaults_to_pam(site):
    assert site.auth.kind == "pam"
    assert site.auth.issuer is None


def test_an_oidc_auth_section_with_its_defaults(raw):
    auth = parse_site({**raw, "auth": OIDC}).auth
    assert (auth.kind, auth.issuer, auth.client_id) == ("oidc", OIDC["issuer"], "corehour")
    assert auth.client_secret_file == "/etc/corehour/oidc-client-secret"
    assert (auth.username_claim, auth.groups_claim) == ("email", "groups")
    assert auth.admin_groups == ()
    assert auth.scopes == ("openid", "email", "profile", "groups")
    assert auth.login_service == "your institution"
    assert auth.callback_url is None


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:27750", "http://localhost:8080/realms/test", "https://idp.example"]
)
def test_oidc_issuer_is_https_or_local_http(raw, issuer):
    assert parse_site({**raw, "auth": {**OIDC, "issuer": issuer}}).auth.issuer == issuer


@pytest.mark.parametrize(
    ("auth", "named"),
    [
        ({"kind": "ldap"}, "auth.kind: Input should be 'pam' or 'oidc'"),
        (
            {**OIDC, "issuer": "http://login.uni.example"},
            "auth.issuer: 'http://login.uni.example' must be an https:// URL",
        ),
        (
            {**OIDC, "issuer": "login.uni.example"},
            "auth.issuer: 'login.uni.example' must be an https:// URL",
        ),
        (
            {**OIDC, "issuer": "https://idp.example/?realm=x"},
            "auth.issuer: 'https://idp.example/?realm=x' must have no ?query",
        ),
        (
            {**OIDC, "callback_url": "http://portal.example/hub/oauth_callback"},
            "auth.callback_url:",
        ),
        (
            {k: v for k, v in OIDC.items() if k != "issuer"},
            "auth: issuer: required when kind is oidc",
        ),
        (
            {k: v for k, v in OIDC.items() if k != "client_id"},
            "auth: client_id: required when kind is oidc",
        ),
        (
            {k: v for k, v in OIDC.items() if k != "client_secret_file"},
            "auth: client_secret_file: required",
        ),
        (
            {**OIDC, "client_secret_file": "secret.txt"},
            "auth.client_secret_file: String should match",
        ),
        ({**OIDC, "client_secret": "hunter2"}, "auth.client_secret: unknown key"),
        ({**OIDC, "client_id": "has space"}, "auth.client_id: String should match"),
        ({**OIDC, "scopes": ["email", "groups"]}, "auth: scopes: must include 'openid'"),
        ({**OIDC, "scopes": ["openid", "two words"]}, "auth.scopes.1: String should match"),
        ({**OIDC, "username_claim": ""}, "auth.username_claim: String should match"),
        (
            {**OIDC, "admin_groups": "hpc-admins"},
            "auth.admin_groups: Input should be a valid tuple",
        ),
        ({**OIDC, "login_service": ""}, "auth.login_service: String should have at least 1"),
        ({"issuer": OIDC["issuer"]}, "auth: issuer: only used with kind: oidc"),
    ],
)
def test_bad_auth_names_the_key(raw, auth, named):
    with pytest.raises(SiteConfigError) as bad:
        parse_site({**raw, "auth": auth}, "site.yaml")
    assert named in str(bad.value)


# A name that ends in a newline would reach a Slurm argument, an ssh command or a file path
# as two lines.  The patterns are checked with Python's re, whose $ also matches before a
# final newline; each must still refuse one.
@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (["clusters", "alpha\n"], {"partitions": {"cpu": {}}}, "clusters.'alpha\\n'.[key]"),
        (["images", "base", "prefix"], "/opt/envs/base\n", "images.base.prefix"),
        (["profiles", "cpu", "partition"], "cpu\n", "profiles.cpu.partition"),
        (["default_profile"], "cpu\n", "default_profile"),
        (
            ["clusters", "beta", "ssh"],
            {"host": "login.beta\n", "user": "corehour"},
            "clusters.beta.ssh.host",
        ),
        (
            ["clusters", "beta", "ssh"],
            {"host": "login.beta", "user": "corehour\n"},
            "clusters.beta.ssh.user",
        ),
        (["auth"], {**OIDC, "client_id": "corehour\n"}, "auth.client_id"),
        (["auth"], {**OIDC, "username_claim": "email\n"}, "auth.username_claim"),
        (["auth"], {**OIDC, "scopes": ["openid\n"]}, "auth.scopes.0"),
        (["auth"], {**OIDC, "course_groups_prefix": "corehour:\n"}, "auth.course_groups_prefix"),
    ],
)
def test_a_name_with_a_trailing_newline_is_refused(raw, path, value, named):
    with pytest.raises(SiteConfigError) as bad:
        parse_site(_mutate(raw, path, value), "site.yaml")
    assert f"{named}: String should match pattern" in str(bad.value)
