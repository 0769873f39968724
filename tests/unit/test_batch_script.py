"""Batch-script rendering, checked with regexes like batchspawner's own tests."""

import re
from dataclasses import replace

import pytest

from centre.batch_script import JobSpec, render_batch_script

BASE = JobSpec(
    job_name="corehour-gpu",
    partition="gpu",
    cores=4,
    memory_gb=8,
    gpus=1,
    walltime_minutes=90,
    workdir="/home/alice",
    output="/home/alice/.corehour/logs/server-%j.log",
    command=[
        "/opt/corehour/images/gpu/bin/batchspawner-singleuser",
        "/opt/x/jupyterhub-singleuser",
    ],
)


@pytest.mark.parametrize(
    ("spec", "present", "absent"),
    [
        (
            BASE,
            [
                r"^#!/bin/bash\n",
                r"^#SBATCH --partition=gpu$",
                r"^#SBATCH --cpus-per-task=4$",
                r"^#SBATCH --mem=8G$",
                r"^#SBATCH --time=90$",
                r"^#SBATCH --gres=gpu:1$",
                r"^#SBATCH --output=/home/alice/\.corehour/logs/server-%j\.log$",
                r"^#SBATCH --chdir=/home/alice$",
                r"^exec /opt/corehour/images/gpu/bin/batchspawner-singleuser /opt/x/jupyterhub-singleuser$",
            ],
            [r"^srun", r"--account"],
        ),
        (replace(BASE, gpus=0, partition="cpu"), [r"^#SBATCH --partition=cpu$"], [r"--gres"]),
        (replace(BASE, account="physics"), [r"^#SBATCH --account=physics$"], []),
        (
            replace(BASE, path_prefix="/opt/corehour/images/gpu/bin"),
            [r"^export PATH=/opt/corehour/images/gpu/bin:\$PATH$"],
            [],
        ),
        (
            replace(BASE, python_path="/opt/corehour/apps"),
            [r"^export PYTHONPATH=/opt/corehour/apps$"],
            [],
        ),
        (BASE, [], [r"PYTHONPATH"]),
        (
            replace(BASE, command=["/opt/a b/python", "--arg=$(id)"]),
            [r"^exec '/opt/a b/python' '--arg=\$\(id\)'$"],
            [],
        ),
    ],
)
def test_rendered_script(spec, present, absent):
    script = render_batch_script(spec)
    for pattern in present:
        assert re.search(pattern, script, re.MULTILINE), pattern
    for pattern in absent:
        assert not re.search(pattern, script, re.MULTILINE), pattern


@pytest.mark.parametrize(
    "bad",
    [
        {"partition": "gpu\n#SBATCH --uid=0"},
        {"partition": "GPU"},
        {"job_name": "x;rm"},
        {"cores": 0},
        {"cores": "4"},
        {"cores": True},
        {"memory_gb": -1},
        {"gpus": -1},
        {"walltime_minutes": 1.5},
        {"workdir": "relative/path"},
        {"output": "/home/a\n#SBATCH --x"},
        {"command": []},
        {"account": "a b"},
        {"path_prefix": "/opt/x:$(id)"},
        {"python_path": "/opt/x\nexport LD_PRELOAD=/tmp/x"},
    ],
)
def test_renderer_refuses_values_that_are_not_clean(bad):
    with pytest.raises(ValueError):
        render_batch_script(replace(BASE, **bad))


def test_every_directive_line_is_a_single_option():
    script = render_batch_script(BASE)
    for line in script.splitlines():
        if line.startswith("#SBATCH"):
            assert re.fullmatch(
                r"#SBATCH --[a-z-]+=[A-Za-z0-9_./%:-]+|#SBATCH --[a-z-]+=\d+", line
            ), line


@pytest.mark.parametrize(
    "account",
    [
        "course-" + "a" * 30,  # the longest course slug the site allows
        "u-" + "b" * 32,  # the personal account of the longest login
    ],
)
def test_every_account_the_ledger_can_hold_renders_into_a_job(account):
    script = render_batch_script(replace(BASE, account=account))
    assert f"#SBATCH --account={account}\n" in script
    with pytest.raises(ValueError):
        render_batch_script(replace(BASE, account=account + "\n#SBATCH --qos=high"))
