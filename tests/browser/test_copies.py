"""The copies page in a real browser: a folder goes from alpha's home to beta's as the
person, with progress, and a bad path or a missing folder is told in words."""

import pwd
import subprocess
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.helpers import log_in, shot

pytestmark = pytest.mark.browser

PERSON = "chtest2"


def as_person(command: str) -> None:
    subprocess.run(["sudo", "-n", "-u", PERSON, "sh", "-c", command], check=True)


def fill(browser, from_path: str, to_path: str) -> None:
    Select(browser.find_element(By.ID, "ch-from-cluster")).select_by_value("alpha")
    Select(browser.find_element(By.ID, "ch-to-cluster")).select_by_value("beta")
    for field, value in (("ch-from-path", from_path), ("ch-to-path", to_path)):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    browser.find_element(By.ID, "ch-copy-start").click()


def test_a_person_copies_a_folder_between_clusters_from_the_page(portal, browser):
    home = Path(pwd.getpwnam(PERSON).pw_dir)
    as_person(
        "cd ~ && rm -rf page-src page-dst && mkdir -p page-src/sub && "
        "head -c 3000000 /dev/urandom > page-src/sub/data.bin && echo hello > page-src/a.txt"
    )
    wait = WebDriverWait(browser, 120)
    log_in(browser, portal, PERSON)
    browser.get(f"{portal.url}/hub/home")
    browser.find_element(By.ID, "nav-copies").click()
    wait.until(ready.presence_of_element_located((By.ID, "ch-copy-form")))

    fill(browser, "page-src", "page-dst")
    done = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "li.ch-copy[data-state='done']"))
    text = done.text
    assert "alpha:page-src → beta:page-dst" in text, text
    assert "done" in text and "100 %" in text and "MB" in text, text
    shot(browser, "copies-done")
    copied = home / "page-dst"
    assert (copied / "a.txt").read_text() == "hello\n"
    assert (copied / "sub/data.bin").read_bytes() == (home / "page-src/sub/data.bin").read_bytes()
    assert {p.stat().st_uid for p in [copied, *copied.rglob("*")]} == {pwd.getpwnam(PERSON).pw_uid}

    # A reload lists the copy again (the hub keeps it).
    browser.refresh()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "li.ch-copy[data-state='done']"))

    # A path that leaves the home is refused in words that name the field; nothing starts.
    fill(browser, "../../etc", "stolen")
    message = browser.find_element(By.ID, "ch-copy-message")
    wait.until(lambda _: "from_path" in message.text)
    assert not (home / "stolen").exists()

    # A folder that is not there fails with the reason, not silently.
    fill(browser, "no-such-folder", "page-dst2")
    failed = wait.until(
        lambda b: b.find_element(By.CSS_SELECTOR, "li.ch-copy[data-state='failed']")
    )
    assert "failed" in failed.text and "no-such-folder" in failed.text, failed.text
    shot(browser, "copies-failed")
