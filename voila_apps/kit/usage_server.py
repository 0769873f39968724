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
import os
import time

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop, PeriodicCallback

from centre.job_usage import UsageMeter
from voila_apps.kit.history_reporter import SAMPLE_SECONDS, HistoryReporter

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

    PeriodicCallback(sample, SAMPLE_SECONDS * 1000).start()
    route = url_path_join(web_app.settings["base_url"], ROUTE)
    web_app.add_handlers(".*$", [(route, UsageHandler)])


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": __name__}]
