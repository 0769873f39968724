"""The science apps from Home to a plotted result, in a real browser through the real hub and
real Slurm: bad input refused in the app with nothing submitted, then a real run whose
result is checked against the physics, not only against the page."""

import math
import pwd
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.app_steps import button, field, message, open_app, set_field, text_of
from tests.browser.helpers import full_shot, redraw_wait, shot
from tests.browser.viewer_steps import (
    back_to,
    changed_share,
    choose,
    drawn,
    open_from_panel,
    rotate,
    scene_data,
    scene_pixels,
    set_range,
    status,
    wait_drawn,
)
from tests.harness import alive_jobs, ensure_users
from voila_apps.pyscf_chem.molecules import MOLECULES

pytestmark = pytest.mark.browser

APP_USERS = {"lammps-md": "chlammps", "torch-train": "chtorch", "pyscf-chem": "chpyscf"}


@pytest.fixture(scope="module")
def app_users(users):
    ensure_users(*APP_USERS.values())
    return APP_USERS


@pytest.fixture
def app(portal, browser, app_users, request):
    """Open the app named by the test's ``slug`` marker; stop its server afterwards."""
    slug = request.node.get_closest_marker("slug").args[0]
    user = app_users[slug]
    open_app(browser, portal, user, slug)
    # Voila drew the app in the kernel the server had warmed for it.
    log = newest_server_log(user).read_text()
    assert f"serving corehour-apps/{slug} with preheated kernel" in log, log[-2000:]
    yield user
    shot(browser, f"app-{slug}-at-end")  # what the page showed last, for a failed run
    portal.stop_server(user, f"app-{slug}")


def newest_server_log(user: str) -> Path:
    logs = Path(pwd.getpwnam(user).pw_dir, ".corehour", "logs").glob("server-*.log")
    return max(logs, key=lambda path: path.stat().st_mtime)


def refused(browser, user: str, label: str, value, expected_field: str) -> None:
    """A bad value gets a message naming the field, and no job reaches either cluster."""
    before = {c: {j["job_id"] for j in alive_jobs(c, user)} for c in ("alpha", "beta")}
    set_field(browser, label, value)
    shown_before = message(browser)
    button(browser, "Submit").click()
    # The refusal of an earlier value may still be on the page: wait for this one.
    WebDriverWait(browser, 20).until(
        lambda b: "Not submitted" in message(b) and message(b) != shown_before
    )
    assert f"{expected_field}:" in message(browser), message(browser)
    now = {c: {j["job_id"] for j in alive_jobs(c, user)} for c in ("alpha", "beta")}
    assert {c: now[c] - before[c] for c in now} == {"alpha": set(), "beta": set()}  # no new job


def submitted_job(browser) -> str:
    WebDriverWait(browser, 60).until(lambda b: "Submitted job" in message(b))
    return re.search(r"Submitted job (\d+)", message(browser)).group(1)


def result_text(browser, needle: str, timeout: int = 300) -> str:
    WebDriverWait(browser, timeout).until(lambda b: needle in text_of(b, ".ch-result"))
    return text_of(browser, ".ch-result")


# ipywidgets' FileUpload keeps its <input type=file> out of the page and clicks it from its
# button; instead of the browser's file dialog, put that input in the page for Selenium.
EXPOSE_FILE_INPUT = """
HTMLInputElement.prototype.click = (function (click) {
  return function () {
    if (this.type !== "file") return click.call(this);
    this.style.display = "block";
    this.classList.add("ch-test-file-input");
    document.body.appendChild(this);
  };
})(HTMLInputElement.prototype.click);
"""


def choose_file(browser, label: str, path) -> None:
    browser.execute_script(EXPOSE_FILE_INPUT)
    # The button appears once the form has redrawn for an upload.
    redraw_wait(browser, 20).until(lambda b: button(b, label).is_displayed())
    button(browser, label).click()
    file_input = WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.CSS_SELECTOR, "input.ch-test-file-input")
    )
    file_input.send_keys(str(path))


def chart_points(browser) -> int:
    """Points drawn by bqplot in the page (its marks are SVG paths and circles)."""
    return len(browser.find_elements(By.CSS_SELECTOR, ".ch-chart .dot, .ch-chart path.line"))


@pytest.mark.slug("lammps-md")
def test_lammps_melts_a_crystal_and_plots_thermo_and_rdf(portal, browser, app):
    user = app
    assert "credits per hour" in text_of(browser, ".ch-price")
    refused(browser, user, "Steps", -5, "steps")
    refused(browser, user, "Steps", 1_000_000, "steps")  # too long for the walltime
    set_field(browser, "Steps", 1000)
    refused(browser, user, "Atoms", 10_000_000, "atoms")
    set_field(browser, "Atoms", 2000)
    set_field(browser, "Cores", 1)
    button(browser, "Submit").click()
    job_id = submitted_job(browser)
    # Live: the state line follows Slurm, then the thermo lines arrive.
    WebDriverWait(browser, 120).until(lambda b: job_id in text_of(b, ".ch-status"))
    text = result_text(browser, "final step 1,000")
    lines = int(re.search(r"Thermo lines: (\d+)", text).group(1))
    assert lines == 51
    assert "atoms: 2,048" in text and "1 OpenMP thread" in text
    WebDriverWait(browser, 30).until(lambda b: "Finished" in text_of(b, ".ch-status"))
    assert "log.lammps" in text_of(browser, ".ch-downloads")
    assert chart_points(browser) > 0
    full_shot(browser, "app-lammps-md")
    # On a phone the form and the results stay within the screen's width.
    browser.set_window_size(390, 844)
    WebDriverWait(browser, 10).until(lambda b: b.execute_script("return innerWidth") <= 390)
    for css in (".ch-price", ".ch-result", ".ch-status"):
        right = browser.execute_script(
            "return document.querySelector(arguments[0]).getBoundingClientRect().right", css
        )
        assert right <= 390, (css, right)
    assert button(browser, "Submit").rect["x"] + button(browser, "Submit").rect["width"] <= 390
    full_shot(browser, "app-lammps-md-phone")
    browser.set_window_size(1280, 900)
    # The person's own server hands out the run's files.
    link = browser.find_element(By.LINK_TEXT, "log.lammps").get_attribute("href")
    assert f"/user/{user}/app-lammps-md/files/corehour-apps/lammps-md/runs/" in link
    session = requests.Session()
    for cookie in browser.get_cookies():
        session.cookies.set(cookie["name"], cookie["value"], path=cookie.get("path", "/"))
    downloaded = session.get(link, timeout=30, allow_redirects=False)
    assert downloaded.status_code == 200, (downloaded.status_code, downloaded.headers)
    assert "attachment" in downloaded.headers.get("Content-Disposition", "")
    assert "Loop time of" in downloaded.text
    anonymous = requests.get(link, timeout=30, allow_redirects=False)
    assert anonymous.status_code in (302, 403)  # nobody else gets the person's files

    # The trajectory in 3D, one click from the finished job's panel: 1,000 steps of 2,048
    # atoms give 51 frames (every 20 steps).
    app_tab = open_from_panel(browser)
    assert "traj.lammpstrj" in browser.current_url
    assert "2,048 atoms drawn; 51 frames" in status(browser)
    first = scene_pixels(browser, "viewer-lammps-first-frame")
    set_range(browser, "frame", 50)  # scrub to the end: the crystal has melted
    assert scene_data(browser, "frame") == "50"
    last = scene_pixels(browser, "viewer-lammps-last-frame")
    assert changed_share(first, last) > 0.01
    choose(browser, "colour", "speed")
    by_speed = scene_pixels(browser, "viewer-lammps-by-speed")
    assert changed_share(last, by_speed) > 0.02
    rotate(browser)
    assert changed_share(by_speed, scene_pixels(browser, "viewer-lammps-turned")) > 0.02
    # Play runs through the frames from the last back to the first.
    before = drawn(browser)
    button(browser, "Play").click()
    WebDriverWait(browser, 30).until(lambda b: drawn(b) > before)
    button(browser, "Pause").click()
    assert browser.find_elements(By.CSS_SELECTOR, "#profile .main-svg")  # density along z
    full_shot(browser, "viewer-lammps")
    back_to(browser, app_tab)


@pytest.mark.slug("torch-train")
def test_training_runs_as_a_job_and_the_loss_falls(portal, browser, app):
    user = app
    refused(browser, user, "Epochs", 0, "epochs")
    set_field(browser, "Epochs", 8)
    refused(browser, user, "Learning rate", -1, "learning_rate")
    set_field(browser, "Learning rate", 0.01)
    refused(browser, user, "Batch size", 100000, "batch_size")
    set_field(browser, "Batch size", 64)
    # The job on the GPU partition: the fake GPUs of the test cluster are visible to it,
    # and the app says that this PyTorch cannot use them.
    Select(field(browser, "Profile")).select_by_visible_text("GPU notebook")
    set_field(browser, "Cores", 1)
    button(browser, "Submit").click()
    job_id = submitted_job(browser)
    WebDriverWait(browser, 120).until(lambda b: job_id in text_of(b, ".ch-status"))
    text = result_text(browser, "Final loss")
    final, first = map(float, re.search(r"Final loss: ([\d.]+) \(from ([\d.]+)", text).groups())
    assert math.isfinite(final) and final < first
    assert "Epochs: 8" in text and "Device: cpu" in text
    WebDriverWait(browser, 30).until(lambda b: "Finished" in text_of(b, ".ch-status"))
    assert "progress.jsonl" in text_of(browser, ".ch-downloads")
    assert chart_points(browser) > 0
    full_shot(browser, "app-torch-train")


WATER_HF_STO3G = """
from pyscf import gto, scf
mol = gto.M(atom={atoms!r}, basis="sto-3g", verbose=0)
print(repr(float(scf.RHF(mol).kernel())))
"""


def pyscf_water_energy() -> float:
    """Water's HF/STO-3G energy from PySCF itself, in the image the app's job uses."""
    atoms = [(a.symbol, (a.x, a.y, a.z)) for a in MOLECULES["water"].atoms]
    python = "/opt/corehour/images/base/bin/python"
    code = WATER_HF_STO3G.format(atoms=atoms)
    return float(
        subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
    )


@pytest.mark.slug("pyscf-chem")
def test_pyscf_gives_waters_energy_and_refuses_bad_molecules(portal, browser, app, tmp_path):
    user = app
    molecule = Select(field(browser, "Molecule"))
    molecule.select_by_visible_text("Upload an XYZ file…")
    bad = tmp_path / "broken.xyz"
    bad.write_text("3\nwater, with a typo\nO 0 0 0.1173\nH 0 0.7572 oops\nH 0 -0.7572 -0.4692\n")
    choose_file(browser, "XYZ file", bad)
    WebDriverWait(browser, 20).until(lambda b: "xyz:" in text_of(b, ".ch-about"))
    before = {j["job_id"] for j in alive_jobs("alpha", user)}
    button(browser, "Submit").click()
    WebDriverWait(browser, 20).until(lambda b: "Not submitted" in message(b))
    assert "xyz:" in message(browser) and "line 4" in message(browser), message(browser)
    assert {j["job_id"] for j in alive_jobs("alpha", user)} <= before  # no new job

    # Benzene in a large basis does not fit in three minutes: refused before Slurm sees it.
    molecule.select_by_visible_text("Benzene")
    Select(field(browser, "Basis")).select_by_visible_text("cc-pvtz")
    refused(browser, user, "Hours", 0.05, "walltime_hours")

    molecule.select_by_visible_text("Water")
    Select(field(browser, "Basis")).select_by_visible_text("sto-3g")
    set_field(browser, "Hours", 0.5)
    set_field(browser, "Cores", 1)
    button(browser, "Submit").click()
    job_id = submitted_job(browser)
    WebDriverWait(browser, 120).until(lambda b: job_id in text_of(b, ".ch-status"))
    text = result_text(browser, "Total energy")
    energy = float(re.search(r"Total energy: (-?[\d.]+) Ha", text).group(1))
    assert abs(energy - pyscf_water_energy()) < 1e-6
    assert "converged" in text and "HF/sto-3g" in text
    WebDriverWait(browser, 30).until(lambda b: "Finished" in text_of(b, ".ch-status"))
    WebDriverWait(browser, 30).until(lambda b: "converged SCF energy" in text_of(b, ".ch-log"))
    assert "pyscf.log" in text_of(browser, ".ch-downloads")
    assert chart_points(browser) > 0
    full_shot(browser, "app-pyscf-chem")

    # The orbitals in 3D, one click from the finished job's panel: the HOMO first.
    app_tab = open_from_panel(browser)
    assert browser.current_url.endswith("/orbitals/homo.cube")
    assert "Grid 64×64×64" in status(browser)
    homo = scene_pixels(browser, "viewer-pyscf-homo")
    rotate(browser)
    turned = scene_pixels(browser, "viewer-pyscf-homo-turned")
    assert changed_share(homo, turned) > 0.02
    choose(browser, "field", "LUMO")  # the camera stays where the person turned it
    assert scene_data(browser, "field") == "lumo.cube"
    assert changed_share(turned, scene_pixels(browser, "viewer-pyscf-lumo")) > 0.02
    # The 2D half: a slice of the grid and a line profile through it.
    assert browser.find_elements(By.CSS_SELECTOR, "#slice .main-svg .heatmaplayer image")
    assert browser.find_elements(By.CSS_SELECTOR, "#profile .main-svg .scatterlayer path")
    full_shot(browser, "viewer-pyscf")

    # From JupyterLab's file browser: double-click a cube file and the viewer opens in a new
    # browser tab (JupyterHub lets no page frame a person's server, the viewer included).
    # JupyterLab keeps no tab for it, so reloading JupyterLab does not open it again.
    folder = browser.current_url.split("path=")[1].rsplit("/", 1)[0].replace("%2F", "/")
    browser.get(f"{portal.url}/user/{user}/app-pyscf-chem/lab/tree/{folder}")
    item = WebDriverWait(browser, 120).until(
        lambda b: b.find_element(
            By.XPATH,
            "//li[contains(@class,'jp-DirListing-item')]"
            "[.//span[contains(@class,'jp-DirListing-itemText')][normalize-space()='lumo.cube']]",
        )
    )
    lab_tab, tabs = browser.current_window_handle, set(browser.window_handles)
    ActionChains(browser).double_click(item).perform()
    WebDriverWait(browser, 30).until(lambda b: len(b.window_handles) > len(tabs))
    WebDriverWait(browser, 10).until(
        lambda b: "lumo.cube opened in the 3D viewer" in text_of(b, "body")
    )  # JupyterLab's notification, with a button to open it again
    browser.switch_to.window(next(h for h in browser.window_handles if h not in tabs))
    wait_drawn(browser, 0)
    assert scene_data(browser, "field") == "lumo.cube" and "Grid 64×64×64" in status(browser)
    shot(browser, "viewer-from-file-browser")
    back_to(browser, lab_tab)
    # Reloading JupyterLab opens nothing by itself.
    browser.refresh()
    WebDriverWait(browser, 120).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, ".jp-DirListing-item")
    )
    time.sleep(3)  # a tab opened by the restored layout would be there by now
    assert len(browser.window_handles) == len(tabs)
    back_to(browser, app_tab)
