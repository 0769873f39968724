"""My usage in a real browser: the price before launch, a cost that rises, statements that open."""

import csv
import io

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.billing_checks import expected_mc, sacct_job, wait_finished, wait_until
from tests.browser.helpers import log_in, shot

pytestmark = pytest.mark.browser


@pytest.fixture
def ledger(portal):
    from sqlalchemy import create_engine

    engine = create_engine(portal.billing_db)
    yield engine
    engine.dispose()


def test_the_spawn_form_prices_the_choice_before_launch(portal, browser):
    wait = WebDriverWait(browser, 60)
    log_in(browser, portal, "chtest3")
    browser.get(f"{portal.url}/hub/spawn/chtest3")
    wait.until(ready.presence_of_element_located((By.ID, "ch-price-per-hour")))
    Select(browser.find_element(By.ID, "ch-profile")).select_by_value("cpu")
    Select(browser.find_element(By.ID, "ch-cluster")).select_by_value("alpha")
    cores = browser.find_element(By.ID, "ch-cores")
    cores.clear()
    cores.send_keys("1")
    memory = browser.find_element(By.ID, "ch-memory_gb")
    memory.clear()
    memory.send_keys("2")
    price = browser.find_element(By.ID, "ch-price-per-hour")
    # 1 core × 36 + 2 GB × 0.36 credits per hour
    wait.until(lambda _: price.text.startswith("36.720 credits per hour"))
    covers = browser.find_element(By.ID, "ch-price-covers").text
    assert "cover" in covers and "hours" in covers

    cores.clear()
    cores.send_keys("4")
    wait.until(lambda _: price.text.startswith("144.720 credits per hour"))

    # Four GPUs for 15 minutes cost more than the 100 credits a new account opens with.
    Select(browser.find_element(By.ID, "ch-profile")).select_by_value("gpu")
    for field, value in (("ch-cores", "8"), ("ch-memory_gb", "16"), ("ch-gpus", "4")):
        element = browser.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    wait.until(lambda _: price.text.startswith("581.760 credits per hour"))
    covers = browser.find_element(By.ID, "ch-price-covers").text
    assert "do not cover the minimum run of 15 minutes" in covers
    browser.set_window_size(390, 844)
    shot(browser, "spawn-form-price-phone")


def test_my_usage_shows_a_running_cost_rising_and_statements_that_match_sacct(
    portal, browser, tokens, ledger
):
    user = "chtest1"
    token = tokens[user]
    account = portal.wait_billing(token)["accounts"][0]["name"]
    portal.start_and_wait(
        [(user, "")], tokens, profile="cpu", cluster="alpha", cores=1, memory_gb=1
    )
    job_id = str(portal.server_model(user)["state"]["job_id"])
    # The page lists the jobs the meter is charging: a server a second old may not be yet.
    wait_until(
        lambda: any(
            j["job_id"] == job_id
            for j in portal.billing("GET", "api/jobs/running", token).json()["jobs"]
        ),
        30,
        f"the meter never charged job {job_id}",
    )

    log_in(browser, portal, user)
    browser.get(f"{portal.url}/services/billing/usage")
    wait = WebDriverWait(browser, 60)
    row = f'#running tr[data-job="alpha:{job_id}"] .ch-cost'
    cost = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, row)))
    first = float(cost.text)
    wait.until(lambda _: float(browser.find_element(By.CSS_SELECTOR, row).text) > first)
    rose_to = float(browser.find_element(By.CSS_SELECTOR, row).text)
    assert rose_to > first
    assert browser.find_element(By.CSS_SELECTOR, "#spend-chart .main-svg")  # plotly drew it
    shot(browser, "usage")
    browser.set_window_size(390, 844)
    shot(browser, "usage-phone")
    browser.set_window_size(1280, 900)

    portal.stop_all([user])
    wait_finished(ledger, "alpha", job_id)

    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    statement = requests.get(
        f"{portal.url}/services/billing/usage/statement.csv",
        params={"account": account},
        cookies=cookies,
        timeout=30,
    )
    assert statement.status_code == 200, statement.text[:300]
    assert "attachment" in statement.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(statement.text)))
    line = next(r for r in rows if r["job_id"] == job_id)
    sacct = sacct_job("alpha", job_id)
    assert int(line["amount"].replace(".", "")) == expected_mc(sacct)
    assert line["cluster"] == "alpha" and line["partition"] == "cpu"

    pdf = requests.get(
        f"{portal.url}/services/billing/usage/statement.pdf",
        params={"account": account},
        cookies=cookies,
        timeout=30,
    )
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF") and pdf.content.rstrip().endswith(b"%%EOF")
    assert job_id.encode() in pdf.content and account.encode() in pdf.content

    # The browser opens the bills page for this month and finds the job there too.
    browser.get(f"{portal.url}/services/billing/usage?account={account}")
    bills = browser.find_element(By.ID, "bills").text
    assert job_id in bills


def test_the_spawn_form_says_where_and_when_it_would_start(portal, browser):
    wait = WebDriverWait(browser, 60)
    log_in(browser, portal, "chtest3")
    browser.get(f"{portal.url}/hub/spawn/chtest3")
    listing = wait.until(ready.presence_of_element_located((By.ID, "ch-starts-list")))
    Select(browser.find_element(By.ID, "ch-profile")).select_by_value("cpu")
    # Both idle clusters answer, through sbatch --test-only as the person, with their price.
    wait.until(lambda _: {"alpha", "beta"} <= {
        li.get_attribute("data-cluster")
        for li in listing.find_elements(By.CSS_SELECTOR, "li[data-state='now']")
    })  # fmt: skip
    text = listing.text
    assert "would start now" in text and "credits per hour" in text, text
    assert "(auto picks this)" in text, text
    shot(browser, "spawn-form-starts")

    # A value past the profile's limit: the list says why, in the allow-list's words.
    cores = browser.find_element(By.ID, "ch-cores")
    cores.clear()
    cores.send_keys("99")
    wait.until(lambda _: "cores" in listing.text and "1 to 8" in listing.text)
