"""Steps for the 3D results viewer: open it from an app's panel, wait for a drawn frame, turn
the scene with the mouse, and compare what is on the screen, pixel by pixel."""

from io import BytesIO

import numpy
from PIL import Image
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.helpers import shot

# A pixel changed when a colour channel moved by more than this (0–255): antialiasing noise
# stays below it.
PIXEL_CHANGE = 40


def drawn(browser) -> int:
    """How many frames the scene has finished drawing (0 while loading)."""
    return int(scene_data(browser, "drawn") or 0)


def state(browser) -> str:
    return scene_data(browser, "state") or "loading"


def scene_data(browser, key: str) -> str | None:
    """A data- attribute of the scene; None until the viewer's page has loaded."""
    return browser.execute_script(
        "const s = document.getElementById('scene'); return s ? s.dataset[arguments[0]] : null;",
        key,
    )


def status(browser) -> str:
    return browser.find_element(By.ID, "status").text


def wait_drawn(browser, after: int, timeout: int = 60) -> None:
    """Wait for a draw beyond ``after``; fail with the viewer's own message on an error."""
    WebDriverWait(browser, timeout).until(
        lambda b: state(b) == "error" or (state(b) == "ready" and drawn(b) > after)
    )
    assert state(browser) == "ready", status(browser)


def open_from_panel(browser) -> str:
    """Click the app's "Open in 3D viewer" (a new tab) and wait for its first frame; the app's
    tab handle, to go back to."""
    app_tab = browser.current_window_handle
    link = WebDriverWait(browser, 120).until(
        lambda b: b.find_element(By.CSS_SELECTOR, ".ch-views a.ch-view")
    )
    assert "/viewer/?path=" in link.get_attribute("href")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
    link.click()
    WebDriverWait(browser, 20).until(lambda b: len(b.window_handles) > 1)
    browser.switch_to.window(next(h for h in browser.window_handles if h != app_tab))
    wait_drawn(browser, 0)
    return app_tab


def back_to(browser, tab: str) -> None:
    """Close the viewer's tab and go back to the app's."""
    browser.close()
    browser.switch_to.window(tab)


def scene_pixels(browser, name: str) -> numpy.ndarray:
    """The 3D scene as the person sees it, with the pointer moved off it (no hover label);
    also kept as a screenshot for people."""
    ActionChains(browser).move_to_element(browser.find_element(By.TAG_NAME, "header")).perform()
    shot(browser, name)
    png = browser.find_element(By.ID, "scene").screenshot_as_png
    return numpy.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=numpy.int16)


def changed_share(before: numpy.ndarray, after: numpy.ndarray) -> float:
    """The share of the scene's pixels whose colour changed visibly."""
    assert before.shape == after.shape
    return float((numpy.abs(before - after).max(axis=2) > PIXEL_CHANGE).mean())


def rotate(browser) -> None:
    """Drag across the scene, as a person turns a 3D plot, and wait for the new frame."""
    scene = browser.find_element(By.ID, "scene")
    before = camera(browser)
    ActionChains(browser).move_to_element(scene).click_and_hold().move_by_offset(
        160, 40
    ).release().perform()
    WebDriverWait(browser, 20).until(lambda b: camera(b) != before)
    # The camera moved; give the software renderer two animation frames to draw it.
    browser.execute_async_script(
        "const done = arguments[0];"
        "requestAnimationFrame(() => requestAnimationFrame(() => done()));"
    )


def camera(browser) -> str:
    return browser.execute_script(
        "const s = document.getElementById('scene');"
        "const scene = s._fullLayout && s._fullLayout.scene._scene;"
        "return scene ? JSON.stringify(scene.getCamera()) : '';"
    )


def choose(browser, select_id: str, text: str) -> None:
    """Pick an option as a person does; wait for the frame it draws."""
    before = drawn(browser)
    Select(browser.find_element(By.ID, select_id)).select_by_visible_text(text)
    wait_drawn(browser, before)


def set_range(browser, input_id: str, value: int) -> None:
    """Move a slider to ``value`` (the page acts on the change event, as on a release)."""
    before = drawn(browser)
    browser.execute_script(
        "const input = document.getElementById(arguments[0]);"
        "input.value = arguments[1];"
        "input.dispatchEvent(new Event('input'));"
        "input.dispatchEvent(new Event('change'));",
        input_id,
        str(value),
    )
    wait_drawn(browser, before)
