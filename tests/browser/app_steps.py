"""Steps the app tests share: open an app from its tile, fill its form, read what it says."""

from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.helpers import log_in, redraw_wait


def field(browser, label: str):
    return browser.find_element(
        By.XPATH,
        f"//div[contains(@class,'widget-inline-hbox')][.//label[normalize-space()='{label}']]"
        "//*[self::input or self::select or self::textarea]",
    )


def set_field(browser, label: str, value) -> None:
    """Type a value the way a person does; number boxes sync on Enter, not on every key,
    and Selenium's clear() does not reach them."""
    element = field(browser, label)
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.BACKSPACE)
    element.send_keys(str(value), Keys.ENTER)
    redraw_wait(browser, 10).until(lambda b: field(b, label).get_attribute("value") == str(value))


def button(browser, text: str):
    return browser.find_element(By.XPATH, f"//button[contains(normalize-space(), '{text}')]")


def text_of(browser, css: str) -> str:
    """The element's text now; "" while it is missing or being redrawn by its widget."""
    try:
        found = browser.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


def message(browser) -> str:
    return text_of(browser, ".ch-message")


def open_app(browser, portal, user: str, slug: str, wait_seconds: int = 180) -> None:
    """Log in, click the app's tile on Home, and wait until Voila has drawn its form."""
    log_in(browser, portal, user)
    browser.get(f"{portal.url}/hub/home")
    wait = WebDriverWait(browser, wait_seconds)
    tile = wait.until(lambda b: b.find_element(By.ID, f"tile-{slug}"))
    launch = tile.find_element(By.CSS_SELECTOR, ".ch-app-launch")
    # Bootstrap scrolls smoothly; a click during the scroll lands on something else.
    browser.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", launch
    )
    launch.click()
    wait.until(lambda b: "/voila/render/" in b.current_url)
    wait.until(
        lambda b: b.find_elements(By.XPATH, "//button[contains(normalize-space(), 'Submit')]")
    )
