"""Job Composer's pure part: checking a submission, rendering its script, listing jobs."""

import json

import pytest

from voila_apps.job_composer.composer import (
    MAX_SCRIPT_BYTES,
    TEMPLATES,
    ComposerError,
    check_submission,
    estimated_cost,
    my_jobs,
    render,
    tail,
)

from .conftest import FIXTURES

pytestmark = pytest.mark.unit


def form(**changes):
    raw = {
        "name": "hello",
        "profile": "cpu",
        "cluster": "alpha",
        "cores": 2,
        "memory_gb": 2,
        "walltime_hours": 0.5,
        "tasks": 1,
        "script": TEMPLATES["shell"].body,
    }
    raw.update(changes)
    return raw


def test_a_template_renders_a_script_with_checked_directives_first(site):
    submission = check_submission(
        form(tasks=TEMPLATES["tasks"].tasks, script=TEMPLATES["tasks"].body), site
    )
    script = render(submission, "/home/alice/jobs", account="u-alice")
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash"
    assert "#SBATCH --ntasks=4" in lines and "#SBATCH --cpus-per-task=2" in lines
    assert "#SBATCH --time=30" in lines and "#SBATCH --account=u-alice" in lines
    assert "#SBATCH --chdir=/home/alice/jobs" in lines
    # Every directive comes before the person's first line, so theirs cannot override ours.
    body_start = lines.index("# --- your script ---")
    assert all(not line.startswith("#SBATCH") for line in lines[body_start:])
    assert all(line.startswith(("#!", "#SBATCH")) for line in lines[:body_start])


def test_every_template_is_a_valid_submission(site):
    for key, template in TEMPLATES.items():
        submission = check_submission(
            form(name=key, tasks=template.tasks, script=template.body), site
        )
        assert render(submission, "/tmp").endswith(template.body)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "../etc"}, "name"),
        ({"name": "a b"}, "name"),
        ({"cores": 64}, "cores"),
        ({"cores": "4; rm -rf ~"}, "cores"),
        ({"gpus": 1}, "gpus"),
        ({"cluster": "gamma"}, "cluster"),
        ({"cluster": "auto"}, "cluster"),
        ({"profile": "huge"}, "profile"),
        ({"walltime_hours": -1}, "walltime_hours"),
        ({"tasks": 0}, "tasks"),
        ({"tasks": True}, "tasks"),
        ({"tasks": 1000}, "tasks"),
        ({"script": "   "}, "script"),
        ({"script": "echo \x00"}, "script"),
        ({"script": "x" * (MAX_SCRIPT_BYTES + 1)}, "script"),
        ({"script": 42}, "script"),
        ({"prologue": "x", "cores": "x"}, "cores"),
    ],
)
def test_bad_input_is_refused_by_field(site, changes, field):
    with pytest.raises(ComposerError) as caught:
        check_submission(form(**changes), site)
    assert caught.value.field == field


def test_unsafe_paths_and_accounts_are_refused_at_render(site):
    submission = check_submission(form(), site)
    with pytest.raises(ComposerError, match="workdir"):
        render(submission, "/home/alice/my jobs;rm")
    with pytest.raises(ComposerError, match="account"):
        render(submission, "/tmp", account="u-alice\n#SBATCH --qos=high")


@pytest.mark.parametrize("version", ["slurm-22.05.8", "slurm-24.11.5"])
def test_my_jobs_merges_live_and_finished_jobs_across_clusters(version):
    squeue = (FIXTURES / version / "squeue-mixed.json").read_text()
    sacct_alpha = (FIXTURES / version / "sacct-alpha.json").read_text()
    sacct_beta = (FIXTURES / version / "sacct-beta.json").read_text()
    now = (
        max(
            j["submit_time"] if isinstance(j["submit_time"], int) else j["submit_time"]["number"]
            for j in json.loads(squeue)["jobs"]
        )
        + 60
    )
    rows = my_jobs({"alpha": squeue}, {"alpha": sacct_alpha, "beta": sacct_beta}, now)
    clusters = {row.cluster for row in rows}
    assert clusters == {"alpha", "beta"}
    beta = [row for row in rows if row.cluster == "beta"]
    assert {row.state for row in beta} == {"COMPLETED"} and all(not row.active for row in beta)
    running = [row for row in rows if row.state == "RUNNING"]
    assert running and all(row.active and row.elapsed_seconds > 0 for row in running)
    assert len({(row.cluster, row.job_id) for row in rows}) == len(rows)


def test_tail_keeps_the_last_lines():
    assert tail("a\nb\nc\n", 2) == "b\nc"


def test_my_jobs_carry_their_allocation_and_an_estimated_cost(site):
    squeue = (FIXTURES / "slurm-24.11.5" / "squeue-mixed.json").read_text()
    sacct = (FIXTURES / "slurm-22.05.8" / "sacct-beta.json").read_text()
    rows = {(r.cluster, r.job_id): r for r in my_jobs({"alpha": squeue}, {"beta": sacct}, 0)}
    gpu_job = next(r for r in rows.values() if r.name == "notebook-gpu")
    assert (gpu_job.cpus, gpu_job.gpus, gpu_job.mem_mb) == (1, 1, 1000)
    finished = next(
        r for r in rows.values() if (r.cluster, r.partition) == ("beta", "cpu") and r.cpus == 2
    )
    assert finished.mem_mb == 2000 and finished.elapsed_seconds > 0
    # beta/cpu: 0.04 per core-hour + 0.004 per GB-hour, over the job's elapsed seconds
    hours = finished.elapsed_seconds / 3600
    expected = (2 * 0.04 + 2000 / 1024 * 0.004) * hours
    assert float(estimated_cost(finished, site)) == pytest.approx(expected, abs=0.0015)
    assert estimated_cost(rows[("alpha", "7")], site) == ""  # queued: nothing spent yet
