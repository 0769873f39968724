"""A real headless Chromium (Debian's) driven through Selenium, and screenshots for people."""

import pytest

from tests.browser.helpers import chromium


@pytest.fixture
def browser():
    driver = chromium()
    yield driver
    driver.quit()
