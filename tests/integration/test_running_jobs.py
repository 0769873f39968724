"""The attack: a person's request for their running jobs must not make the ledger read
everyone's charges (``GET api/jobs/running``, asked every few seconds by open usage pages).

On PostgreSQL the database itself counts the charge rows a call reads
(pg_stat_xact_user_tables, this transaction only); on SQLite the query plan must find charge
rows through an index, never by scanning the table.  Reads also never wait for SQLite's
write lock.  No Slurm and no hub here.
"""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import event, insert, select, text, update

from billing_hooks.db import make_engine, read_only_sessions, session_factory
from billing_hooks.ledger import NewAccount, add_member, create_account
from billing_hooks.models import Account, Charge, MeteredJob
from billing_hooks.reports import running_jobs
from tests.ledger_db import drop_postgres, postgres_url, sqlite_url

pytestmark = pytest.mark.integration

T0 = 1_800_000_000
OTHERS = 40  # people, each with 2 running and 3 finished jobs of ROWS charge rows
ROWS = 150
_ids = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    url = sqlite_url(tmp_path) if request.param == "sqlite" else postgres_url()
    engine = make_engine(url)
    sessions = session_factory(engine)
    expected = fill(sessions)
    if request.param == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    yield request.param, sessions, expected
    engine.dispose()
    if request.param == "postgresql":
        drop_postgres(url)


def account(session, name: str, owner: str, kind: str = "personal") -> int:
    return create_account(session, NewAccount(name=name, kind=kind, owner=owner), "test").id


def job(session, account_id: int, username: str, rows: int, running: bool) -> tuple[str, int]:
    """A metered job with ``rows`` hourly charge rows of 1 + its number mc each; its cost."""
    n = next(_ids)
    job_id, start = str(100_000 + n), T0 + n
    session.add(
        MeteredJob(
            cluster="alpha",
            job_id=job_id,
            job_start=start,
            account_id=account_id,
            username=username,
            partition="cpu",
            open_from=start + rows * 3600,
            charged_until=start + rows * 3600,
            finished=not running,
        )
    )
    session.execute(
        insert(Charge),
        [
            {
                "idempotency_key": f"{job_id}:{i}",
                "account_id": account_id,
                "username": username,
                "cluster": "alpha",
                "partition": "cpu",
                "job_id": job_id,
                "job_start": start,
                "interval_start": start + i * 3600,
                "interval_end": start + (i + 1) * 3600,
                "cpus": 2,
                "cpu_seconds": 7200,
                "amount_mc": 1 + n,
            }
            for i in range(rows)
        ],
    )
    return job_id, rows * (1 + n)


def fill(sessions) -> dict:
    """Ann's two running jobs among 30,000 charge rows of other people; what she must see."""
    with sessions.begin() as session:
        for k in range(OTHERS):
            other = account(session, f"u-other{k}", f"other{k}")
            for running in (True, True, False, False, False):
                job(session, other, f"other{k}", ROWS, running)
        ann = account(session, "u-ann", "ann")
        shared = account(session, "p-lab", "bob", kind="project")
        add_member(session, session.get(Account, shared), "ann", "member")
        mine = dict([job(session, ann, "ann", 3, True), job(session, shared, "ann", 4, True)])
        job(session, ann, "ann", 5, False)  # finished: not listed
        job(session, shared, "bob", ROWS, True)  # a colleague's job in the shared account
    return {"accounts": [ann, shared], "jobs": mine, "rows": 3 + 4}


def charge_rows_read(session) -> int:
    return session.execute(
        text(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
            "FROM pg_stat_xact_user_tables WHERE relname = 'charge'"
        )
    ).scalar_one()


def test_one_persons_running_jobs_read_only_their_own_charge_rows(ledger):
    kind, sessions, expected = ledger
    statements: list[tuple[str, object]] = []
    engine = sessions.kw["bind"]

    def record(_conn, _cursor, statement, parameters, _context, _many):
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with sessions() as session:
            before = charge_rows_read(session) if kind == "postgresql" else 0
            jobs = running_jobs(session, expected["accounts"], "ann")
            after = charge_rows_read(session) if kind == "postgresql" else 0
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert {j.job_id: j.cost_mc for j in jobs} == expected["jobs"]
    assert {j.username for j in jobs} == {"ann"}
    if kind == "postgresql":
        # Ann's running jobs have 7 charge rows; the table holds 30,000 more.
        assert after - before <= expected["rows"], f"read {after - before} charge rows"
    else:
        (query, parameters) = next(s for s in statements if "FROM metered_job" in s[0])
        with engine.connect() as conn:
            plan = [
                row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}", parameters)
            ]
        assert not [step for step in plan if step.startswith("SCAN charge")], plan
        assert any(step.startswith("SEARCH charge USING INDEX") for step in plan), plan


def test_reads_for_pages_never_wait_for_sqlites_write_lock(tmp_path):
    writer = session_factory(make_engine(sqlite_url(tmp_path)))
    with writer.begin() as session:
        ann = account(session, "u-ann", "ann")
    reads = read_only_sessions(writer)
    assert read_only_sessions(writer) is reads  # one reader per ledger
    with writer.begin() as holding:  # BEGIN IMMEDIATE, as a metering cycle holds it
        holding.execute(update(Account).where(Account.id == ann).values(credit_limit_mc=5))
        # A reader that waited for the lock would fail with "database is locked" after the
        # writer's busy timeout; this one reads the last commit at once.
        with reads() as session:
            assert session.scalar(select(Account.credit_limit_mc).where(Account.id == ann)) == 0
            assert running_jobs(session, [ann], "ann") == []
