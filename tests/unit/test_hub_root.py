"""The hub's composition root applied to a bare traitlets Config(), as TLJH tests its
configurer: it only sets values, from the site and the facts gathered before it."""

from __future__ import annotations

import copy

import pytest
from traitlets.config import Config

from billing_hooks.admission import BillingAdmission
from centre.api_scopes import PUBLIC_SCOPES
from centre.site import parse_site
from extensions.courses.spawn_rules import CourseAdmission
from extensions.sso.discovery import Discovery
from roots.hub import apply_site
from roots.hub_facts import HubFacts, gather

from .conftest import REPO

pytestmark = pytest.mark.unit

APP = {
    "slug": "composer",
    "title": "Job Composer",
    "notebook": "job_composer/composer.ipynb",
    "profile": "small",
    "image": "base",
}
PROVIDER = Discovery(
    issuer="https://idp.example.org",
    authorization_endpoint="https://idp.example.org/authorize",
    token_endpoint="https://idp.example.org/token",
    userinfo_endpoint="https://idp.example.org/userinfo",
    jwks_uri="https://idp.example.org/jwks",
)


def applied(site, facts=None, tmp_path="/var/lib/corehour/hub") -> Config:
    c = Config()
    apply_site(c, site, facts or HubFacts(apps={"composer": APP}), tmp_path, "/etc/site.yaml")
    return c


def test_a_billed_site_admits_through_billing_then_the_course_then_the_money(site):
    c = applied(site)
    steps = c.CorehourSpawner.admission
    billing = steps[0].__self__
    assert isinstance(billing, BillingAdmission)
    assert steps[0] == billing.choose_account
    assert isinstance(steps[1], CourseAdmission)
    assert steps[2] == billing.check_money
    assert c.CorehourSpawner.form_billing == billing.form


def test_the_steps_stay_one_object_when_traitlets_copies_them_into_a_spawner(site):
    # traitlets deep-copies config values into every spawner; the steps hold the ledger's
    # engines and Slurm's memory, which every spawner must share.
    steps = applied(site).CorehourSpawner.admission
    copied = copy.deepcopy(steps)
    assert copied[0].__self__ is steps[0].__self__
    assert copied[1] is steps[1]


def test_the_billing_service_starts_through_its_composition_root(site):
    services = {s["name"]: s for s in applied(site).JupyterHub.services}
    assert services["billing"]["command"][1:4] == ["-m", "roots.billing", "--site"]
    assert services["billing"]["environment"]["COREHOUR_SITE"] == "/etc/site.yaml"


def test_the_services_run_the_checkout_the_hub_runs(site):
    for service in applied(site).JupyterHub.services:
        assert service["environment"]["PYTHONPATH"] == str(REPO)


def test_the_site_sets_the_hubs_log_level_and_format(site):
    c = applied(site)
    assert c.Application.log_level == "INFO"
    assert c.Application.log_format.startswith("[%(levelname).1s %(asctime)s.%(msecs)03d")
    # corehour's loggers go through the hub's own handler, at the site's level
    assert c.Application.logging_config["loggers"]["corehour"] == {"level": "INFO"}
    assert c.Application.logging_config["root"]["handlers"] == ["console"]

    data = {**site.model_dump(mode="json"), "logging": {"level": "DEBUG", "format": "json"}}
    c = applied(parse_site(data, "json"))
    assert c.Application.log_level == "DEBUG"
    console = c.Application.logging_config["formatters"]["console"]
    assert console["class"] == "centre.logs.JsonLinesFormatter"
    assert c.Application.logging_config["loggers"]["corehour"] == {"level": "DEBUG"}


def test_course_roles_come_from_the_gathered_facts(site):
    facts = HubFacts(course_students={"phys101": ["chs01", "chs02"]})
    roles = applied(site, facts).JupyterHub.load_roles
    names = {role["name"] for role in roles}
    assert {"billing", "idle-culler", "user"} <= names
    assert any("phys101" in name for name in names)


def test_applying_twice_gives_the_same_config(site):
    facts = HubFacts(apps={"composer": APP}, course_students={"phys101": ["chs01"]})
    once = applied(site, facts)
    twice = applied(site, facts)
    apply_site(twice, site, facts, "/var/lib/corehour/hub", "/etc/site.yaml")
    assert twice.JupyterHub.load_roles == once.JupyterHub.load_roles
    assert twice.JupyterHub.services == once.JupyterHub.services
    assert twice.CorehourSpawner.apps == once.CorehourSpawner.apps == {"composer": APP}
    assert twice.Application == once.Application


def test_a_site_without_billing_admits_every_valid_request_unbilled(site):
    free = parse_site({**site.model_dump(mode="json"), "billing": None}, "free")
    c = applied(free)
    assert "admission" not in c.CorehourSpawner
    assert "form_billing" not in c.CorehourSpawner
    assert "services" not in c.JupyterHub


def test_every_person_holds_the_public_apis_scopes_billed_or_not(site):
    for model, services in (
        (site, ["access:services!service=billing"]),
        (parse_site({**site.model_dump(mode="json"), "billing": None}, "free"), []),
    ):
        c = applied(model)
        (role,) = [r for r in c.JupyterHub.load_roles if r["name"] == "user"]
        assert role["scopes"] == ["self", *services, *PUBLIC_SCOPES]
        # JupyterHub refuses a role that names a scope it was not told about.
        assert set(PUBLIC_SCOPES) <= set(c.JupyterHub.custom_scopes)
    assert "custom:corehour-courses:sync" in applied(site).JupyterHub.custom_scopes


def test_the_public_api_routes_are_in_the_hub(site):
    patterns = [pattern for pattern, *_ in applied(site).JupyterHub.extra_handlers]
    assert "/api/corehour/openapi.yaml" in patterns
    assert any(p.startswith("/api/corehour/jobs/") and p.endswith("/cancel") for p in patterns)


def test_single_sign_on_uses_the_gathered_provider_and_secret(site, tmp_path):
    data = site.model_dump(mode="json")
    data["auth"] = {
        "kind": "oidc",
        "issuer": PROVIDER.issuer,
        "client_id": "corehour",
        "client_secret_file": "/etc/corehour/secrets/oidc",
    }
    c = applied(parse_site(data, "sso"), HubFacts(provider=PROVIDER, client_secret="s3cret"))
    oidc = c.CorehourOIDCAuthenticator
    assert c.JupyterHub.authenticator_class == "extensions.sso.oidc.CorehourOIDCAuthenticator"
    assert oidc.authorize_url == PROVIDER.authorization_endpoint
    assert oidc.client_secret == "s3cret"
    assert callable(oidc.post_auth_hook)


def test_gather_stops_the_hub_on_a_bad_catalogue_naming_the_app(site, tmp_path, capsys):
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text("apps:\n  - slug: Bad Slug\n")
    free = parse_site({**site.model_dump(mode="json"), "billing": None}, "free")
    with pytest.raises(SystemExit) as stopped:
        gather(free, catalogue)
    assert stopped.value.code == 2
    assert "slug" in capsys.readouterr().err


def test_gather_reads_the_catalogue_as_plain_data(site):
    free = parse_site({**site.model_dump(mode="json"), "billing": None}, "free")
    facts = gather(free)
    assert facts.apps and all(app["slug"] == slug for slug, app in facts.apps.items())
    assert facts.provider is None and facts.course_students == {}


def test_the_scrapers_token_reads_metrics_and_nothing_else(site, monkeypatch):
    monkeypatch.setenv("COREHOUR_METRICS_TOKEN", "a" * 64)
    c = applied(site)
    assert {"name": "metrics", "api_token": "a" * 64} in c.JupyterHub.services
    (role,) = [r for r in c.JupyterHub.load_roles if r["name"] == "metrics"]
    assert role == {"name": "metrics", "services": ["metrics"], "scopes": ["read:metrics"]}


def test_no_scraper_without_its_token_and_a_short_token_is_refused(site, monkeypatch):
    monkeypatch.delenv("COREHOUR_METRICS_TOKEN", raising=False)
    c = applied(site)
    assert all(s["name"] != "metrics" for s in c.JupyterHub.services)
    monkeypatch.setenv("COREHOUR_METRICS_TOKEN", "password")
    with pytest.raises(SystemExit):
        applied(site)


def test_the_history_secret_is_made_once_and_a_weak_one_stops_the_hub(tmp_path):
    from centre.job_samples import report_key
    from roots.hub import history_secret

    path = tmp_path / "job-history.key"
    secret = history_secret(path)
    assert len(secret) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert history_secret(path) == secret  # a restart keeps running jobs' keys
    assert not list(tmp_path.glob(".job-history.key.*"))  # no draft left behind
    # The attack: an empty (or truncated) file would be an empty HMAC key that anyone can use.
    path.write_text("")
    with pytest.raises(SystemExit):
        history_secret(path)
    assert report_key(b"", "chtest1", "alpha")  # what such a key would have allowed
    path.write_text(secret.hex())
    path.chmod(0o640)
    with pytest.raises(SystemExit):
        history_secret(path)
