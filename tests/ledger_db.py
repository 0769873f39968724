"""Fresh, migrated ledger databases for tests: SQLite files and PostgreSQL databases.

PostgreSQL is the one TEST starts (127.0.0.1:5432, trust auth for 127.0.0.1); each call
makes its own database so tests never see each other's rows.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg

from billing_hooks.db import upgrade

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def sqlite_url(directory: Path) -> str:
    url = f"sqlite:///{directory / f'ledger-{uuid.uuid4().hex[:8]}.sqlite'}"
    upgrade(url)
    return url


def postgres_url() -> str:
    """A new, migrated database on the local PostgreSQL; see drop_postgres."""
    name = f"corehour_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    upgrade(url)
    return url


def drop_postgres(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
