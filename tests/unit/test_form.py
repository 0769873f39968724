"""The spawn form shows every choice and limit from the site file."""

import json
import re

from spawners.form import render_options_form


def test_form_lists_choices_and_limits(site):
    html = render_options_form(site)
    for field in ("profile", "cluster", "cores", "memory_gb", "gpus", "walltime_hours", "image"):
        assert f'name="{field}"' in html
    assert '<option value="auto" selected>' in html
    assert re.search(r'id="ch-cores"[^>]*min="1" max="8"', html.replace("\n", " "))
    assert "1 to 8 cores" in html
    data = json.loads(re.search(r'id="corehour-form-data">(.*?)</script>', html, re.S).group(1))
    assert data["profiles"]["gpu"]["clusters"] == ["alpha"]
    assert data["profiles"]["gpu"]["gpus"] == {"min": 1, "max": 4, "default": 1}
    assert data["profiles"]["bigmem"]["clusters"] == ["beta"]


def test_site_text_is_escaped(site):
    hostile = site.model_copy(
        update={
            "profiles": {
                **site.profiles,
                "cpu": site.profiles["cpu"].model_copy(
                    update={
                        "display_name": "<img src=x onerror=alert(1)>",
                        "description": "</script><b>",
                    }
                ),
            }
        }
    )
    html = render_options_form(hostile)
    assert "<img src=x" not in html
    assert "</script><b>" not in html


def billing_context(label="alice (personal): 100.000 available"):
    return {
        "currency": "credits",
        "minimum_run_minutes": 15,
        "prices": {
            "alpha": {"cpu": {"core_hour": "0.05", "gpu_hour": "0", "gb_mem_hour": "0.005"}}
        },
        "accounts": [
            {"name": "u-alice", "label": label, "available_mc": 100000, "multiplier": "1"},
            {
                "name": "proj-x",
                "label": "Project X: 5.000 available",
                "available_mc": 5000,
                "multiplier": "0.5",
            },
        ],
        "usage_url": "/services/billing/usage",
    }


def test_with_billing_the_form_offers_accounts_and_a_live_price(site):
    html = render_options_form(site, billing_context())
    assert 'name="account"' in html
    assert '<option value="u-alice" selected>' in html and '<option value="proj-x">' in html
    assert 'id="ch-price-per-hour"' in html and 'aria-live="polite"' in html
    data = json.loads(re.search(r'id="corehour-form-data">(.*?)</script>', html, re.S).group(1))
    assert data["billing"]["prices"]["alpha"]["cpu"]["core_hour"] == "0.05"
    assert data["partitions"]["gpu"] == "gpu"


def test_without_billing_there_is_no_account_or_price(site):
    html = render_options_form(site)
    assert 'name="account"' not in html and 'id="ch-price-per-hour"' not in html


def test_account_labels_are_escaped(site):
    html = render_options_form(site, billing_context(label="<script>alert(1)</script>"))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_the_recent_use_panel_only_with_its_api(site):
    assert 'id="ch-recent"' not in render_options_form(site)
    html = render_options_form(site, recent_use_url="/hub/api/corehour/jobs")
    assert 'id="ch-recent"' in html
    data = json.loads(re.search(r'id="corehour-form-data">(.*?)</script>', html, re.S).group(1))
    assert data["recent_use_url"] == "/hub/api/corehour/jobs"
