"""A Jupyter server extension: ``GET api/corehour/usage``, the job's live use of what it was given.

Every notebook and app server loads it (images/*/etc/jupyter/jupyter_server_config.json).
JupyterLab's status bar (images/labextension) and the apps' job panels poll it.  The numbers
are the Slurm job's, not the server process's: see centre/job_usage.py.

Once a minute it also takes a sample for the job's history, and every few minutes it sends
what it has to the hub (centre/job_samples.py), when the hub gave the job a key to do so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import deque
from collections.abc import Mapping

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.ioloop import IOLoop, PeriodicCallback

from centre.job_samples import KEY_VARIABLE, MAX_SAMPLES_PER_REPORT, REPORT_PATH, sample_since
from centre.job_usage import Reading, UsageMeter

log = logging.getLogger("corehour.usage")

ROUTE = "api/corehour/usage"


class UsageHandler(APIHandler):
    @web.authenticated
    async def get(self) -> None:
        meter: UsageMeter = self.settings["corehour_usage_meter"]
        # Off the event loop: NVML can take a while to start on a GPU node, and the server
        # must keep answering the notebook meanwhile.
        reading = await asyncio.to_thread(meter.read)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(reading.as_json()))


# Read once a minute even with no browser open, so the idle nudge knows the last hour.
SAMPLE_MS = 60_000
# Minutes per report to the hub: one small request per job every few minutes.
REPORT_EVERY = 5


class HistoryReporter:
    """The job's minute samples, kept until the hub has them (the last two hours at most)."""

    def __init__(self, environ: Mapping[str, str]):
        self.key = environ.get(KEY_VARIABLE, "")
        self.url = environ.get("JUPYTERHUB_API_URL", "").rstrip("/") + "/" + REPORT_PATH
        job_id = environ.get("SLURM_JOB_ID", "")
        self.job_id = int(job_id) if job_id.isdigit() else 0
        self.enabled = bool(self.key and self.job_id and environ.get("JUPYTERHUB_API_URL"))
        self.pending: deque[list] = deque(maxlen=MAX_SAMPLES_PER_REPORT)
        self.reported_once = False
        self._previous: tuple[float, float] | None = None

    def add(self, reading: Reading, now: float) -> None:
        current = (now, reading.cpu_seconds)
        if self._previous is not None:
            sample = sample_since(
                self._previous,
                current,
                allocated_cores=reading.allocated_cores,
                memory_bytes=reading.memory_used_bytes,
                memory_limit_bytes=reading.memory_limit_bytes,
                gpu_percents=[gpu.utilization_percent for gpu in reading.gpus],
                gpu_memory_bytes=[gpu.memory_used_bytes for gpu in reading.gpus],
            )
            if sample is not None:
                self.pending.append(sample.as_list())
        self._previous = current

    def due(self) -> bool:
        # The first minute goes at once, so a new job has a chart; then every few minutes.
        return bool(self.pending) and (not self.reported_once or len(self.pending) >= REPORT_EVERY)

    async def send(self) -> None:
        sent = list(self.pending)
        request = HTTPRequest(
            self.url,
            method="POST",
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
            body=json.dumps({"job_id": self.job_id, "samples": sent}),
            request_timeout=10,
        )
        try:
            await AsyncHTTPClient().fetch(request)
        except HTTPClientError as e:
            if 400 <= e.code < 500 and e.code != 429:
                # Refused (a key from before the hub's secret changed, a clock far off): the
                # same minutes would be refused again, so they go.
                log.warning("corehour: the hub refused this job's use: %s", e)
                self._forget(sent)
                return
            log.warning("corehour: could not send this job's use to the hub: %s", e)
            return  # kept for the next try; the deque drops the oldest beyond two hours
        except OSError as e:
            log.warning("corehour: could not reach the hub with this job's use: %s", e)
            return
        self._forget(sent)
        self.reported_once = True

    def _forget(self, sent: list) -> None:
        for _ in sent:
            self.pending.popleft()


def _load_jupyter_server_extension(server_app) -> None:
    web_app = server_app.web_app
    meter = web_app.settings["corehour_usage_meter"] = UsageMeter()
    history = HistoryReporter(os.environ)

    async def sample() -> None:
        reading = await asyncio.to_thread(meter.read)
        if not history.enabled:
            return
        history.add(reading, time.time())
        if history.due():
            await history.send()

    if history.enabled:
        # The span of the first sample starts now, not a minute from now.
        IOLoop.current().add_callback(sample)

    PeriodicCallback(sample, SAMPLE_MS).start()
    route = url_path_join(web_app.settings["base_url"], ROUTE)
    web_app.add_handlers(".*$", [(route, UsageHandler)])


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": __name__}]
