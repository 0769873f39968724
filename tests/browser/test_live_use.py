"""A running server's own use in JupyterLab's status bar: CPU and memory against what the Slurm
job was given, moved by a CPU-burning cell; and My jobs after a job ends."""

import json
import os
import pwd
import re
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.billing_checks import sbatch_as, wait_until
from tests.browser.helpers import log_in, redraw_wait, shot
from tests.harness import alive_jobs, slurm

pytestmark = pytest.mark.browser

USER = "chtest3"
BURN = "import time\nt = time.time()\nwhile time.time() - t < 90:\n    pass"
GIB = 1024**3


def notebook_with(home: Path, name: str, code: str) -> None:
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None}
    notebook = {
        "cells": [{**cell, "source": code}],
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = home / name
    path.write_text(json.dumps(notebook))
    owner = pwd.getpwnam(USER)
    os.chown(path, owner.pw_uid, owner.pw_gid)


def usage(browser) -> dict:
    item = browser.find_element(By.CSS_SELECTOR, "#jp-main-statusbar .ch-usage")
    return {
        "state": item.get_attribute("data-state"),
        "cpu_used": item.get_attribute("data-cpu-used"),
        "cpu_allocated": item.get_attribute("data-cpu-allocated"),
        "mem_used": item.get_attribute("data-mem-used"),
        "mem_limit": item.get_attribute("data-mem-limit"),
        "text": item.text,
    }


def test_the_status_bar_shows_the_jobs_use_and_a_busy_cell_moves_it(portal, tokens, browser):
    home = Path(pwd.getpwnam(USER).pw_dir)
    notebook_with(home, "burn.ipynb", BURN)
    started = portal.start_server(
        USER, tokens[USER], profile="cpu", cluster="alpha", cores=2, memory_gb=2
    )
    assert started.status_code in (201, 202), started.text
    portal.wait_ready(USER, timeout=120)
    (job,) = alive_jobs("alpha", USER)
    assert "cpu=2" in job["tres_alloc_str"]

    wait = WebDriverWait(browser, 90)
    log_in(browser, portal, USER)
    browser.set_window_size(1280, 900)
    browser.get(f"{portal.url}/user/{USER}/lab/tree/burn.ipynb?reset")
    wait.until(lambda b: (u := usage(b))["state"] == "ok" and u["cpu_used"] != "")
    quiet = usage(browser)
    assert quiet["cpu_allocated"] == "2", quiet
    assert int(quiet["mem_limit"]) == 2 * GIB, quiet  # the job's --mem, not the node's memory
    assert 0 < int(quiet["mem_used"]) < 2 * GIB
    assert quiet["text"].startswith("CPU ") and "/ 2 cores" in quiet["text"], quiet
    assert "/ 2.00 GiB" in quiet["text"] and "No GPU" in quiet["text"], quiet
    assert float(quiet["cpu_used"]) < 0.5, quiet  # nothing runs yet
    shot(browser, "status-bar-quiet")

    # Run the burning cell, as a person would: click into it and press Shift+Enter.
    wait.until(lambda b: "Idle" in b.find_element(By.ID, "jp-main-statusbar").text)
    redraw_wait(browser, 90).until(
        lambda b: (
            b.find_element(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell .cm-content").click() or True
        )
    )
    # To the focused cell, whatever element JupyterLab draws it with by now.
    ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
    busy = wait.until(lambda b: (u := usage(b))["cpu_used"] and float(u["cpu_used"]) >= 0.7 and u)
    assert busy["text"].startswith(f"CPU {float(busy['cpu_used']):.2f} / 2 cores"), busy
    shot(browser, "status-bar-busy")
    # On a phone JupyterLab hides its status bar; a strip at the bottom shows the same reading.
    browser.set_window_size(390, 844)
    top = wait.until(lambda b: (e := b.find_element(By.ID, "ch-usage-phone")).is_displayed() and e)
    assert top.text.startswith("CPU ") and "/ 2 cores" in top.text, top.text
    shot(browser, "status-bar-busy-phone")

    # The job's history: its first minute reaches the hub about a minute after the start, and
    # My jobs draws it against the two cores and 2 GiB the job was given.
    samples = f"{portal.url}/hub/api/corehour/job-samples?cluster=alpha&job_id={job['job_id']}"
    wait_until(
        lambda: requests.get(
            samples, headers={"Authorization": f"token {tokens[USER]}"}, timeout=30
        ).json()["samples"],
        150,
        f"job {job['job_id']} reported no sample",
    )
    browser.set_window_size(1280, 900)
    browser.get(f"{portal.url}/hub/corehour/jobs")
    chart = wait.until(
        lambda b: (
            (
                e := b.find_element(By.CSS_SELECTOR, f".ch-chart[data-job-id='{job['job_id']}']")
            ).get_attribute("data-state")
            == "drawn"
            and e
        )
    )
    captions = [c.text for c in chart.find_elements(By.TAG_NAME, "figcaption")]
    assert captions[0].startswith("CPU cores: now ") and " of 2.00" in captions[0], captions
    assert captions[1].startswith("Memory: now ") and " of 2.00 GiB" in captions[1], captions
    assert chart.find_elements(By.CSS_SELECTOR, "svg polyline"), chart.get_attribute("innerHTML")
    shot(browser, "my-jobs-history-desktop")
    browser.set_window_size(390, 844)
    browser.refresh()
    drawn = wait.until(
        lambda b: b.find_element(
            By.CSS_SELECTOR, f".ch-chart[data-job-id='{job['job_id']}'][data-state='drawn']"
        )
    )
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", drawn)
    shot(browser, "my-jobs-history-phone")
    browser.set_window_size(1280, 900)
    portal.stop_server(USER)
    portal.wait_gone(USER, timeout=60)


def test_my_jobs_shows_an_ended_jobs_efficiency_on_a_desktop_and_a_phone(portal, tokens, browser):
    account = portal.wait_billing(tokens[USER])["accounts"][0]["name"]
    job_id = sbatch_as(
        # Named as a server's job is, and over a minute long, so the spawn form counts it too.
        USER, "alpha", f"--account={account}", "-c", "2", "-J", "corehour",
        "--wrap", "exec python3 -c 'import time\nt = time.time()\nwhile time.time() - t < 62: pass'",
    )  # fmt: skip
    wait_until(
        lambda: (
            "COMPLETED" in slurm("alpha", "sacct", "-j", job_id, "-X", "-n", "-o", "State").stdout
        ),
        150,
        f"job {job_id} did not complete",
    )
    log_in(browser, portal, USER)
    browser.set_window_size(1280, 900)
    browser.get(f"{portal.url}/hub/home")
    browser.find_element(By.ID, "nav-jobs").click()
    wait = WebDriverWait(browser, 60)
    row = wait.until(lambda b: b.find_element(By.ID, f"ch-job-alpha-{job_id}"))
    # One core of two busy: about half the cores sat idle, and the page prices them.
    assert 30 <= float(row.get_attribute("data-cpu-percent")) <= 70, row.text
    waste = row.find_element(By.CLASS_NAME, "ch-job-waste").text
    assert re.fullmatch(
        r"[\d.]+ of 2 cores idle( and [\d.]+ GB of memory unused)? for .+: [\d.]+ credits", waste
    ), waste
    # "When would a job start now?": each profile asks Slurm, as the spawn form does.
    cpu = wait.until(
        lambda b: (
            (
                li := b.find_element(By.CSS_SELECTOR, "#ch-starts-now li[data-profile='cpu']")
            ).get_attribute("data-state")
            != "asking"
            and li
        )
    )
    assert cpu.get_attribute("data-cluster") in ("alpha", "beta"), cpu.text
    assert "asking" not in cpu.text and "did not answer" not in cpu.text, cpu.text
    shot(browser, "my-jobs-desktop")

    browser.set_window_size(390, 844)
    browser.refresh()
    wait.until(lambda b: b.find_element(By.ID, f"ch-job-alpha-{job_id}"))
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"My jobs is {overflow} px wider than a phone"
    shot(browser, "my-jobs-phone")

    # The spawn form: how busy this person's last servers on the profile were.
    browser.set_window_size(1280, 900)
    browser.get(f"{portal.url}/hub/spawn/{USER}")
    cores = wait.until(lambda b: b.find_element(By.ID, "ch-cores"))
    cores.clear()
    cores.send_keys("8")
    panel = wait.until(
        lambda b: (
            (e := b.find_element(By.ID, "ch-recent")).get_attribute("data-state") == "ok" and e
        )
    )
    assert panel.text.startswith("Your last "), panel.text
    suggested = panel.get_attribute("data-suggested-cores")
    assert suggested and int(suggested) < 8, panel.text  # a job of 1 busy core says: fewer
    assert f"{suggested} core" in panel.text and "would have served" in panel.text, panel.text
    shot(browser, "spawn-form-recent-use")
