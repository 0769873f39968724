from pathlib import Path

import pytest

from centre.site import load_site

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_SITE = REPO / "deploy" / "site.example.yaml"
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def site():
    return load_site(EXAMPLE_SITE)
