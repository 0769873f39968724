"""The sudo rule deploy/sudo.sh installs, tried as the hub's own unprivileged account would.

The attacks: a hub (or anyone who takes it over) uses the rule to become root, a local
account outside the portal, or root after an instructor slipped root into the portal group;
runs a shell instead of a Slurm command; or keeps its whole environment with -E.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.harness import DEPLOY

pytestmark = pytest.mark.deploy

HUB = "corehour"
OUTSIDER = "choutsider"


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def hub_account(users):
    if run("id", "-u", OUTSIDER).returncode != 0:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", OUTSIDER], check=True)
    # Makes the hub's system account too, as TEST's and the install's first step do.
    subprocess.run([str(DEPLOY / "sudo.sh"), "ensure"], check=True, capture_output=True)
    return HUB


def as_hub(*sudo_args: str) -> subprocess.CompletedProcess:
    return run("runuser", "-u", HUB, "--", "sudo", "-n", *sudo_args)


def test_the_installed_rule_passes_visudo(hub_account):
    assert run("visudo", "-c", "-f", "/etc/sudoers.d/corehour").returncode == 0
    mode = run("stat", "-c", "%a %U", "/etc/sudoers.d/corehour").stdout.split()
    assert mode == ["440", "root"]


def test_the_hub_runs_slurm_commands_as_portal_people(hub_account, users):
    allowed = as_hub("-u", users[0], "/usr/bin/sbatch", "--version")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.startswith("slurm")


@pytest.mark.parametrize(
    ("sudo_args", "why"),
    [
        (("-u", "root", "/usr/bin/sbatch", "--version"), "root"),
        (("-u", OUTSIDER, "/usr/bin/sbatch", "--version"), "outside the portal group"),
        (("-u", HUB, "/usr/bin/sbatch", "--version"), "the hub itself"),
        (("-u", "chtest1", "/bin/bash", "-c", "id"), "a shell"),
        (("-u", "chtest1", "/usr/bin/python3", "-c", "1"), "any other program"),
        (("-E", "-u", "chtest1", "/usr/bin/sbatch", "--version"), "keeping the environment"),
    ],
)
def test_the_hub_cannot_become_anyone_else_or_run_anything_else(hub_account, sudo_args, why):
    refused = as_hub(*sudo_args)
    assert refused.returncode != 0, (why, refused.stdout)


def test_root_slipped_into_the_portal_group_is_still_refused(hub_account):
    subprocess.run(["usermod", "-aG", "corehour", "root"], check=True)
    try:
        refused = as_hub("-u", "root", "/usr/bin/sbatch", "--version")
    finally:
        subprocess.run(["gpasswd", "-d", "root", "corehour"], capture_output=True)
    assert refused.returncode != 0, refused.stdout


def test_the_job_environment_keeps_only_what_a_server_needs(hub_account, users):
    kept = subprocess.run(
        ["runuser", "-u", HUB, "--", "sudo", "-n", "-u", users[0], "/usr/bin/env"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "JUPYTERHUB_API_TOKEN": "the-person-s-token",
            "COREHOUR_SITE_JSON": "{}",
            "CONFIGPROXY_AUTH_TOKEN": "the-proxy-s-secret",
            "COREHOUR_BILLING_DB": "postgresql://corehour:pw@db/ledger",
        },
    )
    assert kept.returncode == 0, kept.stderr
    assert "JUPYTERHUB_API_TOKEN=the-person-s-token" in kept.stdout
    assert "COREHOUR_SITE_JSON={}" in kept.stdout
    assert "the-proxy-s-secret" not in kept.stdout and "ledger" not in kept.stdout
