"""The public API's view of one batch job, from squeue's and sacct's JSON (extensions/public_api)."""

from __future__ import annotations

import pytest

from centre.slurm_json import parse_job
from extensions.public_api.job_view import find_accounted, from_queue, output_path

pytestmark = pytest.mark.unit

NOW = 1_800_000_000


@pytest.mark.parametrize(
    ("pattern", "workdir", "expected"),
    [
        ("%x-%j.out", "/home/ann", "/home/ann/fit-42.out"),
        ("/scratch/%u/%x.%A.log", "/home/ann", "/scratch/ann/fit.42.log"),
        ("out/100%%-%j", "/home/ann/", "/home/ann/out/100%-42"),
        ("slurm-%j.out", "", ""),  # relative, and Slurm did not say where it ran
        ("", "/home/ann", ""),
    ],
)
def test_output_patterns_become_the_jobs_file(pattern, workdir, expected):
    assert output_path(pattern, workdir, "42", "fit", "ann") == expected


def squeue_job(**fields) -> dict:
    return {
        "job_id": 42,
        "job_state": "PENDING",
        "state_reason": "Resources",
        "user_name": "ann",
        "partition": "cpu",
        "name": "fit",
        "start_time": NOW + 600,
        "submit_time": NOW - 60,
        "priority": 10,
        "tres_alloc_str": "",
        "standard_output": "/home/ann/%x-%j.out",
        "current_working_directory": "/home/ann",
        **fields,
    }


def test_a_queued_job_shows_its_place_and_expected_start_and_costs_nothing_yet():
    view = from_queue("beta", parse_job(squeue_job()), NOW, 3)
    assert (view.state, view.reason, view.queue_position) == ("PENDING", "Resources", 3)
    assert view.start == NOW + 600 and view.elapsed_s == 0 and not view.ended
    assert view.output == "/home/ann/fit-42.out"


def test_a_running_job_counts_its_time_and_sizes():
    raw = squeue_job(
        job_state="RUNNING",
        state_reason="None",
        start_time=NOW - 90,
        tres_alloc_str="cpu=2,mem=4G,node=1,gres/gpu=1",
    )
    view = from_queue("alpha", parse_job(raw), NOW, None)
    assert (view.elapsed_s, view.cores, view.gpus, view.memory_mb) == (90, 2, 1, 4096)
    assert view.reason == ""


def sacct_job(job_id: int, cluster: str, user: str = "ann", state: str = "FAILED") -> dict:
    return {
        "job_id": job_id,
        "cluster": cluster,
        "user": user,
        "name": "fit",
        "partition": "cpu",
        "state": {"current": state, "reason": "None"},
        "time": {"start": NOW - 100, "end": NOW - 40, "elapsed": 60, "submission": NOW - 120},
        "exit_code": {"status": "FAILED", "return_code": 3},
        "tres": {"allocated": [{"type": "cpu", "count": 2}, {"type": "mem", "count": 2048}]},
        "working_directory": "/home/ann",
    }


def test_an_ended_job_comes_from_its_clusters_accounting_record_only():
    jobs = [sacct_job(42, "alpha", user="bob", state="COMPLETED"), sacct_job(42, "beta")]
    view = find_accounted("beta", jobs, "42", NOW)
    assert (view.user, view.state, view.exit_code, view.ended) == ("ann", "FAILED", 3, True)
    assert (view.elapsed_s, view.cores, view.memory_mb, view.end) == (60, 2, 2048, NOW - 40)
    assert view.output == "/home/ann/fit-42.out"
    assert find_accounted("gamma", jobs, "42", NOW) is None
    assert find_accounted("beta", jobs, "43", NOW) is None
