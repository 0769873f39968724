"""Attacks on the portal's PostgreSQL by an ordinary local user, as from a Slurm job (issue 12).

UP's PostgreSQL step (deploy/postgres.sh) gives the portal its own role, with a generated
password kept root-only, and adds no trust line. Two clusters are attacked:

- a scratch cluster with Debian's own rules (peer on the socket, scram-sha-256 from
  127.0.0.1) that also carries the trust line an older corehour put there: a machine where
  corehour installed PostgreSQL. No local user may become the superuser there.
- the machine's own cluster, which UP and TEST use. Trust lines it had before corehour are
  the machine's (the tests' PostgreSQL tier uses them) and stay; the portal's role needs its
  password even so.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import DEPLOY, free_port

pytestmark = pytest.mark.deploy

ROLE = "corehour"
DATABASES = ("corehour", "corehour_hub")
ATTACKER = "chtest1"
SOCKET_DIR = "/var/run/postgresql"
# What 8efa8d7's UP put at the top of pg_hba.conf when it started PostgreSQL itself.
OLD_TRUST = (
    "# corehour: local test databases, no password from 127.0.0.1\n"
    "host all all 127.0.0.1/32 trust\n"
)
REFUSALS = ("no password supplied", "password authentication failed", "Peer authentication failed")


@dataclass
class Cluster:
    port: int
    hba: Path
    env_file: Path
    deploy_env: dict

    def password(self) -> str:
        for line in self.env_file.read_text().splitlines():
            if line.startswith("COREHOUR_PG_PASSWORD="):
                return line.split("=", 1)[1]
        raise AssertionError(f"{self.env_file} holds no COREHOUR_PG_PASSWORD")


def ensure_postgres(env: dict) -> subprocess.CompletedProcess:
    """UP's PostgreSQL step, as UP and TEST run it."""
    result = subprocess.run(
        [str(DEPLOY / "postgres.sh"), "ensure"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def psql(user: str, host: str, port: int, role: str, database: str, password: str | None = None):
    """``psql`` as the local ``user``, with nothing of root's environment but a password."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    if password is not None:
        env["PGPASSWORD"] = password
    query = "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
    argv = ["psql", "-X", "-w", "-h", host, "-p", str(port), "-U", role, "-d", database]
    argv += ["-Atc", query]
    if user != "root":
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(argv, env=env, cwd="/", capture_output=True, text=True, timeout=30)


def assert_refused(result: subprocess.CompletedProcess, attempt: str) -> None:
    said = result.stdout + result.stderr
    assert result.returncode != 0, f"{attempt}: connected as {result.stdout.strip()!r}"
    # A role that is missing proves nothing: the portal's role must exist and want a password.
    assert "does not exist" not in said, f"{attempt}: {said}"
    assert any(reason in said for reason in REFUSALS), f"{attempt}: {said}"


def newest_postgres() -> str:
    versions = sorted(os.listdir("/usr/lib/postgresql"), key=int)
    assert versions, "no PostgreSQL server is installed; run ./corehour test"
    return versions[-1]


@pytest.fixture(scope="module")
def fresh_cluster(users):
    """A cluster with Debian's rules plus an older corehour's trust line, then UP's step."""
    version, name, port = newest_postgres(), f"chsec{uuid.uuid4().hex[:6]}", free_port()
    # World-traversable like /etc, so only the modes UP sets keep the attacker out.
    workdir = Path(tempfile.mkdtemp(prefix="chsec-", dir="/var/tmp"))
    workdir.chmod(0o755)
    auth = ["--", "--auth-local=peer", "--auth-host=scram-sha-256"]
    subprocess.run(
        ["pg_createcluster", version, name, "-p", str(port), *auth], check=True, capture_output=True
    )
    try:
        hba = Path(f"/etc/postgresql/{version}/{name}/pg_hba.conf")
        hba.write_text(OLD_TRUST + hba.read_text())
        env = {
            **os.environ,
            "COREHOUR_PG_CLUSTER": f"{version}/{name}",
            "COREHOUR_ENV_FILE": str(workdir / "secrets" / "portal.env"),
        }
        ensure_postgres(env)
        yield Cluster(port, hba, workdir / "secrets" / "portal.env", env)
    finally:
        subprocess.run(["pg_dropcluster", "--stop", version, name], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def machine_cluster(users):
    """The machine's own cluster after UP's step (TEST has run it already; it is idempotent)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("COREHOUR_PG_CLUSTER", "COREHOUR_ENV_FILE")
    }
    ensure_postgres(env)
    version = newest_postgres()
    port = subprocess.run(
        ["pg_conftool", "-s", version, "main", "show", "port"], capture_output=True, text=True
    ).stdout.strip()
    hba = Path(f"/etc/postgresql/{version}/main/pg_hba.conf").resolve()
    return Cluster(int(port or 5432), hba, Path("/etc/corehour/secrets/portal.env"), {})


@pytest.fixture(params=["fresh", "machine"])
def cluster(request) -> Cluster:
    return request.getfixturevalue(f"{request.param}_cluster")


def test_a_user_cannot_become_the_superuser_where_corehour_set_up_postgresql(fresh_cluster):
    for host in ("127.0.0.1", SOCKET_DIR):
        attempt = f"{ATTACKER} as postgres via {host}"
        assert_refused(psql(ATTACKER, host, fresh_cluster.port, "postgres", "postgres"), attempt)


def test_up_leaves_no_trust_line_where_corehour_set_up_postgresql(fresh_cluster):
    rules = [
        line.split()
        for line in fresh_cluster.hba.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert rules and not [rule for rule in rules if "trust" in rule], rules
    # A second UP finds everything in place: same rules, same password.
    before = (fresh_cluster.hba.read_text(), fresh_cluster.password())
    ensure_postgres(fresh_cluster.deploy_env)
    assert (fresh_cluster.hba.read_text(), fresh_cluster.password()) == before


def test_a_user_cannot_log_in_as_the_portal_role(cluster):
    for database in DATABASES:
        for host in ("127.0.0.1", SOCKET_DIR):
            attempt = f"{ATTACKER} as {ROLE} to {database} via {host}"
            assert_refused(psql(ATTACKER, host, cluster.port, ROLE, database), attempt)
        guessed = psql(ATTACKER, "127.0.0.1", cluster.port, ROLE, database, password=ROLE)
        assert_refused(guessed, f"{ATTACKER} as {ROLE} to {database} with a guessed password")


def test_the_portal_role_asks_its_password_before_any_rule_of_the_machine(cluster):
    rules = [
        line.split()
        for line in cluster.hba.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert rules[:3] == [
        ["local", "all", ROLE, "scram-sha-256"],
        ["host", "all", ROLE, "127.0.0.1/32", "scram-sha-256"],
        ["host", "all", ROLE, "::1/128", "scram-sha-256"],
    ], rules[:4]
    assert OLD_TRUST.splitlines()[0] not in cluster.hba.read_text()


def test_the_portal_password_is_root_only(cluster):
    folder = cluster.env_file.parent
    for path, mode in ((folder, 0o700), (cluster.env_file, 0o600)):
        info = path.stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, mode), (
            f"{path}: {oct(info.st_mode)}"
        )
    read = subprocess.run(
        ["runuser", "-u", ATTACKER, "--", "cat", str(cluster.env_file)],
        capture_output=True,
        text=True,
    )
    assert read.returncode != 0 and "Permission denied" in read.stderr, read.stdout[:80]


def test_the_portal_logs_in_with_its_password_and_is_no_superuser(cluster):
    for database in DATABASES:
        result = psql("root", "127.0.0.1", cluster.port, ROLE, database, cluster.password())
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"{ROLE}|f"
