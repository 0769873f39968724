"""Steps every browser test takes: logging in, and screenshots kept for people to look at."""

from pathlib import Path

from selenium.webdriver.common.by import By

from tests.harness import REPO, TEST_PASSWORD

ARTIFACTS = REPO / "tests" / "artifacts"


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
