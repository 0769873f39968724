"""The kit every batch app shares: resources, the batch script, the price, a job's state."""

import pytest

from voila_apps.kit.jobs import (
    InputError,
    JobState,
    batch_script,
    check_resources,
    download_url,
    job_state,
    price_per_hour,
)

from .conftest import FIXTURES

pytestmark = pytest.mark.unit

SLURM = FIXTURES / "slurm-24.11.5"
JAN_2027 = 1_798_761_600


def resources(**changes):
    raw = {"profile": "cpu", "cluster": "alpha", "cores": 2, "memory_gb": 4, "walltime_hours": 1}
    raw.update(changes)
    return raw


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"cores": 99}, "cores"),
        ({"cores": True}, "cores"),
        ({"memory_gb": -1}, "memory_gb"),
        ({"walltime_hours": float("nan")}, "walltime_hours"),
        ({"profile": "root"}, "profile"),
        ({"cluster": "auto"}, "cluster"),
        ({"cluster": "gamma"}, "cluster"),
        ({"gpus": 1}, "gpus"),
        ({"profile": "gpu", "cluster": "beta", "gpus": 1}, "cluster"),
    ],
)
def test_resources_outside_the_profile_are_refused_by_field(site, changes, field):
    with pytest.raises(InputError) as refused:
        check_resources(resources(**changes), site)
    assert refused.value.field == field
    assert refused.value.reason


def test_the_batch_script_carries_the_checked_resources_before_the_body(site):
    request = check_resources(resources(profile="gpu", gpus=2, cores=4), site)
    script = batch_script(
        request, name="lammps-md", workdir="/home/ann/runs/1", body="lmp -in in.melt", tasks=1
    )
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "#SBATCH --partition=gpu" in lines and "#SBATCH --gres=gpu:2" in lines
    assert "#SBATCH --cpus-per-task=4" in lines and "#SBATCH --time=60" in lines
    assert "#SBATCH --chdir=/home/ann/runs/1" in lines
    assert lines[-1] == "lmp -in in.melt"
    assert max(i for i, x in enumerate(lines) if x.startswith("#SBATCH")) < lines.index(
        "lmp -in in.melt"
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"workdir": "/home/ann/x y"}, "workdir"),
        ({"workdir": "relative"}, "workdir"),
        ({"name": "a;rm -rf"}, "name"),
        ({"account": "Robert'); DROP"}, "account"),
    ],
)
def test_the_batch_script_refuses_unsafe_names_and_paths(site, kwargs, field):
    request = check_resources(resources(), site)
    args = {"name": "app", "workdir": "/home/ann/run", "body": "true", **kwargs}
    with pytest.raises(InputError) as refused:
        batch_script(request, **args)
    assert refused.value.field == field


def test_the_price_is_the_sites_rate_for_the_chosen_resources(site):
    request = check_resources(resources(), site)
    # alpha/cpu: 0.05 per core-hour, 0.005 per GB-hour → 2 × 0.05 + 4 × 0.005 = 0.12 per hour
    assert price_per_hour(site, request, JAN_2027) == (
        "0.120 credits per hour at the standard rate; at most 0.120 for the full 60 minutes."
    )


def test_a_site_without_billing_says_so(site):
    request = check_resources(resources(), site)
    assert price_per_hour(site.model_copy(update={"billing": None}), request, JAN_2027) == (
        "This site does not bill jobs."
    )


def test_a_jobs_state_comes_from_squeue_then_sacct():
    squeue = (SLURM / "squeue-mixed.json").read_text()
    sacct = (SLURM / "sacct-alpha.json").read_text()
    pending = job_state(squeue, "", "5", 1_795_679_700)
    assert pending == JobState("PENDING", "Resources", 0)
    assert pending.describe() == "Queued (Resources)" and not pending.ended
    running = job_state(squeue, "", "3", 1_795_679_694 + 75)
    assert running.state == "RUNNING" and running.elapsed_seconds == 75
    assert running.describe() == "Running, 1 min 15 s"
    failed = job_state("", sacct, "2", 0)
    assert failed.ended and failed.exit_code == 127
    assert failed.describe() == "Failed, 0 min 01 s, exit code 127"
    assert job_state("", "", "2", 0) == JobState("UNKNOWN")
    assert job_state("not json", "[]", "2", 0).describe() == "Waiting for Slurm"


def test_downloads_are_links_into_the_persons_own_server():
    url = download_url(
        "/user/ann/app-lammps-md/", "/home/ann", "/home/ann/corehour-apps/x/log.lammps"
    )
    assert url == "/user/ann/app-lammps-md/files/corehour-apps/x/log.lammps?download=1"
    with pytest.raises(InputError):
        download_url("/user/ann/", "/home/ann", "/etc/passwd")
    with pytest.raises(InputError):
        download_url("/user/ann/", "/home/ann", "/home/ann/../bob/secret")
