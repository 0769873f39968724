"""A desktop's start: its tile clicked on an idle cluster, until the desktop's first frame.

    /opt/corehour/hub/bin/python -m bench.desktop_ready [--runs 5]

Ours: Home's Desktop tile clicked, until the page's canvas shows the desktop (TigerVNC's
first frame drawn by noVNC).  Baseline: the same person's notebook server started the same
way, spawn-by-URL from Home to JupyterLab drawn (its launcher shown).  Both are a Slurm job,
a server start and a first page on the same portal; the desktop adds TigerVNC and XFCE.
Runs alternate, each on an idle cluster (the previous job has ended).  Writes
bench/results/desktop_ready.json.  Needs what `./corehour test` sets up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bench.report import write_result
from tests.browser.helpers import chromium, log_in
from tests.harness import Portal, alive_jobs, ensure_users

USER = "chbenchdesk"
NOTEBOOK = {"opt-profile": "cpu", "opt-image": "base", "opt-cores": 2, "opt-memory_gb": 4}

# True once the canvas holds a drawn frame: a pixel in its middle is opaque.
FRAME_DRAWN = """
const canvas = document.querySelector('#screen canvas');
if (!canvas || !canvas.width) return false;
const pixel = canvas.getContext('2d').getImageData(canvas.width / 2, canvas.height / 2, 1, 1).data;
return pixel[3] > 0;
"""


def desktop_ready(browser, portal: Portal) -> float:
    browser.get(f"{portal.url}/hub/home")
    tile = WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "tile-desktop"))
    launch = tile.find_element(By.CSS_SELECTOR, ".ch-app-launch")
    # Bootstrap scrolls smoothly; a click during the scroll lands on something else.
    browser.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", launch
    )
    started = time.monotonic()
    launch.click()
    WebDriverWait(browser, 180, poll_frequency=0.05).until(lambda b: b.execute_script(FRAME_DRAWN))
    return time.monotonic() - started


def lab_ready(browser, portal: Portal) -> float:
    browser.get(f"{portal.url}/hub/home")
    url = f"{portal.url}/hub/spawn/{USER}?" + urlencode({**NOTEBOOK, "next": f"/user/{USER}/lab"})
    started = time.monotonic()
    browser.get(url)
    WebDriverWait(browser, 180, poll_frequency=0.05).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, ".jp-Launcher-body, .jp-Launcher")
    )
    return time.monotonic() - started


def idle_cluster(portal: Portal, server: str) -> None:
    portal.stop_server(USER, server)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not alive_jobs("alpha", USER) + alive_jobs("beta", USER):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the jobs of {USER} did not end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ensure_users(USER)
    times: dict[str, list[float]] = {"desktop": [], "notebook": []}
    with tempfile.TemporaryDirectory(prefix="corehour-bench-") as tmp:
        portal = Portal(Path(tmp), 29800).start()
        browser = chromium()
        try:
            log_in(browser, portal, USER)
            for run in range(args.runs):
                order = ("desktop", "notebook") if run % 2 == 0 else ("notebook", "desktop")
                for kind in order:
                    if kind == "desktop":
                        seconds = desktop_ready(browser, portal)
                        idle_cluster(portal, "app-desktop")
                    else:
                        seconds = lab_ready(browser, portal)
                        idle_cluster(portal, "")
                    times[kind].append(seconds)
                    print(f"{kind}: {seconds:.2f} s")
        finally:
            browser.quit()
            portal.stop()
    write_result(
        "desktop_ready",
        f"median time from clicking the Desktop tile on an idle cluster to the desktop's first "
        f"frame in the browser, {args.runs} runs; baseline: a notebook server's spawn to "
        "JupyterLab drawn, on the same portal",
        "s",
        statistics.median(times["desktop"]),
        statistics.median(times["notebook"]),
        ours_all=[round(x, 3) for x in times["desktop"]],
        baseline_all=[round(x, 3) for x in times["notebook"]],
        target="ratio <= 1.3",
        machine="2-core Debian 12 VM, Slurm 22.05, headless Chromium; runs alternate",
    )


if __name__ == "__main__":
    main()
