"""HTTPS in the site file: the modes are checked against the address, the proxy's command line
follows them, and the hub sets Secure cookies and HSTS only over HTTPS."""

from __future__ import annotations

import copy

import pytest
from traitlets.config import Config

from centre.proxy_command import proxy_argv
from centre.site import HubSettings, SiteConfigError, parse_site
from roots.hub import HubFacts, apply_site

pytestmark = pytest.mark.unit

PROXY_TLS = {
    "bind_url": "https://portal.example.org",
    "tls": {"mode": "proxy", "certificate": "/etc/corehour/tls/cert.pem", "key": "/k.pem"},
}


def with_hub(raw_site: dict, **hub) -> dict:
    data = copy.deepcopy(raw_site)
    data["hub"].update(hub)
    return data


@pytest.fixture
def raw(site):
    return site.model_dump(mode="json")


@pytest.mark.parametrize(
    ("hub", "named"),
    [
        ({"bind_url": "https://portal.example.org"}, "bind_url is https but tls.mode is off"),
        (
            {"tls": {"mode": "proxy", "certificate": "/c", "key": "/k"}},
            "bind_url must start with https",
        ),
        (
            {"bind_url": "https://p.example.org", "tls": {"mode": "proxy"}},
            "needs tls.certificate and tls.key",
        ),
        ({"bind_url": "ftp://p.example.org"}, "must start with http:// or https://"),
        (
            {"bind_url": "https://p", "tls": {"mode": "front", "front_listen": "https://x"}},
            "front_listen",
        ),
        ({"tls": {"mode": "tls13"}}, "hub.tls.mode"),
        ({"tls": {"sertificate": "/c"}}, "hub.tls.sertificate: unknown key"),
    ],
)
def test_a_tls_setting_that_does_not_fit_names_the_key(raw, hub, named):
    with pytest.raises(SiteConfigError) as bad:
        parse_site(with_hub(raw, **hub), "site.yaml")
    assert named in str(bad.value)


def test_the_demo_proxy_serves_plain_http_on_its_loopback_address(site):
    argv = proxy_argv(site.hub)
    assert "--ip=127.0.0.1" in argv and "--port=8000" in argv
    assert not [a for a in argv if a.startswith(("--ssl", "--redirect"))]


def test_the_proxy_serves_https_and_redirects_plain_http():
    argv = proxy_argv(HubSettings(**PROXY_TLS))
    assert "--port=443" in argv and "--ip=0.0.0.0" in argv
    assert "--ssl-cert=/etc/corehour/tls/cert.pem" in argv and "--ssl-key=/k.pem" in argv
    assert "--redirect-port=80" in argv and "--redirect-to=443" in argv
    # The API token travels in the environment, never on the command line.
    assert not [a for a in argv if "token" in a.lower()]


def test_no_redirect_when_the_site_turns_it_off():
    hub = HubSettings(**{**PROXY_TLS, "tls": {**PROXY_TLS["tls"], "redirect_http_port": 0}})
    assert not [a for a in proxy_argv(hub) if a.startswith("--redirect")]


def test_behind_a_front_server_the_proxy_listens_where_the_front_sends():
    hub = HubSettings(
        bind_url="https://portal.example.org",
        tls={"mode": "front", "front_listen": "http://127.0.0.1:8100"},
    )
    argv = proxy_argv(hub)
    assert "--ip=127.0.0.1" in argv and "--port=8100" in argv
    assert not [a for a in argv if a.startswith(("--ssl", "--redirect"))]


def applied(site) -> Config:
    c = Config()
    apply_site(c, site, HubFacts(), "/var/lib/corehour/hub", "/etc/corehour/site.yaml")
    return c


def test_over_https_the_hub_sets_secure_cookies_and_hsts(raw):
    c = applied(parse_site(with_hub(raw, **PROXY_TLS), "site.yaml"))
    # JupyterHub makes its and the services' cookies Secure when public_url is https.
    assert c.JupyterHub.public_url == "https://portal.example.org"
    settings = c.JupyterHub.tornado_settings.get_value({})
    assert settings["headers"]["Strict-Transport-Security"] == "max-age=31536000"
    # And the cookies JupyterHub sets outside its login code (_xsrf) are Secure too.
    assert settings["cookie_options"] == {"secure": True}


def test_plain_http_sends_no_hsts(site):
    c = applied(site)
    assert "public_url" not in c.JupyterHub
    assert "tornado_settings" not in c.JupyterHub
