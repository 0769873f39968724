"""Fresh, migrated ledger databases for tests: SQLite files and PostgreSQL databases.

PostgreSQL is the machine's, on 127.0.0.1; TEST gives the tests their own role there with a
password (``deploy/postgres.sh ensure-test-role``, kept root-only in
/etc/corehour/secrets/tests.env), so no trust line is needed.  Each call makes its own
database so tests never see each other's rows.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg

from billing_hooks.db import upgrade

TESTS_ENV = Path("/etc/corehour/secrets/tests.env")
PG_USER = "corehour_tests"


def _tests_env() -> dict[str, str]:
    try:
        lines = TESTS_ENV.read_text().splitlines()
    except FileNotFoundError:
        raise RuntimeError(
            f"{TESTS_ENV} is missing: run ./corehour test, which makes the tests' PostgreSQL role"
        ) from None
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


_ENV = _tests_env() if TESTS_ENV.exists() else {}
PG_PASSWORD = _ENV.get("COREHOUR_TEST_PG_PASSWORD", "")
PG_PORT = int(_ENV.get("COREHOUR_TEST_PG_PORT", "5432"))
PG_ADMIN = f"host=127.0.0.1 port={PG_PORT} user={PG_USER} password={PG_PASSWORD} dbname=postgres"


def postgres_database_url(name: str) -> str:
    """The SQLAlchemy URL of the tests' database ``name``."""
    if not PG_PASSWORD:
        _tests_env()  # says what is missing
    return f"postgresql+psycopg://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{PG_PORT}/{name}"


def sqlite_url(directory: Path) -> str:
    url = f"sqlite:///{directory / f'ledger-{uuid.uuid4().hex[:8]}.sqlite'}"
    upgrade(url)
    return url


def postgres_url() -> str:
    """A new, migrated database on the local PostgreSQL; see drop_postgres."""
    name = f"corehour_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres_database_url(name)
    upgrade(url)
    return url


def drop_postgres(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
