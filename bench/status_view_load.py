"""The phone status view's first load on a slow phone network, against the hub's home page.

    /opt/corehour/hub/bin/python -m bench.status_view_load [--runs 5]

One portal; a person with a running batch job is signed in to a headless Chromium emulating a
phone (390×844, touch, a mobile user agent) on DevTools' "Fast 3G" (562.5 ms latency, 1.44 Mbit/s
down, 675 kbit/s up).  Runs alternate between ``/hub/m/`` (ours) and ``/hub/home`` (the
baseline, the page a person lands on today), each a first visit: the browser's cache is
cleared and service workers are bypassed.  Each run reads First Contentful Paint from the page's
own performance timeline, and the bytes transferred until the page shows its content (ours:
its jobs, fetched after the first paint; the home page: its load event).  The medians go to
bench/results/status_view_load.json (FCP in ours/baseline; the transfer sizes beside it).
Needs what `./corehour test` sets up.
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
from tests.billing_checks import wait_until
from tests.browser.helpers import chromium, log_in
from tests.browser.test_phone import as_phone
from tests.harness import Portal, ensure_users, slurm

USER = "chbenchphone"
FAST_3G = {
    "offline": False,
    "latency": 562.5,
    "downloadThroughput": 1.44e6 / 8,
    "uploadThroughput": 675e3 / 8,
}
TRANSFERRED = (
    "return performance.getEntriesByType('navigation').concat("
    "performance.getEntriesByType('resource')).reduce((n, e) => n + (e.transferSize || 0), 0)"
)
FCP = (
    "const e = performance.getEntriesByName('first-contentful-paint')[0];"
    " return e ? e.startTime : null"
)


def first_visit(browser, url: str, shown) -> tuple[float, int]:
    """(FCP in seconds, bytes transferred until ``shown``) for a cold load of ``url``."""
    browser.execute_cdp_cmd("Network.clearBrowserCache", {})
    browser.get("about:blank")
    browser.get(url)
    WebDriverWait(browser, 120, poll_frequency=0.05).until(shown)
    fcp = WebDriverWait(browser, 30).until(lambda b: b.execute_script(FCP))
    return fcp / 1000, int(browser.execute_script(TRANSFERRED))


def status_shown(browser) -> bool:
    return bool(browser.find_elements(By.CSS_SELECTOR, "li.ch-job"))


def home_loaded(browser) -> bool:
    return browser.execute_script("return document.readyState") == "complete"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ensure_users(USER)
    with tempfile.TemporaryDirectory(prefix="corehour-bench-phone-") as work:
        portal = Portal(Path(work), 29500).start()
        browser = chromium()
        try:
            token = portal.user_token(USER)
            portal.wait_billing(token)
            job = portal.request(
                "POST",
                "/corehour/jobs/beta",
                token,
                json={"script": "sleep 900", "name": "bench-phone", "memory_gb": 1},
            )
            assert job.status_code == 201, job.text
            job_id = job.json()["job_id"]
            wait_until(
                lambda: "R" in slurm("beta", "squeue", "-h", "-j", job_id, "-o", "%t").stdout,
                60,
                "the bench's job did not start",
            )
            as_phone(browser)
            log_in(browser, portal, USER)
            browser.execute_cdp_cmd("Network.enable", {})
            browser.execute_cdp_cmd("Network.setBypassServiceWorker", {"bypass": True})
            browser.execute_cdp_cmd("Network.emulateNetworkConditions", FAST_3G)
            ours, home = [], []
            for run in range(args.runs):
                ours.append(first_visit(browser, f"{portal.url}/hub/m/", status_shown))
                home.append(first_visit(browser, f"{portal.url}/hub/home", home_loaded))
                print(f"run {run + 1}: /hub/m/ {ours[-1]}, /hub/home {home[-1]}", flush=True)
                time.sleep(1)
            portal.request("POST", f"/corehour/jobs/beta/{job_id}/cancel", token)
        finally:
            browser.quit()
            portal.stop()
    write_result(
        "status_view_load",
        "first contentful paint, phone on Fast 3G, first visit",
        "s",
        statistics.median(f for f, _ in ours),
        statistics.median(f for f, _ in home),
        ours_transfer_kb=round(statistics.median(b for _, b in ours) / 1024, 1),
        baseline_transfer_kb=round(statistics.median(b for _, b in home) / 1024, 1),
        target="ours <= 1.0 s and <= 150 KB",
        runs=args.runs,
        ours_runs=ours,
        baseline_runs=home,
    )


if __name__ == "__main__":
    main()
