"""A job's minute samples for its history, kept until the hub has them.

Both kinds of portal job use it: a server (voila_apps/kit/usage_server.py) and an app's batch
job (voila_apps/kit/job_reporter.py).  Only tornado's HTTP client: a batch job's reporter
stays small.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Mapping

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from centre.job_samples import KEY_VARIABLE, MAX_SAMPLES_PER_REPORT, REPORT_PATH, sample_since
from centre.job_usage import Reading

log = logging.getLogger("corehour.usage")

# Read once a minute even with no browser open, so the idle nudge knows the last hour.
SAMPLE_SECONDS = 60
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
        self._sending = asyncio.Lock()

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
        # One report at a time: a stopping server may be told to stop twice, and the minute
        # timer may fire during a slow report.
        async with self._sending:
            if self.pending:
                await self._send(list(self.pending))

    async def _send(self, sent: list[list]) -> None:
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

    async def last_report(self, reading: Reading, now: float) -> None:
        """The minute so far and whatever is still unsent, as the job or server stops."""
        self.add(reading, now)
        if self.pending:
            await self.send()

    def _forget(self, sent: list) -> None:
        # By identity: while a report was out, the oldest minutes may have made room for new.
        sent_ids = {id(sample) for sample in sent}
        while self.pending and id(self.pending[0]) in sent_ids:
            self.pending.popleft()
