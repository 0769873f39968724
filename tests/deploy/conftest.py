"""What the deploy tier's HTTPS tests share: a test certificate authority per module."""

from pathlib import Path

import pytest

from tests.certificates import make_ca


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> dict[str, Path]:
    return make_ca(tmp_path_factory.mktemp("ca"))
