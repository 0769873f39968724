"""Batch-script rendering, checked with regexes like batchspawner's own tests."""

import re
import subprocess
from dataclasses import replace

import pytest

from centre.batch_script import BASE_PATH, JobSpec, job_environment, render_batch_script
from centre.errors import FieldError

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


HOSTILE = {
    "JUPYTERHUB_API_TOKEN": "tok'en\"; touch pwned; echo `touch pwned2` $(touch pwned3)",
    "JUPYTERHUB_SERVICE_URL": "http://10.77.0.1:8081/user/a/\nexport PATH=/tmp",
    "COREHOUR_SITE_JSON": '{"a": "b c", "d": "$HOME"}',
}


REMOTE = replace(BASE, path_prefix="/opt/corehour/images/gpu/bin", environment=HOSTILE)


def test_a_remote_jobs_environment_is_in_its_body_and_arrives_exactly(tmp_path):
    script = render_batch_script(REMOTE)
    assert "#SBATCH --export=NIL" in script.splitlines()
    exports = [line for line in script.splitlines() if line.startswith("export ")]
    shown = subprocess.run(
        ["bash", "-c", "\n".join([*exports, "env -0"])],
        env={},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    env = dict(item.split("=", 1) for item in shown.split("\0") if item)
    for name, value in HOSTILE.items():
        assert env[name] == value
    assert env["PATH"] == f"{REMOTE.path_prefix}:{BASE_PATH}"
    assert not list(tmp_path.iterdir())  # nothing ran: no file was made


def test_a_local_job_carries_no_environment_in_its_body():
    script = render_batch_script(BASE)
    assert "--export" not in script
    assert "JUPYTERHUB" not in script


@pytest.mark.parametrize("name", ["A B", "X=1", "1ABC", "PATH;id", ""])
def test_attack_a_variable_name_that_is_not_one_is_refused(name):
    with pytest.raises(FieldError) as refused:
        render_batch_script(replace(BASE, environment={name: "x"}))
    assert refused.value.field == "environment"


def test_only_what_a_server_needs_leaves_the_hub():
    hub_env = {
        "JUPYTERHUB_API_TOKEN": "t",
        "JPY_API_TOKEN": "t",
        "COREHOUR_SITE_JSON": "{}",
        "CONFIGPROXY_AUTH_TOKEN": "secret of the proxy",
        "PATH": "/opt/corehour/hub/bin:/usr/bin",
        "PYTHONPATH": "/work",
        "SLURM_CONF": "/etc/corehour/slurm/alpha/slurm.conf",
    }
    environment = job_environment(hub_env, "/etc/corehour/gamma/slurm.conf")
    assert environment == {
        "JUPYTERHUB_API_TOKEN": "t",
        "JPY_API_TOKEN": "t",
        "COREHOUR_SITE_JSON": "{}",
        "SLURM_CONF": "/etc/corehour/gamma/slurm.conf",
    }
