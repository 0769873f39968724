"""Fixtures shared by the integration and browser tiers: one real portal per session.

Every test carries its tier's marker, from the folder it lives in, so ``-m unit`` (or
``integration``, ``browser``, ``deploy``) selects a whole tier.
"""

import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

from tests.harness import (
    DEPLOY,
    TEST_ADMIN,
    TEST_USERS,
    Portal,
    drained_for_kill_failures,
    ensure_users,
    slurm_snapshot,
    wait_for_completing_jobs,
)


@pytest.fixture(scope="session")
def clusters():
    subprocess.run([str(DEPLOY / "clusters.sh"), "start"], check=True, capture_output=True)
    subprocess.run([str(DEPLOY / "gamma.sh"), "start"], check=True, capture_output=True)
    return ("alpha", "beta")


@pytest.fixture(scope="session")
def users(clusters):
    ensure_users(*TEST_USERS, TEST_ADMIN)  # the admin exists before any hub starts
    return TEST_USERS


@pytest.fixture(scope="session")
def portal(tmp_path_factory, users):
    portal = Portal(tmp_path_factory.mktemp("portal")).start()
    yield portal
    portal.stop_all(users)
    portal.stop()


@pytest.fixture
def tokens(portal, users):
    return {name: portal.user_token(name) for name in users}


@pytest.fixture(autouse=True)
def _no_servers_left(request):
    if "portal" not in request.fixturenames:
        yield
        return
    portal = request.getfixturevalue("portal")
    users = request.getfixturevalue("users")
    yield
    portal.stop_all(users)
    ending = wait_for_completing_jobs()
    drained = drained_for_kill_failures()
    if drained:
        pytest.fail(f"a job of this test would not die and drained a node (resumed):\n{drained}")
    if ending:
        pytest.fail(f"jobs of this test were still ending after the stop: {ending}")


# Tests never assert timings: Hypothesis's per-example deadline (200 ms) failed a property
# test on a machine busy with another TEST run.
settings.register_profile("corehour", deadline=None)
settings.load_profile("corehour")

TIERS = ("unit", "integration", "browser", "deploy")
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        tier = Path(item.path).resolve().relative_to(TESTS).parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))


def pytest_terminal_summary(terminalreporter, exitstatus):
    """After a failed run, where both clusters stand: a drained node or a stuck job explains a
    row of failed starts, and CI keeps only the end of the output."""
    if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        return
    terminalreporter.section("Slurm at the end of the run")
    terminalreporter.write_line(slurm_snapshot())
