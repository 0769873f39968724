"""Reading the ledger's files as an ordinary local user, as from a Slurm job (issue 12).

The billing ledger (SQLite by default) holds every account, payment and charge; the hub's
state folder holds its database, cookie secrets, proxy token and sign-on identities. Each
test makes them the way the portal does, in a folder anyone may enter (as /var/lib/corehour
is: Slurm's spool lives there), and then tries to read them as chtest1.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text

from billing_hooks.db import make_engine, upgrade
from tests.harness import DEPLOY

pytestmark = pytest.mark.integration

ATTACKER = "chtest1"
STATE_FILES = (
    "jupyterhub.sqlite",
    "jupyterhub_cookie_secret",
    "identities.sqlite",
    "billing_cookie_secret",
    "proxy_token",
)


def read_as(user: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["runuser", "-u", user, "--", "cat", str(path)], capture_output=True, timeout=30
    )


def assert_unreadable(path: Path) -> None:
    result = read_as(ATTACKER, path)
    assert result.returncode != 0, f"{ATTACKER} read {path}: {result.stdout[:40]!r}"
    assert b"Permission denied" in result.stderr, result.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_folder(users):
    """A folder that any local user may enter and list, like /var/lib/corehour."""
    folder = Path(tempfile.mkdtemp(prefix="chledger-", dir="/var/tmp"))
    folder.chmod(0o755)
    old_umask = os.umask(0o022)  # what a root shell, and so the hub, starts with
    yield folder
    os.umask(old_umask)
    subprocess.run(["rm", "-rf", str(folder)], check=True)


def test_a_user_cannot_read_the_ledger_or_its_wal(open_folder):
    url = f"sqlite:///{open_folder / 'billing.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:  # an open connection keeps the -wal and -shm files
            conn.execute(text("CREATE TABLE probe (secret TEXT)"))
            conn.execute(text("INSERT INTO probe VALUES ('the ledger')"))
            conn.commit()
            files = [open_folder / f"billing.sqlite{side}" for side in ("", "-wal", "-shm")]
            assert all(path.exists() for path in files), sorted(os.listdir(open_folder))
            for path in files:
                assert_unreadable(path)
                assert mode(path) == 0o600, f"{path}: {oct(mode(path))}"
    finally:
        engine.dispose()


def test_a_ledger_left_readable_by_an_older_corehour_is_closed(open_folder):
    ledger = open_folder / "billing.sqlite"
    url = f"sqlite:///{ledger}"
    upgrade(url)
    for path in (
        ledger,
        open_folder / "billing.sqlite-wal",
        open_folder / "billing.sqlite.migrate-lock",
    ):
        path.touch()
        path.chmod(0o644)
    make_engine(url).dispose()  # what the hub and the billing service do at start
    for path in (ledger, open_folder / "billing.sqlite-wal"):
        assert_unreadable(path)
        assert mode(path) == 0o600
    assert mode(open_folder / "billing.sqlite.migrate-lock") == 0o600


def test_a_new_ledger_folder_is_root_only(open_folder):
    ledger = open_folder / "ledger" / "billing.sqlite"
    upgrade(f"sqlite:///{ledger}")
    assert_unreadable(ledger)
    assert mode(ledger.parent) == 0o700
    assert mode(ledger) == 0o600


def test_a_user_cannot_read_the_hub_state(open_folder):
    state = open_folder / "hub"
    state.mkdir(mode=0o755)
    for name in STATE_FILES:
        (state / name).write_text("secret\n")
        (state / name).chmod(0o644)  # as an older corehour or a hand-made copy left them
    env = {**os.environ, "COREHOUR_STATE_DIR": str(state)}
    result = subprocess.run(
        [str(DEPLOY / "hub.sh"), "status"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in STATE_FILES:
        assert_unreadable(state / name)
    assert mode(state) == 0o700
    # Even with the folder open again (a restore, a careless chmod), the files hold.
    state.chmod(0o755)
    for name in STATE_FILES:
        assert_unreadable(state / name)
        assert mode(state / name) == 0o600, name
