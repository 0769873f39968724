"""What the meter asks sacct, and how it reads a requeued job's earlier runs.

The attacks: a job requeued (by a node failure, preemption or ``scontrol requeue``) whose
first run is never settled, and a meter that after a long outage asks sacct for a window so
long that it never finishes, so it never catches up.
"""

from __future__ import annotations

import asyncio
import copy
import json

from billing_hooks.meter import SACCT_MAX_WINDOW, Meter, _slurm_time
from billing_hooks.usage import parse_sacct
from centre.slurm_cli import CommandResult

from .conftest import FIXTURES

NOW = 1_800_000_000


def fake_slurm(calls: list[list[str]]):
    async def run(argv, timeout=None, **_):
        calls.append(list(argv))
        return CommandResult(tuple(argv), 0, json.dumps({"jobs": []}), "")

    return run


def sacct_argv(calls: list[list[str]]) -> list[str]:
    return next(argv for argv in calls if "sacct" in argv)


def test_after_a_three_day_outage_each_read_covers_a_bounded_window(site):
    calls: list[list[str]] = []
    meter = Meter(site, None, None, run=fake_slurm(calls))
    cursor = NOW - 3 * 24 * 3600
    reading = asyncio.run(meter.read_cluster("alpha", cursor, NOW))
    argv = sacct_argv(calls)
    start = argv[argv.index("--starttime") + 1]
    end = argv[argv.index("--endtime") + 1]
    since = cursor - 300
    assert (start, end) == (_slurm_time(since), _slurm_time(since + SACCT_MAX_WINDOW))
    # The cursor moves to the end of what was read, and the next cycle reads on from there.
    assert reading.sacct_until == since + SACCT_MAX_WINDOW < NOW
    calls.clear()
    caught_up = asyncio.run(meter.read_cluster("alpha", NOW - 60, NOW))
    assert caught_up.sacct_until == NOW
    argv = sacct_argv(calls)
    assert argv[argv.index("--endtime") + 1] == _slurm_time(NOW)


def test_sacct_is_asked_for_every_run_of_a_requeued_job(site):
    calls: list[list[str]] = []
    asyncio.run(Meter(site, None, None, run=fake_slurm(calls)).read_cluster("alpha", NOW, NOW))
    argv = sacct_argv(calls)
    assert "--duplicates" in argv
    states = next(a for a in argv if a.startswith("--state=")).removeprefix("--state=")
    assert {"REQUEUED", "PREEMPTED", "COMPLETED"} <= set(states.split(","))


def test_the_first_run_of_a_requeued_job_is_an_ended_run():
    raw = json.loads((FIXTURES / "slurm-22.05.8" / "sacct-alpha.json").read_text())
    record = next(
        j for j in raw["jobs"] if j["time"]["start"] and j["time"]["end"] > j["time"]["start"]
    )
    first, second = copy.deepcopy(record), copy.deepcopy(record)
    first["state"]["current"] = "REQUEUED"
    second["time"]["start"] = first["time"]["end"] + 120
    second["time"]["end"] = second["time"]["start"] + 30
    runs = parse_sacct(json.dumps({**raw, "jobs": [first, second]}), "alpha")
    assert [(r.state, r.ended) for r in runs] == [("REQUEUED", True), ("CANCELLED", True)]
    assert runs[0].end == first["time"]["end"] and runs[0].start != runs[1].start
