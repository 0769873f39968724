"""An app's batch job reports its own minutes for My jobs: ``python -m voila_apps.kit.job_reporter``.

The batch script starts it in the background before the app's work (see
:func:`voila_apps.kit.jobs.batch_script`) and stops it with SIGTERM when the work ends; Slurm
sends the same signal when the job is cancelled or runs out of time.  On that signal it takes
a last sample of the minute so far and sends what the hub does not have yet, so a short job
has its history too.  It measures the job, not itself: the job's cgroup, else the process
tree of the batch script's shell, which started it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Mapping

from centre.job_usage import UsageMeter
from voila_apps.kit.history_reporter import SAMPLE_SECONDS, HistoryReporter


async def report_until_stopped(
    environ: Mapping[str, str], meter: UsageMeter, stop: asyncio.Event, every: float
) -> HistoryReporter:
    """Sample every ``every`` seconds and send when due, until ``stop``; then send the rest."""
    history = HistoryReporter(environ)
    if not history.enabled:
        return history
    while True:
        history.add(await asyncio.to_thread(meter.read), time.time())
        if history.due():
            await history.send()
        try:
            await asyncio.wait_for(stop.wait(), every)
            break
        except TimeoutError:
            continue
    # The minute so far; the meter refuses a second reading within a second, so wait for one.
    await asyncio.sleep(meter.SHORTEST_INTERVAL)
    await history.last_report(await asyncio.to_thread(meter.read), time.time())
    return history


async def main(environ: Mapping[str, str]) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    meter = UsageMeter(environ, tree_root=os.getppid())
    history = await report_until_stopped(environ, meter, stop, SAMPLE_SECONDS)
    return 0 if history.enabled else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(os.environ)))
