"""A person logs in with a browser, fills the spawn form and lands in JupyterLab."""

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.helpers import shot
from tests.harness import TEST_PASSWORD, alive_jobs


def test_login_fill_the_form_and_land_in_jupyterlab(portal, browser):
    user = "chtest2"
    wait = WebDriverWait(browser, 90)
    browser.get(f"{portal.url}/hub/login")
    browser.find_element(By.ID, "username_input").send_keys(user)
    browser.find_element(By.ID, "password_input").send_keys(TEST_PASSWORD)
    browser.find_element(By.ID, "login_submit").click()

    browser.get(f"{portal.url}/hub/spawn/{user}")
    wait.until(ready.presence_of_element_located((By.ID, "corehour-spawn-form")))
    Select(browser.find_element(By.ID, "ch-profile")).select_by_value("cpu")
    Select(browser.find_element(By.ID, "ch-cluster")).select_by_value("beta")
    cores = browser.find_element(By.ID, "ch-cores")
    cores.clear()
    cores.send_keys("2")
    assert "1 to 8 cores" in browser.find_element(By.ID, "ch-cores-limit").text
    browser.set_window_size(390, 844)  # a phone: the form must still be usable
    shot(browser, "spawn-form-phone")
    browser.set_window_size(1280, 900)
    browser.find_element(
        By.CSS_SELECTOR, "form#spawn_form [type=submit], #spawn_form input[type=submit]"
    ).click()

    wait.until(lambda d: f"/user/{user}/lab" in d.current_url)
    wait.until(
        ready.presence_of_element_located((By.CSS_SELECTOR, "#jp-main-dock-panel, .jp-LabShell"))
    )
    # The shell is in the page before JupyterLab has drawn it: wait for the splash to go and
    # the file browser to list the home folder.
    wait.until(lambda d: not d.find_elements(By.ID, "jupyterlab-splash"))
    wait.until(ready.visibility_of_element_located((By.CSS_SELECTOR, ".jp-DirListing-content")))
    path = shot(browser, "jupyterlab")
    assert path.stat().st_size > 10_000

    (job,) = alive_jobs("beta", user)
    assert "cpu=2" in job["tres_alloc_str"]


def test_a_refused_form_shows_the_message_and_submits_nothing(portal, browser):
    user = "chtest3"
    browser.get(f"{portal.url}/hub/login")
    browser.find_element(By.ID, "username_input").send_keys(user)
    browser.find_element(By.ID, "password_input").send_keys(TEST_PASSWORD)
    browser.find_element(By.ID, "login_submit").click()
    browser.get(f"{portal.url}/hub/spawn/{user}")
    WebDriverWait(browser, 30).until(
        ready.presence_of_element_located((By.ID, "corehour-spawn-form"))
    )
    # A person who edits the page can send anything; the hub must still refuse it.
    browser.execute_script("document.getElementById('ch-cores').removeAttribute('max');")
    cores = browser.find_element(By.ID, "ch-cores")
    cores.clear()
    cores.send_keys("64")
    browser.find_element(By.CSS_SELECTOR, "#spawn_form [type=submit]").click()
    WebDriverWait(browser, 30).until(
        lambda d: "allows 1 to 8 cores; you asked for 64" in d.page_source
    )
    assert alive_jobs("alpha", user) == [] and alive_jobs("beta", user) == []
