"""The app centre in a real browser: Job Composer launched by link, rendered by Voila, used."""

import json
import pwd
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.billing_checks import wait_until
from tests.browser.app_steps import button, message, set_field
from tests.browser.helpers import full_shot, log_in, redraw_wait, shot
from tests.harness import alive_jobs, slurm

pytestmark = pytest.mark.browser

APP = "job-composer"


def picker(browser):
    return browser.find_element(
        By.XPATH,
        "//div[contains(@class,'widget-dropdown')][.//label[normalize-space()='Job']]//select",
    )


def pick_job(browser, key: str) -> None:
    """Choose "cluster/job" in My jobs (options read "alpha/42 hello (completed)"), again if
    the list was redrawn while choosing."""

    def chosen(b) -> bool:
        select = Select(picker(b))
        texts = [o.text for o in select.options]
        wanted = next((t for t in texts if t.startswith(key + " ")), None)
        if wanted is None:
            return False
        select.select_by_visible_text(wanted)
        return select.first_selected_option.text == wanted

    redraw_wait(browser, 30).until(chosen)


def output(browser) -> str:
    found = browser.find_elements(By.CSS_SELECTOR, ".ch-output")
    return found[0].text if found else ""


def test_job_composer_submits_a_template_and_refuses_bad_input(portal, browser):
    user = "chtest1"
    wait = redraw_wait(browser, 150)
    # JupyterLab reopens the tabs of a person's last visit, which for this person may be the
    # terminal an earlier run of this test opened: start with none, as a new person would.
    home = Path(pwd.getpwnam(user).pw_dir)
    for saved in (home / ".jupyter" / "lab" / "workspaces").glob("*.jupyterlab-workspace"):
        saved.unlink()
    log_in(browser, portal, user)
    browser.get(f"{portal.url}/hub/home")
    tile = wait.until(lambda b: b.find_element(By.ID, f"tile-{APP}"))
    # 1 core × 36 + 2 GB × 0.36 credits per hour in the test site
    assert "General" in browser.page_source and "36.720 credits per hour" in tile.text
    search = browser.find_element(By.ID, "app-search")
    search.send_keys("no such app")
    assert not tile.is_displayed()
    search.clear()
    search.send_keys("batch")
    assert tile.is_displayed()
    tile.find_element(By.CSS_SELECTOR, ".ch-app-launch").click()
    wait.until(lambda b: "/voila/render/" in b.current_url)
    wait.until(
        lambda b: b.find_elements(By.XPATH, "//button[contains(normalize-space(), 'Submit')]")
    )
    assert "Job Composer" in browser.page_source
    wait.until(lambda b: "credits per hour" in b.find_element(By.CSS_SELECTOR, ".ch-price").text)

    # Bad input is refused in the app and nothing reaches Slurm.
    before = {str(j["job_id"]) for j in alive_jobs("alpha", user)}
    set_field(browser, "Job name", "bad name;rm")
    button(browser, "Submit").click()
    wait.until(lambda b: "Not submitted" in message(b))
    assert "name:" in message(browser)
    assert {str(j["job_id"]) for j in alive_jobs("alpha", user)} <= before  # no new job

    set_field(browser, "Job name", "hello-composer")
    button(browser, "Submit").click()
    wait.until(lambda b: "Submitted job" in message(b))
    job_id = message(browser).split("Submitted job ")[1].split(" ")[0]
    shot(browser, "app-job-composer")

    # The job runs as the person; "My jobs" shows it finished, with its output.
    def finished():
        # slurmdbd may not have the job yet right after sbatch: no record is "not yet".
        records = json.loads(slurm("alpha", "sacct", "--json", "-j", job_id).stdout)["jobs"]
        if not records:
            return None
        job = records[0]
        state = job["state"]["current"]
        return job if (state[0] if isinstance(state, list) else state) == "COMPLETED" else None

    job = wait_until(finished, 90, f"job {job_id} did not complete")
    assert job["name"] == "hello-composer" and job["user"] == user
    button(browser, "Refresh").click()
    wait.until(lambda b: "COMPLETED" in b.page_source and job_id in b.page_source)
    pick_job(browser, f"alpha/{job_id}")
    button(browser, "Show output").click()
    wait.until(lambda b: "done" in output(b) and "Hello from" in output(b))
    full_shot(browser, "app-job-composer")

    # Any job can be cancelled from "My jobs".
    script = browser.find_element(By.CSS_SELECTOR, "textarea")
    script.clear()
    script.send_keys("sleep 600\n")
    set_field(browser, "Job name", "long-one")
    button(browser, "Submit").click()
    wait.until(lambda b: "Submitted job" in message(b) and job_id not in message(b))
    long_id = message(browser).split("Submitted job ")[1].split(" ")[0]
    wait.until(
        lambda b: Select(picker(b)).first_selected_option.text.startswith(f"alpha/{long_id} ")
    )
    button(browser, "Cancel job").click()
    wait.until(lambda b: f"Cancelled job {long_id}" in message(b))
    wait_until(
        lambda: long_id not in {str(j["job_id"]) for j in alive_jobs("alpha", user)},
        30,
        f"job {long_id} was not cancelled",
    )

    # JupyterLab and a terminal stay at hand: the running app's tile opens the same server
    # in JupyterLab, in the app's folder, and its Launcher opens a terminal.
    browser.get(f"{portal.url}/hub/home")
    tile = wait.until(lambda b: b.find_element(By.ID, f"tile-{APP}"))
    assert tile.find_element(By.LINK_TEXT, "Open") and tile.find_element(
        By.CSS_SELECTOR, ".ch-app-stop"
    )
    lab = tile.find_element(By.CSS_SELECTOR, ".ch-app-lab")
    browser.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", lab
    )
    lab.click()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".jp-LabShell"))
    wait.until(lambda b: not b.find_elements(By.ID, "jupyterlab-splash"))
    wait.until(lambda b: "runs" in b.find_element(By.CSS_SELECTOR, ".jp-DirListing").text)
    terminal_card = wait.until(
        lambda b: b.find_element(By.CSS_SELECTOR, ".jp-LauncherCard[title*='erminal']")
    )
    terminal_card.click()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, ".jp-Terminal .xterm"))
    shot(browser, "app-job-composer-terminal")
