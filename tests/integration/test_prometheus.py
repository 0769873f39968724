"""Debian's real Prometheus, with the shipped scrape configuration pointed at a test portal:
every corehour target is scraped without error, and every query of the shipped Grafana
dashboard returns data.  The scraper's token reads metrics and nothing else."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.harness import REPO, free_port

pytestmark = pytest.mark.integration

SCRAPE_CONFIG = REPO / "deploy" / "prometheus" / "corehour.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "corehour-dashboard.json"
USER = "chtest2"


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.fixture
def prometheus(portal):
    """Prometheus as its own Debian user, scraping the portal every 2 s."""
    # Not pytest's tmp_path: its parents are root's alone, and Prometheus runs as itself.
    tmp_path = Path(tempfile.mkdtemp(prefix="corehour-prometheus-"))
    prometheus_user = pwd.getpwnam("prometheus")
    token = tmp_path / "corehour-token"
    token.write_text(portal.metrics_token)
    data = tmp_path / "data"
    data.mkdir()
    for path in (token, data):
        os.chown(path, prometheus_user.pw_uid, prometheus_user.pw_gid)
    token.chmod(0o600)
    tmp_path.chmod(0o755)

    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    config["global"].update(scrape_interval="2s", evaluation_interval="2s")
    portal_address = portal.url.removeprefix("http://")
    for job in config["scrape_configs"]:
        job.update(scheme="http")
        job["authorization"]["credentials_file"] = str(token)
        job["static_configs"] = [{"targets": [portal_address]}]
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    config_file.chmod(0o644)

    port = free_port()
    process = subprocess.Popen(
        [
            "runuser", "-u", "prometheus", "--", shutil.which("prometheus"),
            f"--config.file={config_file}", f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=open(tmp_path / "prometheus.log", "wb"),  # noqa: SIM115 (the child keeps it)
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
        try:
            if requests.get(f"{url}/-/ready", timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "Prometheus did not become ready"
        time.sleep(0.3)
    yield url
    process.terminate()
    process.wait(timeout=30)
    shutil.rmtree(tmp_path)


def wait_for(check, timeout: float, message):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(1)


def test_prometheus_scrapes_every_target_and_the_dashboard_has_data(portal, tokens, prometheus):
    portal.wait_billing(tokens[USER])
    # A server makes the hub watch its cluster, so the queue series exist.
    started = portal.start_server(USER, tokens[USER], profile="cpu", cluster="alpha")
    assert started.status_code in (201, 202), started.text
    portal.wait_ready(USER, timeout=120)
    try:

        def targets():
            return requests.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"][
                "activeTargets"
            ]

        healthy = wait_for(
            lambda: (
                (t := targets())
                and len(t) == 2
                and all(target["health"] == "up" and not target["lastError"] for target in t)
                and t
            ),
            60,
            lambda: f"not every target is up: {json.dumps(targets(), indent=1)[:3000]}",
        )
        assert {target["labels"]["job"] for target in healthy} == {
            "corehour-hub",
            "corehour-billing",
        }

        def answer(expr: str) -> list:
            body = requests.get(
                f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10
            ).json()
            assert body["status"] == "success", (expr, body)
            return body["data"]["result"]

        queries = dashboard_queries()
        assert len(queries) >= 10
        for expr in queries:
            # rate() and increase() need two scrapes of a series; the first can take a cycle.
            wait_for(lambda e=expr: answer(e), 45, lambda e=expr: f"no data for {e}")
        (alpha,) = [
            r for r in answer("corehour_cluster_reachable") if r["metric"]["cluster"] == "alpha"
        ]
        assert alpha["value"][1] == "1"
        running = answer('corehour_cluster_jobs{cluster="alpha", state="RUNNING"}')
        assert running and float(running[0]["value"][1]) >= 1  # the server's own job
    finally:
        portal.stop_server(USER)
        portal.wait_gone(USER, timeout=60)


def test_the_scrapers_token_reads_metrics_and_nothing_else(portal):
    headers = {"Authorization": f"token {portal.metrics_token}"}
    assert requests.get(f"{portal.url}/hub/metrics", headers=headers, timeout=30).ok
    for path in ("/hub/api/users", f"/hub/api/users/{USER}", "/hub/api/services"):
        refused = requests.get(f"{portal.url}{path}", headers=headers, timeout=30)
        assert refused.status_code in (403, 404), (path, refused.status_code, refused.text[:200])
        assert USER not in refused.text
    start = requests.post(
        f"{portal.url}/hub/api/users/{USER}/server", headers=headers, timeout=30, json={}
    )
    assert start.status_code in (403, 404)
    me = requests.get(f"{portal.url}/hub/api/user", headers=headers, timeout=30).json()
    assert me["kind"] == "service" and me["name"] == "metrics"
    assert set(me.get("scopes", [])) <= {"read:metrics"}
