"""The phone status view at phone size (390×844, touch): a running server and a running batch
job with their costs, cancelling the job after confirming, and the installed page offline."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.billing_checks import wait_until
from tests.browser.helpers import log_in, shot
from tests.harness import slurm

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}
PHONE_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0 Mobile Safari/537.36"
)


def as_phone(browser) -> None:
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    browser.execute_cdp_cmd(
        "Emulation.setTouchEmulationEnabled", {"enabled": True, "maxTouchPoints": 5}
    )
    browser.execute_cdp_cmd("Network.setUserAgentOverride", {"userAgent": PHONE_AGENT})


def card(browser, reference: str):
    return browser.find_element(By.CSS_SELECTOR, f'li.ch-job[data-job="{reference}"]')


def queued_on_beta(job_id: str) -> bool:
    return job_id in slurm("beta", "squeue", "-h", "-u", "chtest1", "-o", "%i").stdout.split()


def test_the_status_view_shows_costs_cancels_after_confirming_and_works_offline(
    browser, portal, tokens
):
    portal.wait_billing(tokens["chtest1"])
    portal.start_and_wait([("chtest1", "")], tokens, profile="cpu", cluster="alpha")
    server = portal.server_model("chtest1")
    submitted = portal.request(
        "POST",
        "/corehour/jobs/beta",
        tokens["chtest1"],
        json={"script": "sleep 300", "name": "phone-job", "memory_gb": 1},
    )
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["job_id"]
    wait_until(lambda: queued_on_beta(job_id), 30, "the batch job did not queue")
    short = portal.request(
        "POST",
        "/corehour/jobs/beta",
        tokens["chtest1"],
        json={"script": "echo short; sleep 2", "name": "phone-short", "memory_gb": 1},
    )
    assert short.status_code == 201, short.text
    short_id = short.json()["job_id"]

    as_phone(browser)
    log_in(browser, portal, "chtest1")
    browser.get(f"{portal.url}/m")  # the short address
    assert browser.current_url.endswith("/hub/m/")
    assert browser.execute_script("return innerWidth") == 390
    assert browser.execute_script("return navigator.maxTouchPoints") == 5

    def running_with_costs(b):
        cards = {
            "batch": b.find_elements(
                By.CSS_SELECTOR, f'li.ch-job.running[data-job="beta/{job_id}"]'
            ),
            "server": b.find_elements(By.CSS_SELECTOR, 'li.ch-job.running[data-kind="server"]'),
        }
        if not all(cards.values()):
            return False
        found = {kind: found[0] for kind, found in cards.items()}
        costs = [c.find_element(By.CSS_SELECTOR, ".ch-cost").text for c in found.values()]
        # Both have cost something: the page refreshes every 10 s.
        return (
            all(cost.endswith(" credits") and float(cost.split()[0]) > 0 for cost in costs)
            and found
        )

    kinds = WebDriverWait(browser, 60).until(running_with_costs)
    assert kinds["server"].get_attribute("data-job").startswith("alpha/")
    assert server is not None and "Server" in kinds["server"].text
    assert "phone-job" in kinds["batch"].text
    account = browser.find_element(By.CSS_SELECTOR, "#ch-accounts li.card")
    assert "credits" in account.text and "runs out" in account.text
    # Nothing is wider than the phone.
    widest = browser.execute_script(
        "return Math.max(...Array.from(document.querySelectorAll('body *'),"
        " e => e.getBoundingClientRect().right))"
    )
    assert widest <= 390, widest
    shot(browser, "phone-status")

    card(browser, f"beta/{job_id}").find_element(By.CSS_SELECTOR, "button.ch-cancel").click()
    dialog = browser.find_element(By.ID, "ch-confirm")
    WebDriverWait(browser, 10).until(lambda b: dialog.is_displayed())
    assert f"Cancel batch job {job_id}" in dialog.text
    shot(browser, "phone-confirm")
    # Keeping it cancels nothing.
    browser.find_element(By.ID, "ch-confirm-no").click()
    assert queued_on_beta(job_id)
    card(browser, f"beta/{job_id}").find_element(By.CSS_SELECTOR, "button.ch-cancel").click()
    WebDriverWait(browser, 10).until(lambda b: dialog.is_displayed())
    browser.find_element(By.ID, "ch-confirm-yes").click()
    wait_until(lambda: not queued_on_beta(job_id), 30, "the confirmed cancel did not reach Slurm")
    # The server is untouched.
    assert portal.server_model("chtest1")["ready"]

    # The short job has ended: the list says so, with what it cost.
    def ended_with_cost(b):
        for item in b.find_elements(By.CSS_SELECTOR, "li.ch-notification"):
            if item.get_attribute("data-job") == f"beta/{short_id}":
                return item
        return False

    item = WebDriverWait(browser, 120).until(ended_with_cost)
    assert f"Job {short_id} (phone-short) on beta finished: " in item.text
    assert item.text.split(": ", 1)[1].split()[1] == "credits"
    browser.execute_script("arguments[0].scrollIntoView()", item)
    shot(browser, "phone-notifications")

    # Installed: its service worker controls the page and keeps it.
    WebDriverWait(browser, 30).until(
        lambda b: b.execute_script("return !!navigator.serviceWorker.controller")
    )
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    try:
        browser.get(f"{portal.url}/hub/m/")
        banner = browser.find_element(By.ID, "ch-offline")
        WebDriverWait(browser, 20).until(lambda b: banner.is_displayed())
        assert "You are offline" in banner.text
        assert browser.find_element(By.TAG_NAME, "h1").text == "My jobs"
        shot(browser, "phone-offline")
    finally:
        browser.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
