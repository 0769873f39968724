"""What ran, from real sacct/squeue captures of Slurm 22.05 (Debian 12) and 24.11 (Debian 13)."""

import json

import pytest

from billing_hooks.usage import parse_sacct, parse_squeue, parse_tres_string
from centre.pricing import Tres
from centre.slurm_json import SlurmOutputError

from .conftest import FIXTURES

pytestmark = pytest.mark.unit

VERSIONS = ["slurm-22.05.8", "slurm-24.11.5"]
# The same six alpha jobs in both captures, numbered differently: a job that failed at once,
# a 31-core job and a 1-GPU job that were cancelled while running, and three cancelled while
# still pending.
FIRST_ALPHA_JOB = {"slurm-22.05.8": 41, "slurm-24.11.5": 2}


def read(version: str, name: str) -> str:
    return (FIXTURES / version / name).read_text()


@pytest.mark.parametrize("version", VERSIONS)
def test_sacct_lists_started_jobs_with_their_allocation_and_times(version):
    first = FIRST_ALPHA_JOB[version]
    jobs = {int(j.job_id): j for j in parse_sacct(read(version, "sacct-alpha.json"), "alpha")}
    # Jobs cancelled while pending never started (24.11 prints NO_VAL as their start): no cost.
    assert sorted(jobs) == [first, first + 1, first + 2]
    failed, cpu, gpu = (jobs[first + n] for n in range(3))
    assert (failed.state, failed.tres) == ("FAILED", Tres(1, 0, 1000))
    assert (cpu.user, cpu.account, cpu.partition, cpu.tres) == (
        "alice",
        "corehour",
        "cpu",
        Tres(31, 0, 31000),
    )
    assert (gpu.user, gpu.partition, gpu.tres) == ("bob", "gpu", Tres(1, 1, 1000))
    for job in jobs.values():
        assert job.ended and job.end >= job.start and job.cluster == "alpha"
    raw = {j["job_id"]: j for j in json.loads(read(version, "sacct-alpha.json"))["jobs"]}
    assert cpu.end - cpu.start == raw[first + 1]["time"]["elapsed"]


@pytest.mark.parametrize("version", VERSIONS)
def test_sacct_reads_big_memory_in_megabytes(version):
    jobs = parse_sacct(read(version, "sacct-beta.json"), "beta")
    assert [(j.user, j.partition, j.state, j.tres) for j in jobs] == [
        ("alice", "cpu", "COMPLETED", Tres(2, 0, 2000)),
        ("bob", "bigmem", "COMPLETED", Tres(1, 0, 204800)),
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_squeue_gives_the_running_jobs_with_their_tres(version):
    jobs = parse_squeue(read(version, "squeue-mixed.json"), "alpha")
    assert [(j.user, j.state, j.partition, j.tres, j.end) for j in jobs] == [
        ("alice", "RUNNING", "cpu", Tres(31, 0, 31000), None),
        ("bob", "RUNNING", "gpu", Tres(1, 1, 1000), None),
    ]


def test_an_empty_sacct_window_is_no_jobs_but_other_errors_are_errors():
    nothing = {"meta": {}, "jobs": [], "errors": [{"error_number": 9003, "error": "Nothing found"}]}
    assert parse_sacct(json.dumps(nothing), "alpha") == []
    broken = {
        "meta": {},
        "jobs": [],
        "errors": [{"error_number": 1, "error": "Unable to contact slurmdbd"}],
    }
    with pytest.raises(SlurmOutputError, match="slurmdbd"):
        parse_sacct(json.dumps(broken), "alpha")
    with pytest.raises(SlurmOutputError):
        parse_sacct("sacct: error: not JSON", "alpha")


@pytest.mark.parametrize(
    ("text", "tres"),
    [
        ("cpu=2,mem=4G,node=1,billing=2,gres/gpu=1", Tres(2, 1, 4096)),
        ("cpu=1,mem=1000M,node=1,billing=1", Tres(1, 0, 1000)),
        ("cpu=64,mem=1.5T,node=2", Tres(64, 0, 1572864)),
        ("cpu=1,mem=512", Tres(1, 0, 512)),
        ("", Tres(0, 0, 0)),
    ],
)
def test_tres_strings(text, tres):
    assert parse_tres_string(text) == tres


@pytest.mark.parametrize("text", ["cpu=two", "cpu=1,mem=lots", "cpu=1,mem=4X"])
def test_unreadable_tres_strings_are_errors(text):
    with pytest.raises(SlurmOutputError):
        parse_tres_string(text)
