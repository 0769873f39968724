"""The admins' cluster overview in a real browser, at desktop and phone width."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.helpers import log_in, shot
from tests.harness import TEST_ADMIN

pytestmark = pytest.mark.browser


def test_an_admin_reads_the_overview_on_a_desktop_and_on_a_phone(portal, browser):
    wait = WebDriverWait(browser, 60)
    log_in(browser, portal, TEST_ADMIN)
    browser.set_window_size(1280, 900)
    browser.get(f"{portal.url}/hub/home")
    browser.find_element(By.ID, "nav-overview").click()
    alpha = wait.until(lambda b: b.find_element(By.ID, "ch-overview-alpha"))
    assert "of 32 (" in alpha.text, alpha.text
    assert "not answering" not in alpha.text
    assert browser.find_element(By.ID, "ch-overview-all-clusters").text.startswith("all clusters")
    shot(browser, "overview-desktop")

    browser.set_window_size(390, 844)
    browser.refresh()
    wait.until(lambda b: b.find_element(By.ID, "ch-overview-alpha"))
    # The page itself never scrolls sideways on a phone; a wide table scrolls in its own box.
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow} px wider than a phone"
    shot(browser, "overview-phone")
