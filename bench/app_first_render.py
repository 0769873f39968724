"""First render of an app: a running app server's tile clicked, until its first widget shows.

    /opt/corehour/hub/bin/python -m bench.app_first_render [--app lammps-md] [--runs 7]

Two portals on the same stack, in one run: ours starts app servers with a preheated kernel
(voila_apps/kit/preheat.py: a kernel already running, the app's widget module imported);
the baseline is the same portal with ``c.CorehourSpawner.preheat_apps = False``, i.e.
Voila as a server extension out of the box (its own preheating works only standalone).
Runs alternate between the two.  Each run opens the app from its tile's Open button in a
real headless Chromium and times until the app's first widget is drawn (and, reported
alongside, until the whole form with its Submit button is); between runs the
page is left and the pool has time to warm its next kernel, as between two people's visits.
The first launch (Slurm job, server start, render) is reported alongside.  Writes
bench/results/app_first_render.json.  Needs what `./corehour test` sets up.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bench.report import write_result
from tests.browser.app_steps import open_app
from tests.browser.helpers import chromium
from tests.harness import Portal, ensure_users

USER = "chbenchapp"
# The pool warms its next kernel 5 s after handing one out, and warming takes about 3 s.
SETTLE_SECONDS = 12


def first_widget_drawn(browser) -> bool:
    """A widget's own content is in the page (the app's heading, the first widget it shows)."""
    return bool(browser.find_elements(By.CSS_SELECTOR, ".widget-html-content, .widget-button"))


def submit_drawn(browser) -> bool:
    return bool(browser.find_elements(By.XPATH, "//button[contains(normalize-space(), 'Submit')]"))


class Side:
    def __init__(self, kind: str, workdir: Path, port: int, app: str):
        extra = "c.CorehourSpawner.preheat_apps = False\n" if kind == "baseline" else ""
        self.kind, self.app = kind, app
        self.portal = Portal(workdir / kind, port, extra_config=extra).start()
        self.browser = chromium()

    def launch(self) -> float:
        """Log in and launch from the tile: the server's first start, with its render."""
        started = time.monotonic()
        open_app(self.browser, self.portal, USER, self.app)
        return time.monotonic() - started

    def open_from_tile(self) -> tuple[float, float]:
        """Seconds from the click to the first widget drawn, and to the whole form drawn."""
        self.browser.get(f"{self.portal.url}/hub/home")
        tile = WebDriverWait(self.browser, 30).until(
            lambda b: b.find_element(By.ID, f"tile-{self.app}")
        )
        open_link = tile.find_element(By.LINK_TEXT, "Open")
        self.browser.execute_script(
            "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", open_link
        )
        time.sleep(SETTLE_SECONDS)
        started = time.monotonic()
        open_link.click()
        WebDriverWait(self.browser, 120, poll_frequency=0.02).until(first_widget_drawn)
        first = time.monotonic() - started
        WebDriverWait(self.browser, 120, poll_frequency=0.02).until(submit_drawn)
        return first, time.monotonic() - started

    def close(self) -> None:
        self.browser.quit()
        self.portal.stop_server(USER, f"app-{self.app}")
        self.portal.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="lammps-md")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    ensure_users(USER)
    with tempfile.TemporaryDirectory(prefix="corehour-bench-") as tmp:
        sides = [
            Side("ours", Path(tmp), 29400, args.app),
            Side("baseline", Path(tmp), 29600, args.app),
        ]
        try:
            launches = {side.kind: side.launch() for side in sides}
            renders: dict[str, list[float]] = {side.kind: [] for side in sides}
            forms: dict[str, list[float]] = {side.kind: [] for side in sides}
            for run in range(args.runs):
                for side in sides if run % 2 == 0 else reversed(sides):
                    first, form = side.open_from_tile()
                    renders[side.kind].append(first)
                    forms[side.kind].append(form)
                    print(f"{side.kind}: first widget {first:.2f} s, whole form {form:.2f} s")
        finally:
            for side in sides:
                side.close()
    write_result(
        "app_first_render",
        f"median time from clicking Open on the {args.app} tile (server running) to its first "
        f"widget drawn, {args.runs} runs each; baseline: the same portal without preheated kernels",
        "s",
        statistics.median(renders["ours"]),
        statistics.median(renders["baseline"]),
        ours_all=[round(x, 3) for x in renders["ours"]],
        baseline_all=[round(x, 3) for x in renders["baseline"]],
        whole_form_s={kind: round(statistics.median(forms[kind]), 3) for kind in forms},
        first_launch_s={kind: round(seconds, 3) for kind, seconds in launches.items()},
        machine="2-core Debian 12 VM, Slurm 22.05, headless Chromium; ours and baseline alternate",
    )


if __name__ == "__main__":
    main()
