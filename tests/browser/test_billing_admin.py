"""The billing admin page in a real browser: a top-up with a reason, the audit trail, exports."""

import csv
import io

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.helpers import log_in, shot
from tests.harness import TEST_ADMIN, ensure_users

pytestmark = pytest.mark.browser


def test_an_admin_tops_up_with_a_reason_and_reads_the_audit_trail(portal, browser, tokens):
    ensure_users(TEST_ADMIN)
    account = portal.wait_billing(tokens["chtest3"])["accounts"][0]["name"]
    before = portal.billing("GET", f"api/accounts/{account}", tokens["chtest3"]).json()[
        "balance_mc"
    ]

    log_in(browser, portal, TEST_ADMIN)
    browser.get(f"{portal.url}/services/billing/admin")
    wait = WebDriverWait(browser, 60)
    wait.until(ready.presence_of_element_located((By.ID, "topup-form")))
    Select(browser.find_element(By.ID, "tx-account")).select_by_visible_text(account)
    browser.find_element(By.ID, "tx-amount").send_keys("7.5")
    browser.find_element(By.ID, "tx-reason").send_keys("course grant for week 3")
    browser.find_element(By.CSS_SELECTOR, "#topup-form button[type=submit]").click()

    wait.until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, ".alert-success"), "7.500"))
    audit = browser.find_element(By.ID, "audit").text
    assert "course grant for week 3" in audit and TEST_ADMIN in audit
    after = portal.billing("GET", f"api/accounts/{account}", tokens["chtest3"]).json()["balance_mc"]
    assert after - before == 7500

    # A negative top-up is refused on the page, naming the field; nothing moves.
    Select(browser.find_element(By.ID, "tx-account")).select_by_visible_text(account)
    browser.find_element(By.ID, "tx-amount").send_keys("-3")
    browser.find_element(By.ID, "tx-reason").send_keys("oops")
    browser.find_element(By.CSS_SELECTOR, "#topup-form button[type=submit]").click()
    wait.until(ready.text_to_be_present_in_element((By.CSS_SELECTOR, ".alert-danger"), "amount:"))
    again = portal.billing("GET", f"api/accounts/{account}", tokens["chtest3"]).json()["balance_mc"]
    assert again == after

    assert browser.find_element(By.CSS_SELECTOR, "#usage-chart .main-svg")
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    export = requests.get(
        browser.find_element(By.ID, "usage-csv").get_attribute("href"), cookies=cookies, timeout=30
    )
    assert export.status_code == 200
    header = next(csv.reader(io.StringIO(export.text)))
    assert header == ["account", "jobs", "core_hours", "gpu_hours", "amount"]
    browser.set_window_size(390, 844)
    shot(browser, "billing-admin-phone")
