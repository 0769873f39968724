"""The shared status board: one squeue per cluster, however many servers ask."""

import asyncio
import json
import logging

import pytest

from spawners.status_board import SlurmUnknown, StatusBoard


def squeue_text(*jobs):
    return json.dumps(
        {
            "jobs": [
                {"job_id": int(j), "job_state": state, "partition": "cpu", "user_name": "alice"}
                for j, state in jobs
            ]
        }
    )


class FakeSlurm:
    """Scripted squeue answers for the unit tier (the integration tier uses real Slurm)."""

    def __init__(self, answer):
        self.answer = answer
        self.calls = []

    async def __call__(self, cluster):
        self.calls.append(cluster)
        await asyncio.sleep(0.01)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_concurrent_readers_share_one_query():
    async def main():
        slurm = FakeSlurm(squeue_text(("1", "RUNNING")))
        board = StatusBoard(slurm)
        now = board.clock()
        snaps = await asyncio.gather(*(board.snapshot("alpha", now) for _ in range(20)))
        await asyncio.gather(*(board.snapshot("beta", now) for _ in range(20)))
        return slurm.calls, snaps

    calls, snaps = asyncio.run(main())
    assert sorted(calls) == ["alpha", "beta"]
    assert all(s.jobs["1"].running for s in snaps)


def test_a_fresh_enough_snapshot_is_reused_and_a_stale_one_refreshed():
    async def main():
        slurm = FakeSlurm(squeue_text(("1", "RUNNING")))
        board = StatusBoard(slurm)
        first = await board.snapshot("alpha", board.clock())
        again = await board.snapshot("alpha", first.started_at)
        newer = await board.snapshot("alpha", board.clock())
        return slurm.calls, first, again, newer

    calls, first, again, newer = asyncio.run(main())
    assert again is first
    assert newer.started_at > first.started_at
    assert calls == ["alpha", "alpha"]


def test_unreachable_slurm_gives_unknown_not_empty():
    async def main():
        board = StatusBoard(FakeSlurm(RuntimeError("Unable to contact slurm controller")))
        return await board.snapshot("alpha", board.clock())

    snap = asyncio.run(main())
    assert not snap.reachable
    assert snap.jobs is None
    assert "Unable to contact" in snap.error


def test_unreadable_output_is_unknown_too():
    async def main():
        board = StatusBoard(FakeSlurm("squeue: error: something\n"))
        return await board.snapshot("alpha", board.clock())

    assert asyncio.run(main()).jobs is None


class Watched:
    def __init__(self, job_id):
        self.job_id = job_id
        self.notified = 0

    async def poll_and_notify(self):
        self.notified += 1


def test_cycle_notifies_only_servers_whose_jobs_ended():
    async def main():
        slurm = FakeSlurm(squeue_text(("1", "RUNNING"), ("2", "CANCELLED")))
        board = StatusBoard(slurm)
        alive, cancelled, vanished = Watched("1"), Watched("2"), Watched("3")
        for spawner in (alive, cancelled, vanished):
            board.watch("alpha", spawner, interval=0.05)
        await asyncio.sleep(0.2)
        queries = len(slurm.calls)
        for spawner in (alive, cancelled, vanished):
            board.unwatch("alpha", spawner)
        return alive, cancelled, vanished, queries

    alive, cancelled, vanished, queries = asyncio.run(main())
    assert alive.notified == 0
    assert cancelled.notified >= 1
    assert vanished.notified >= 1
    # one query per cycle for all three servers, not one per server
    assert 1 <= queries <= 4


def test_cycle_keeps_servers_while_slurm_is_unreachable():
    async def main():
        board = StatusBoard(FakeSlurm(RuntimeError("down")))
        spawner = Watched("1")
        board.watch("alpha", spawner, interval=0.05)
        await asyncio.sleep(0.2)
        board.unwatch("alpha", spawner)
        return spawner

    assert asyncio.run(main()).notified == 0


def test_cycle_leaves_starting_stopping_and_newer_jobs_alone():
    async def main():
        board = StatusBoard(FakeSlurm(squeue_text(("1", "CANCELLED"))))
        stopping = Watched("1")
        stopping.pending = "stop"
        newer = Watched("2")
        newer._submitted_at = board.clock() + 60  # submitted after any query this test makes
        for spawner in (stopping, newer):
            board.watch("alpha", spawner, interval=0.05)
        await asyncio.sleep(0.2)
        for spawner in (stopping, newer):
            board.unwatch("alpha", spawner)
        return stopping, newer

    stopping, newer = asyncio.run(main())
    assert stopping.notified == 0
    assert newer.notified == 0


def test_the_cycle_logs_when_it_starts_and_stops_not_every_round(caplog):
    async def main():
        board = StatusBoard(FakeSlurm(squeue_text(("1", "RUNNING"))))
        first, second = Watched("1"), Watched("1")
        board.watch("alpha", first, interval=0.02)
        board.watch("alpha", second, interval=0.02)  # the cycle already runs
        await asyncio.sleep(0.1)
        board.unwatch("alpha", first)
        board.unwatch("alpha", second)
        await asyncio.sleep(0.1)

    with caplog.at_level(logging.INFO, logger="corehour.status"):
        asyncio.run(main())
    assert [r.getMessage() for r in caplog.records] == [
        "Watching servers on cluster alpha: one squeue --json every 0.02 s for all of them",
        "No servers left on cluster alpha; its squeue cycle stops",
    ]


def test_a_cluster_that_did_not_answer_is_unreachable_with_the_reason_until_it_answers():
    clock = [1000.0]

    async def main():
        slurm = FakeSlurm(RuntimeError("ssh: connect to host gamma port 22: No route to host"))
        board = StatusBoard(slurm, clock=lambda: clock[0])
        await board.snapshot("gamma", clock[0])
        down = board.unreachable()
        clock[0] += 61
        stale = board.unreachable(within=60)
        slurm.answer = squeue_text(("1", "RUNNING"))
        await board.snapshot("gamma", clock[0])
        return down, stale, board.unreachable()

    down, stale, back = asyncio.run(main())
    assert down == {"gamma": "ssh: connect to host gamma port 22: No route to host"}
    assert stale == {}  # an old failure says nothing about now
    assert back == {}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_started_job_is_read_from_a_recent_answer_and_asked_again_at_most_every_ten_seconds():
    async def main():
        slurm = FakeSlurm(squeue_text(("7", "RUNNING"), ("8", "PENDING"), ("6", "CANCELLED")))
        clock = Clock()
        board = StatusBoard(slurm, clock=clock)
        assert (await board.started_job("alpha", "7")).user == "alice"
        clock.now += 30  # a minute-old answer still shows a running job
        assert (await board.started_job("alpha", "7")).job_id == "7"
        # Just cancelled, still in squeue: its last report comes as it ends.
        assert (await board.started_job("alpha", "6")).state == "CANCELLED"
        assert len(slurm.calls) == 1
        # A job the answer does not show running (pending, or started since): asked once more,
        # and not again for ten seconds however often someone asks.
        assert await board.started_job("alpha", "8") is None
        assert await board.started_job("alpha", "9") is None
        assert len(slurm.calls) == 2
        clock.now += 11
        assert await board.started_job("alpha", "9") is None
        return len(slurm.calls)

    assert asyncio.run(main()) == 3


def test_a_job_on_a_cluster_that_does_not_answer_is_unknown_not_absent():
    async def main():
        board = StatusBoard(FakeSlurm(OSError("slurmctld down")))
        await board.started_job("alpha", "7")

    with pytest.raises(SlurmUnknown, match="alpha did not answer: slurmctld down"):
        asyncio.run(main())
