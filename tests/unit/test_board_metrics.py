"""Jobs by state per cluster on /hub/metrics, from the status board's last answers."""

import asyncio
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from centre.slurm_json import parse_sinfo_json
from spawners.board_metrics import register
from spawners.status_board import StatusBoard
from tests.unit.test_status_board import FakeSlurm, squeue_text

FIXTURES = Path(__file__).parent / "fixtures"


def scrape(registry) -> dict:
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_queue_by_state_and_whether_each_cluster_answered():
    alpha = FakeSlurm(squeue_text(("1", "RUNNING"), ("2", "RUNNING"), ("3", "PENDING")))
    beta = FakeSlurm(OSError("ssh to beta failed: Network is unreachable"))
    board = StatusBoard(lambda cluster: {"alpha": alpha, "beta": beta}[cluster](cluster))

    async def ask():
        now = board.clock()
        await board.snapshot("alpha", now)
        await board.snapshot("beta", now)

    asyncio.run(ask())
    registry = CollectorRegistry()
    register(lambda: [board], registry)
    register(lambda: [board], registry)  # a second call adds nothing (no duplicate series)
    got = scrape(registry)
    assert got["corehour_cluster_jobs", (("cluster", "alpha"), ("state", "RUNNING"))] == 2
    assert got["corehour_cluster_jobs", (("cluster", "alpha"), ("state", "PENDING"))] == 1
    assert got["corehour_cluster_reachable", (("cluster", "alpha"),)] == 1
    # A cluster that did not answer shows no queue, not an empty or stale one.
    assert got["corehour_cluster_reachable", (("cluster", "beta"),)] == 0
    assert not [
        key for key in got if key[0] == "corehour_cluster_jobs" and ("cluster", "beta") in key[1]
    ]
    assert got["corehour_cluster_queries_total", (("cluster", "alpha"),)] == 1
    assert got["corehour_cluster_answer_age_seconds", (("cluster", "alpha"),)] >= 0


def test_no_board_no_series():
    registry = CollectorRegistry()
    register(list, registry)
    names = {family.name for family in registry.collect()}
    assert "corehour_cluster_jobs" in names  # described, with no samples
    assert not [key for key in scrape(registry) if key[0] == "corehour_cluster_jobs"]


def test_nodes_by_state_come_from_a_real_sinfo_capture_at_most_once_a_minute():
    sinfo = (FIXTURES / "slurm-22.05.8" / "sinfo.json").read_text()
    asked = []

    async def fetch_nodes(cluster):
        asked.append(cluster)
        return sinfo

    clock = [1000.0]
    board = StatusBoard(
        FakeSlurm(squeue_text(("1", "RUNNING"))), clock=lambda: clock[0], fetch_nodes=fetch_nodes
    )

    async def cycle_twice():
        await board.refresh_nodes("alpha")
        clock[0] += 30  # within the minute: no second sinfo
        await board.refresh_nodes("alpha")

    asyncio.run(cycle_twice())
    assert asked == ["alpha"]
    (node,) = parse_sinfo_json(sinfo)
    registry = CollectorRegistry()
    register(lambda: [board], registry)
    got = scrape(registry)
    assert got["corehour_cluster_nodes", (("cluster", "alpha"), ("state", node.state))] == 1
    assert got["corehour_cluster_cpus", (("cluster", "alpha"), ("kind", "total"))] == node.cpus
    assert got["corehour_cluster_cpus", (("cluster", "alpha"), ("kind", "allocated"))] == (
        node.alloc_cpus
    )
    clock[0] += 31
    asyncio.run(board.refresh_nodes("alpha"))
    assert asked == ["alpha", "alpha"]


def test_a_cluster_whose_sinfo_fails_shows_no_stale_nodes():
    answers = iter([(FIXTURES / "slurm-22.05.8" / "sinfo.json").read_text(), OSError("ssh failed")])

    async def fetch_nodes(cluster):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = [0.0]
    board = StatusBoard(FakeSlurm(""), clock=lambda: clock[0], fetch_nodes=fetch_nodes)
    asyncio.run(board.refresh_nodes("alpha"))
    assert "alpha" in board.nodes()
    clock[0] += 61
    asyncio.run(board.refresh_nodes("alpha"))
    assert board.nodes() == {}
