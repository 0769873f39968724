"""An app's batch job reports its own use: the reporter the batch script starts and stops.

The script runs in a real bash with the reporter on a real interpreter, against a small HTTP
receiver standing in for the hub's one endpoint (the hub's side has its own tests)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from centre.job_samples import FIELDS, KEY_VARIABLE, KEYS_VARIABLE, key_for_cluster
from centre.job_usage import Reading
from voila_apps.kit.history_reporter import HistoryReporter
from voila_apps.kit.jobs import batch_script, check_resources
from voila_apps.kit.slurm import batch_environment

pytestmark = pytest.mark.unit

KEY = "alpha/ann." + "a" * 64


class Receiver(BaseHTTPRequestHandler):
    reports: list[tuple[str, dict]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).reports.append((self.headers["Authorization"], json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"stored": 1}')

    def log_message(self, *args):
        pass


@pytest.fixture
def hub():
    Receiver.reports = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hub/api", Receiver.reports
    server.shutdown()


def run_job(site, tmp_path, body: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    request = check_resources(
        {"profile": "cpu", "cluster": "alpha", "cores": 2, "memory_gb": 4, "walltime_hours": 1},
        site,
    )
    script = batch_script(
        request, name="app", workdir=str(tmp_path), body=body, reporter_python=sys.executable
    )
    # What Slurm would give the batch script: its job number and shape; no cgroup of the job
    # here, so the reporter measures the script's process tree.
    env = {"PATH": "/usr/bin:/bin", "SLURM_JOB_ID": "4242", "SLURM_CPUS_ON_NODE": "2"}
    return subprocess.run(
        ["bash", "-c", script], env={**env, **environment}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def test_a_short_job_sends_its_minute_so_far_when_it_ends_and_keeps_its_exit_code(
    site, tmp_path, hub
):
    url, reports = hub
    busy = "python3 -c 'import time\nt = time.time()\nwhile time.time() - t < 3: pass'\nexit 3"
    job = run_job(site, tmp_path, busy, {KEY_VARIABLE: KEY, "JUPYTERHUB_API_URL": url})
    assert job.returncode == 3, job.stderr
    assert job.stdout == "" and job.stderr == ""  # the job's output stays the person's
    ((authorization, report),) = reports
    assert authorization == f"Bearer {KEY}"
    assert report["job_id"] == 4242
    (sample,) = [dict(zip(FIELDS, s, strict=True)) for s in report["samples"]]
    assert 3 <= sample["seconds"] <= 10
    # One of two cores was busy for most of the span: the script's tree was measured, not
    # the reporter alone.
    assert 0.4 <= sample["cpu_cores"] <= 1.2, sample
    assert sample["allocated_cores"] == 2
    assert sample["memory_bytes"] > 0


def test_a_job_without_a_key_starts_no_reporter(site, tmp_path, hub):
    url, reports = hub
    job = run_job(site, tmp_path, "sleep 1", {"JUPYTERHUB_API_URL": url})
    assert job.returncode == 0, job.stderr
    assert reports == []


def test_a_batch_job_gets_the_key_of_the_cluster_it_runs_on_and_no_other():
    keys = "alpha/ann." + "1" * 64 + " beta/ann." + "2" * 64
    server = {KEY_VARIABLE: "alpha/ann." + "1" * 64, KEYS_VARIABLE: keys, "HOME": "/home/ann"}
    on_beta = batch_environment(server, "beta")
    assert on_beta[KEY_VARIABLE] == "beta/ann." + "2" * 64
    assert KEYS_VARIABLE not in on_beta and on_beta["HOME"] == "/home/ann"
    # A cluster the server has no key for: the job reports nothing rather than the wrong key.
    assert KEY_VARIABLE not in batch_environment(server, "gamma")


@pytest.mark.parametrize(
    ("cluster", "found"),
    [("alpha", "alpha/ann.1"), ("alp", ""), ("beta", "beta/ann.2"), ("", "")],
)
def test_a_key_is_picked_by_its_whole_cluster_name(cluster, found):
    assert key_for_cluster("alpha/ann.1 beta/ann.2", cluster) == found


def test_a_server_told_to_stop_twice_sends_its_last_minutes_once(hub):
    url, reports = hub
    history = HistoryReporter({KEY_VARIABLE: KEY, "JUPYTERHUB_API_URL": url, "SLURM_JOB_ID": "77"})

    def reading(cpu_seconds: float) -> Reading:
        return Reading(
            used_cores=0.0, allocated_cores=1, memory_used_bytes=1, memory_limit_bytes=None,
            cpu_seconds=cpu_seconds,
        )  # fmt: skip

    async def stop_twice():
        history.add(reading(0.0), 1000.0)
        await asyncio.gather(
            history.last_report(reading(3.0), 1010.0), history.last_report(reading(3.0), 1010.2)
        )

    asyncio.run(stop_twice())
    ((_, report),) = reports
    assert [s[:3] for s in report["samples"]] == [[1000, 10, 0.3]]
    assert not history.pending
