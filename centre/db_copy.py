"""Copy a database into a file and back, whatever the database holds.

SQLite goes through its online backup API, never a file copy: in WAL mode the newest commits
may sit in the ``-wal`` file, and a copy taken while a writer works is torn.  PostgreSQL goes
through ``pg_dump --format=custom`` and ``pg_restore``.  Their password reaches libpq in the
environment, never on a command line, which every local user can read in ``/proc``.

Edge-only: it runs SQLite and subprocesses, and knows nothing of which databases corehour has.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

KINDS = ("sqlite", "postgresql")


class CopyError(Exception):
    """A copy or restore that could not be done; the message says what to do."""


def display_url(url: str) -> str:
    """``url`` as it may be printed, logged or written to a manifest: without its password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(a database URL that cannot be read)"
    query = {k: v for k, v in parsed.query.items() if k.lower() != "password"}
    # URL.set(password=None) would keep the password: None there means "unchanged".
    bare = URL.create(
        parsed.drivername,
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=query,
    )
    return bare.render_as_string(hide_password=False)


def kind_of(url: str) -> str:
    """``sqlite`` or ``postgresql``; other databases cannot be copied here."""
    backend = make_url(url).get_backend_name()
    if backend not in KINDS:
        raise CopyError(
            f"{display_url(url)}: corehour backs up SQLite and PostgreSQL only, not {backend}"
        )
    return backend


def sqlite_file(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise CopyError(f"{display_url(url)} is a database in memory; there is nothing to copy")
    return Path(database)


def exists(url: str) -> bool:
    """Whether there is something to back up: a SQLite file, or any PostgreSQL database (its
    server says whether it is there when it is dumped)."""
    return kind_of(url) != "sqlite" or sqlite_file(url).exists()


def schema_revision(url: str) -> str | None:
    """The Alembic revision a database is at; None for a new, empty one.  A missing SQLite
    file is not created."""
    database = make_url(url).database
    on_file = kind_of(url) == "sqlite" and database not in (None, "", ":memory:")
    if on_file and not Path(database).exists():
        return None
    args = {"connect_timeout": 10} if kind_of(url) == "postgresql" else {}
    engine = create_engine(url, connect_args=args)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def dump(url: str, dest: Path) -> None:
    """Write a consistent copy of the database at ``url`` to the new file ``dest`` (0600)."""
    if kind_of(url) == "sqlite":
        _backup_sqlite(sqlite_file(url), dest)
    else:
        with _private_file(dest) as out:
            _run_pg(["pg_dump", "--format=custom", "--no-password"], url, stdout=out)


def load(src: Path, url: str) -> None:
    """Put the copy in ``src`` back into the database at ``url``, replacing what it holds."""
    if kind_of(url) == "sqlite":
        target = sqlite_file(url)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        # Into the live file through SQLite, so a -wal beside it is replaced too, not replayed
        # over the restored pages.
        _sqlite_backup(src, target)
    else:
        # One transaction: a restore that fails half-way leaves the database as it was.
        argv = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction"]
        _run_pg([*argv, "--no-password", str(src)], url)


def _backup_sqlite(source: Path, dest: Path) -> None:
    if not source.exists():
        raise CopyError(f"{source} does not exist; there is nothing to back up")
    with _private_file(dest):
        pass
    _sqlite_backup(source, dest)


def _sqlite_backup(source: Path, dest: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
    except sqlite3.Error as e:
        raise CopyError(f"copying {source} to {dest} failed: {e}") from None
    finally:
        dst.close()
        src.close()


@contextlib.contextmanager
def _private_file(path: Path):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CopyError(f"{path} already exists; choose a new folder for the backup") from None
    with os.fdopen(fd, "wb") as f:
        yield f


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI without the password, and the environment that carries it."""
    parsed = make_url(url)
    bare = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    )
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    return bare.render_as_string(hide_password=False), env


def _run_pg(argv: list[str], url: str, stdout=None) -> None:
    uri, env = _libpq(url)
    try:
        result = subprocess.run(
            [*argv, f"--dbname={uri}"],
            env=env,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=False,
            timeout=3600,
        )
    except FileNotFoundError:
        raise CopyError(
            f"{argv[0]} is not installed: install the PostgreSQL client (apt install "
            "postgresql-client) in the same major version as the server"
        ) from None
    if result.returncode != 0:
        said = result.stderr.decode(errors="replace").strip()
        raise CopyError(f"{argv[0]} of {display_url(url)} failed: {said}")
