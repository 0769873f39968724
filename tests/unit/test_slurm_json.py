"""Parsing real Slurm output captured on this kind of machine (see fixtures/*/README.md)."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from spawners.slurm_json import (
    SlurmOutputError,
    parse_sinfo_json,
    parse_squeue_json,
    parse_test_only,
    queue_position,
)

FIXTURES = Path(__file__).parent / "fixtures" / "slurm-22.05.8"


@pytest.fixture(scope="module")
def mixed():
    return parse_squeue_json((FIXTURES / "squeue-mixed.json").read_text())


@pytest.mark.parametrize(
    ("job_id", "state", "reason", "user", "partition", "node", "alive"),
    [
        ("31", "FAILED", "NonZeroExitCode", "alice", "cpu", "vm", False),
        ("32", "RUNNING", "None", "alice", "cpu", "vm", True),
        ("33", "RUNNING", "None", "bob", "gpu", "vm", True),
        ("34", "PENDING", "Resources", "alice", "cpu", "", True),
        ("35", "PENDING", "Priority", "bob", "cpu", "", True),
        ("36", "PENDING", "Resources", "hpcadmin", "gpu", "", True),
    ],
)
def test_squeue_jobs(mixed, job_id, state, reason, user, partition, node, alive):
    job = mixed[job_id]
    assert (job.state, job.reason, job.user, job.partition, job.node) == (
        state,
        reason,
        user,
        partition,
        node,
    )
    assert job.alive is alive


def test_expected_start_and_gres_are_read(mixed):
    assert mixed["34"].start_time == 1795680548
    assert mixed["34"].start_time > mixed["34"].submit_time
    assert "gres/gpu=1" in mixed["33"].tres_alloc


@pytest.mark.parametrize(
    ("job_id", "position"), [("34", 1), ("35", 2), ("36", 1), ("32", None), ("31", None)]
)
def test_queue_position_counts_pending_jobs_ahead_in_the_partition(mixed, job_id, position):
    assert queue_position(job_id, mixed.values()) == position


def test_empty_queue():
    assert parse_squeue_json((FIXTURES / "squeue-empty.json").read_text()) == {}


def test_newer_slurm_shapes_are_read_too():
    # Slurm >= 23.02 wraps numbers and lists states; the same reader handles both.
    raw = {
        "jobs": [
            {
                "job_id": 7,
                "job_state": ["PENDING"],
                "state_reason": "Resources",
                "user_name": "alice",
                "partition": "cpu",
                "start_time": {"set": True, "infinite": False, "number": 1795680548},
                "submit_time": {"set": True, "infinite": False, "number": 1795678748},
                "priority": {"set": True, "infinite": False, "number": 10},
            }
        ]
    }
    job = parse_squeue_json(json.dumps(raw))["7"]
    assert (job.state, job.start_time, job.priority) == ("PENDING", 1795680548, 10)


@pytest.mark.parametrize("text", ["", "not json", '{"errors": []}', "[]", '{"jobs": 3}'])
def test_unreadable_squeue_output_is_an_error(text):
    with pytest.raises(SlurmOutputError):
        parse_squeue_json(text)


def test_sinfo_nodes():
    (node,) = parse_sinfo_json((FIXTURES / "sinfo.json").read_text())
    assert node.cpus == 32
    assert set(node.partitions) >= {"cpu", "gpu"}
    (beta,) = parse_sinfo_json((FIXTURES / "sinfo-beta.json").read_text())
    assert set(beta.partitions) >= {"cpu", "bigmem"}


def test_sbatch_test_only():
    now = parse_test_only((FIXTURES / "sbatch-test-only-now.txt").read_text())
    later = parse_test_only((FIXTURES / "sbatch-test-only-later.txt").read_text())
    assert now == datetime(2026, 11, 26, 7, 39, 7)
    assert later > now
    assert (
        parse_test_only("sbatch: error: Batch job submission failed: Invalid partition name")
        is None
    )
