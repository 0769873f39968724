"""A Jupyter server extension: ``GET api/corehour/usage``, the job's live use of what it was given.

Every notebook and app server loads it (images/*/etc/jupyter/jupyter_server_config.json).
JupyterLab's status bar (images/labextension) and the apps' job panels poll it.  The numbers
are the Slurm job's, not the server process's: see centre/job_usage.py.

Once a minute it also takes a sample for the job's history, and every few minutes it sends
what it has to the hub (centre/job_samples.py), when the hub gave the job a key to do so.  It
is an extension app, not a bare module, for the hook a stopping server calls: the minutes
since the last report go then, not never.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.application import ExtensionApp
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


class UsageExtension(ExtensionApp):
    """The live use route, the minute samples, and a last report as the server stops."""

    name = "corehour_usage"

    def initialize_settings(self) -> None:
        self.meter = self.settings["corehour_usage_meter"] = UsageMeter()
        self.history = HistoryReporter(os.environ)
        self.sampler = PeriodicCallback(self.sample, SAMPLE_SECONDS * 1000)

    def initialize_handlers(self) -> None:
        self.handlers.append((ROUTE, UsageHandler))

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        if self.history.enabled:
            # The span of the first sample starts now, not a minute from now.
            IOLoop.current().add_callback(self.sample)
        self.sampler.start()

    async def sample(self) -> None:
        reading = await asyncio.to_thread(self.meter.read)
        if not self.history.enabled:
            return
        self.history.add(reading, time.time())
        if self.history.due():
            await self.history.send()

    async def stop_extension(self) -> None:
        """The minutes the hub does not have yet, as the server stops: JupyterHub's stop, the
        idle culler and Slurm's SIGTERM at the end of the job all come through here."""
        if not self.sampler.is_running():
            return  # already stopped: jupyter_server may call this twice
        self.sampler.stop()
        if self.history.enabled:
            reading = await asyncio.to_thread(self.meter.read)
            await self.history.last_report(reading, time.time())


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": __name__, "app": UsageExtension}]
