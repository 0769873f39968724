"""Connecting to the ledger, and its schema: brought up to date by ``python -m roots.ops
migrate`` (Alembic), checked by the processes that use it."""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import stat
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from centre.db_copy import display_url, schema_revision

MIGRATIONS = Path(__file__).parent / "migrations"
URL_ENV = "COREHOUR_BILLING_DB"


def database_url(configured: str) -> str:
    """The environment wins, so tests and production point at their own database."""
    return os.environ.get(URL_ENV) or configured


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or one in memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


# A database's own files and the ones SQLite and the migration lock put beside it.
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal", ".migrate-lock")


def ensure_private_sqlite(path: Path) -> None:
    """Make a SQLite ledger root's alone: its file and side files 0600, a new folder 0700.

    The ledger holds every account, payment and charge, so no other local user may read
    it. The file is made 0600 before SQLite opens it, and SQLite gives the -wal and -shm
    files the database file's mode; files made by an older corehour are fixed here.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for name in (path, *(path.with_name(path.name + side) for side in _SQLITE_SIDE_FILES)):
        try:
            info = name.stat()
        except FileNotFoundError:
            continue
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            name.chmod(stat.S_IMODE(info.st_mode) & 0o700)


def make_engine(url: str, read_only: bool = False, timeout_s: float | None = None) -> Engine:
    """An engine for the ledger; ``read_only`` ones never wait for the write lock, and with
    ``timeout_s`` no connection, lock wait or statement may take longer than that."""
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            ensure_private_sqlite(path)
        engine = create_engine(url, connect_args={"timeout": timeout_s or 30})
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
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        pool_timeout=timeout_s or 30,
        connect_args=postgres_settings(read_only, timeout_s),
    )


# Without a timeout of its own, a connection still gives up on a host that does not answer.
CONNECT_TIMEOUT_S = 10


def postgres_settings(read_only: bool, timeout_s: float | None) -> dict:
    """libpq settings: a server that does not answer is given up on, not waited for.

    ``connect_timeout`` covers the whole connection, the TCP handshake and the startup
    messages; ``tcp_user_timeout`` and the keepalives end a connection whose host stops
    acknowledging (a firewall that drops packets) long before the kernel would.  With
    ``timeout_s`` the server also ends statements and lock waits that run longer.
    """
    seconds = timeout_s or CONNECT_TIMEOUT_S
    settings: dict = {
        "connect_timeout": max(2, math.ceil(seconds)),  # libpq counts whole seconds, ≥ 2
        "tcp_user_timeout": int(seconds * 1000),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    options = []
    if timeout_s:
        milliseconds = int(timeout_s * 1000)
        options += [f"-c statement_timeout={milliseconds}", f"-c lock_timeout={milliseconds}"]
    if read_only:
        options.append("-c default_transaction_read_only=on")
    if options:
        settings["options"] = " ".join(options)
    return settings


_readers: dict[Engine, sessionmaker[Session]] = {}


def read_only_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions on the same ledger as ``sessions`` for code that only reads.

    On SQLite they come from a second, read-only engine, so a page or API read never takes
    the write lock and never queues behind a metering cycle; PostgreSQL reads take no locks,
    so there ``sessions`` itself serves.
    """
    engine = sessions.kw["bind"]
    if engine.dialect.name != "sqlite":
        return sessions
    if engine not in _readers:
        url = engine.url.render_as_string(hide_password=False)
        _readers[engine] = session_factory(make_engine(url, read_only=True))
    return _readers[engine]


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

    ``python -m roots.ops migrate`` calls this as a deploy step, and tests on scratch ledgers;
    the hub and the billing service only check (:func:`require_head`).  The migration
    environment takes a lock (a file lock for SQLite, an advisory lock on PostgreSQL) so that
    two processes never migrate at the same time.
    """
    if url in _upgraded:
        return
    path = sqlite_path(url)
    if path is not None:
        ensure_private_sqlite(path)
        lock = os.open(f"{path}.migrate-lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            command.upgrade(alembic_config(url), "head")
        finally:
            os.close(lock)
    else:
        command.upgrade(alembic_config(url), "head")
    _upgraded.add(url)


MIGRATE_HINT = "run `./corehour migrate` (or `python -m roots.ops migrate --site SITE`)"


class LedgerNotMigrated(Exception):
    """The ledger's schema is not the one this code needs; the message says what to run."""


def head_revision() -> str:
    """The newest migration this code has."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def require_head(url: str) -> None:
    """Return when the ledger is at :func:`head_revision`; else raise
    :class:`LedgerNotMigrated`.  A process that uses the ledger checks at start instead of
    migrating: a schema change is a deploy step, run once, after a backup."""
    at, head = schema_revision(url), head_revision()
    if at == head:
        return
    where = f"at revision {at}" if at else "empty (no ledger tables yet)"
    raise LedgerNotMigrated(
        f"the ledger at {display_url(url)} is {where}, this corehour needs {head}: "
        f"{MIGRATE_HINT} before starting the hub"
    )
