"""The OpenAPI file documents exactly the routes the billing service serves."""

import re

import pytest
import yaml

from billing_hooks.service.app import OPENAPI_FILE, _pattern, api_routes
from roots.billing import PLUGINS

pytestmark = pytest.mark.unit


def test_every_route_is_documented_and_every_documented_path_is_served():
    document = yaml.safe_load(OPENAPI_FILE.read_text())
    assert document["openapi"].startswith("3.")
    documented = {path.lstrip("/") for path in document["paths"]}
    assert documented == set(api_routes(PLUGINS))


def test_route_patterns_match_what_they_document():
    assert re.fullmatch(_pattern("accounts/{name}/charges"), "accounts/u-alice/charges")
    assert not re.fullmatch(_pattern("accounts/{name}"), "accounts/a/b")
    assert re.fullmatch(_pattern("notices/{id}/dismiss"), "notices/12/dismiss")
    assert not re.fullmatch(_pattern("notices/{id}/dismiss"), "notices/x/dismiss")
    assert re.fullmatch(_pattern("openapi.yaml"), "openapi.yaml")
    assert not re.fullmatch(_pattern("openapi.yaml"), "openapiXyaml")
