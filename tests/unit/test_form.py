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
