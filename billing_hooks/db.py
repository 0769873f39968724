"""Connecting to the ledger and bringing its schema up to date (Alembic)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
URL_ENV = "COREHOUR_BILLING_DB"


def database_url(configured: str) -> str:
    """The environment wins, so tests and production point at their own database."""
    return os.environ.get(URL_ENV) or configured


def make_engine(url: str, read_only: bool = False) -> Engine:
    """An engine for the ledger; ``read_only`` ones never wait for the write lock."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_connect)
        if read_only:
            # In WAL mode a reader sees the last commit and never blocks a writer.
            event.listen(engine, "connect", _sqlite_query_only)
            event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
            return engine
        # Every transaction takes the write lock up front: two writers that both read first
        # and then try to upgrade would otherwise fail at once with "database is locked".
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_query_only(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


_upgraded: set[str] = set()


def upgrade(url: str) -> None:
    """Create or migrate the ledger schema to the newest revision, once per process.

    The hub and the billing service both call this at start; the migration environment
    takes a lock (a file lock for SQLite, an advisory lock on PostgreSQL) so that two
    processes never migrate at the same time.
    """
    if url in _upgraded:
        return
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.migrate-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            command.upgrade(alembic_config(url), "head")
    else:
        command.upgrade(alembic_config(url), "head")
    _upgraded.add(url)
