"""Parsing real Slurm output captured on this kind of machine (see fixtures/*/README.md)."""

import json
from datetime import datetime
from pathlib import Path

import pytest

from centre.slurm_json import (
    SlurmOutputError,
    parse_sinfo_json,
    parse_squeue_json,
    parse_test_only,
    queue_position,
)

FIXTURES = Path(__file__).parent / "fixtures"

# Both captures hold the same six jobs, in the same order; only the ids differ.
VERSIONS = {
    "slurm-22.05.8": {"first_id": 41, "pending_start": 1795681543, "test_only_now": (7, 55, 42)},
    "slurm-24.11.5": {"first_id": 2, "pending_start": 1795681494, "test_only_now": (7, 54, 52)},
}
JOBS = [
    # offset, state, reason, user, partition, node, alive
    (0, "FAILED", "NonZeroExitCode", "alice", "cpu", "vm", False),
    (1, "RUNNING", "None", "alice", "cpu", "vm", True),
    (2, "RUNNING", "None", "bob", "gpu", "vm", True),
    (3, "PENDING", "Resources", "alice", "cpu", "", True),
    (4, "PENDING", "Priority", "bob", "cpu", "", True),
    (5, "PENDING", "Resources", "hpcadmin", "gpu", "", True),
]


@pytest.fixture(scope="module", params=sorted(VERSIONS))
def capture(request):
    version = request.param
    jobs = parse_squeue_json((FIXTURES / version / "squeue-mixed.json").read_text())
    return version, VERSIONS[version], jobs


def job_id(capture, offset):
    return str(capture[1]["first_id"] + offset)


@pytest.mark.parametrize(("offset", "state", "reason", "user", "partition", "node", "alive"), JOBS)
def test_squeue_jobs(capture, offset, state, reason, user, partition, node, alive):
    job = capture[2][job_id(capture, offset)]
    assert (job.state, job.reason, job.user, job.partition, job.node) == (
        state,
        reason,
        user,
        partition,
        node,
    )
    assert job.alive is alive


def test_expected_start_and_gres_are_read(capture):
    _, facts, jobs = capture
    pending = jobs[job_id(capture, 3)]
    assert pending.start_time == facts["pending_start"]
    assert pending.start_time > pending.submit_time
    assert "gres/gpu=1" in jobs[job_id(capture, 2)].tres_alloc


@pytest.mark.parametrize(("offset", "position"), [(3, 1), (4, 2), (5, 1), (1, None), (0, None)])
def test_queue_position_counts_pending_jobs_ahead_in_the_partition(capture, offset, position):
    assert queue_position(job_id(capture, offset), capture[2].values()) == position


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_controller_down_is_an_error_not_an_empty_queue(version):
    # Slurm 22.05 exits 0 here with an empty job list and an "errors" entry.
    with pytest.raises(SlurmOutputError):
        parse_squeue_json((FIXTURES / version / "squeue-unreachable.json").read_text() or "")


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_empty_queue(version):
    assert parse_squeue_json((FIXTURES / version / "squeue-empty.json").read_text()) == {}


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


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_sinfo_nodes(version):
    (node,) = parse_sinfo_json((FIXTURES / version / "sinfo.json").read_text())
    assert node.cpus == 32
    assert set(node.partitions) >= {"cpu", "gpu"}
    (beta,) = parse_sinfo_json((FIXTURES / version / "sinfo-beta.json").read_text())
    assert set(beta.partitions) >= {"cpu", "bigmem"}


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_sbatch_test_only(version):
    now = parse_test_only((FIXTURES / version / "sbatch-test-only-now.txt").read_text())
    later = parse_test_only((FIXTURES / version / "sbatch-test-only-later.txt").read_text())
    assert now == datetime(2026, 11, 26, *VERSIONS[version]["test_only_now"])
    assert later > now
    assert (
        parse_test_only("sbatch: error: Batch job submission failed: Invalid partition name")
        is None
    )


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_busy_and_unreachable_sinfo(version):
    (busy,) = parse_sinfo_json((FIXTURES / version / "sinfo-busy.json").read_text())
    assert busy.alloc_cpus > 0
    with pytest.raises(SlurmOutputError):
        parse_sinfo_json((FIXTURES / version / "sinfo-unreachable.json").read_text() or "")


@pytest.mark.parametrize(
    ("state", "alive", "pending"),
    [
        ("RUNNING", True, False),
        ("COMPLETING", True, False),
        ("PENDING", True, True),
        ("REQUEUE_HOLD", True, True),
        ("SIGNALING", True, False),
        ("STOPPED", True, False),
        ("SUSPENDED", True, False),
        ("SOME_FUTURE_STATE", True, False),
        ("COMPLETED", False, False),
        ("CANCELLED", False, False),
        ("FAILED", False, False),
        ("TIMEOUT", False, False),
        ("PREEMPTED", False, False),
        ("OUT_OF_MEMORY", False, False),
    ],
)
def test_only_explicit_end_states_count_as_ended(state, alive, pending):
    job = parse_squeue_json(json.dumps({"jobs": [{"job_id": 1, "job_state": [state]}]}))["1"]
    assert (job.alive, job.pending) == (alive, pending)


def test_a_sinfo_row_of_several_nodes_shares_its_cores_out():
    """Slurm 23.02+ prints one row per node group: its CPU counts are the group's."""
    data = json.loads((FIXTURES / "slurm-24.11.5" / "sinfo.json").read_text())
    row = data["sinfo"][0]
    row["nodes"]["nodes"] = ["n1", "n2"]
    row["cpus"]["total"] = 64
    row["cpus"]["allocated"] = 10
    data["sinfo"] = [row]
    nodes = parse_sinfo_json(json.dumps(data))
    assert sorted(n.name for n in nodes) == ["n1", "n2"]
    assert sum(n.cpus for n in nodes) == 64 and sum(n.alloc_cpus for n in nodes) == 10
