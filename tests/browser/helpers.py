"""Steps every browser test takes: logging in, and screenshots kept for people to look at."""

import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.harness import REPO, TEST_PASSWORD

ARTIFACTS = REPO / "tests" / "artifacts"


def redraw_wait(driver, seconds: float) -> WebDriverWait:
    """A wait that finds an element again when the page redrew it: ipywidgets replace a
    dropdown's options wholesale and JupyterLab may redraw a cell as its kernel settles, so an
    element found a moment ago may be gone by the time it is read or clicked."""
    return WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,))


def chromium(env: dict[str, str] | None = None) -> webdriver.Chrome:
    """Debian's headless Chromium with a fresh profile (the tests and bench/ share it);
    ``env`` is chromedriver's and so Chromium's environment (HOME holds its NSS trust store)."""
    profile = tempfile.mkdtemp(prefix="corehour-chromium-")
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        # WebGL (the results viewer) in software: Chromium no longer falls back to it unasked.
        "--enable-unsafe-swiftshader",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver", env=env), options=options)


def shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def full_shot(driver, name: str) -> Path:
    """The whole page, not only the window: results sit below the form."""
    size = driver.get_window_size()
    width, height = size["width"], size["height"]
    # Voila scrolls an inner panel, not the document: take the tallest scrolled content.
    page = driver.execute_script(
        "return Math.max(...Array.from(document.querySelectorAll('*'), e => e.scrollHeight))"
    )
    driver.set_window_size(width, min(max(height, page + 120), 6000))
    try:
        return shot(driver, name)
    finally:
        driver.set_window_size(width, height)


def log_in(driver, portal, user: str) -> None:
    driver.get(f"{portal.url}/hub/login")
    driver.find_element(By.ID, "username_input").send_keys(user)
    driver.find_element(By.ID, "password_input").send_keys(TEST_PASSWORD)
    driver.find_element(By.ID, "login_submit").click()
    # Wait for the login's redirects to land: a driver.get() issued while they are still in
    # flight can wait behind them for minutes (seen with Chromium 156).
    WebDriverWait(driver, 60).until(
        lambda d: (
            "/hub/login" not in d.current_url
            and d.execute_script("return document.readyState") != "loading"
        )
    )
