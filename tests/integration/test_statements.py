"""Monthly statements against real ledger databases: SQLite and PostgreSQL."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from billing_hooks.db import make_engine, session_factory
from billing_hooks.ledger import NewAccount, create_account, insert_for
from billing_hooks.models import Account, Charge, Statement, Transaction
from billing_hooks.statements import (
    JobLine,
    build_statement,
    job_lines,
    month_bounds,
    render_csv,
    render_pdf,
)
from tests.ledger_db import drop_postgres, postgres_url, sqlite_url

pytestmark = pytest.mark.integration

MONTH = "2026-11"


def at(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


@pytest.fixture(params=["sqlite", "postgresql"])
def session(request, tmp_path):
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        url = postgres_url()
        request.addfinalizer(lambda: drop_postgres(url))
    engine = make_engine(url)
    request.addfinalizer(engine.dispose)
    with session_factory(engine)() as session:
        yield session


def add_rows(session, account, job, rows):
    """Book a job's hour rows as the meter would: ``rows`` is (start, end, cpu_s, gpu_s, mc)."""
    for start, end, cpu_seconds, gpu_seconds, amount_mc in rows:
        session.execute(
            insert_for(session)(Charge).values(
                idempotency_key=f"{job['cluster']}:{job['job_id']}:{job['job_start']}:{start}",
                account_id=account.id,
                interval_start=start,
                interval_end=end,
                cpu_seconds=cpu_seconds,
                gpu_seconds=gpu_seconds,
                mem_mb=0,
                mem_mb_seconds=0,
                amount_mc=amount_mc,
                closed=True,
                **job,
            )
        )


def job(cluster, partition, job_id, job_name, username, cpus, gpus, job_start):
    return dict(
        cluster=cluster,
        partition=partition,
        job_id=job_id,
        job_name=job_name,
        username=username,
        cpus=cpus,
        gpus=gpus,
        job_start=job_start,
    )


@pytest.fixture
def ledger(session):
    """Two accounts; the first has four jobs in November 2026 and some outside it."""
    with session.begin():
        ours = create_account(
            session, NewAccount("proj-astro", "project", "alice", "Astro group"), "admin"
        )
        other = create_account(session, NewAccount("proj-bio", "project", "dave"), "admin")

        # Four cores from 09:30 to 11:00: a half-hour row and a full-hour row.
        two_rows = job(
            "alpha", "cpu", "101", '=HYPERLINK("x")', "alice", 4, 0, at("2026-11-26T09:30")
        )
        add_rows(
            session,
            ours,
            two_rows,
            [
                (at("2026-11-26T09:30"), at("2026-11-26T10:00"), 7200, 0, 100),
                (at("2026-11-26T10:00"), at("2026-11-26T11:00"), 14400, 0, 200),
            ],
        )
        gpu = job("alpha", "gpu", "202", "train", "bob", 8, 2, at("2026-11-03T12:00"))
        add_rows(
            session,
            ours,
            gpu,
            [(at("2026-11-03T12:00"), at("2026-11-03T12:45"), 21600, 5400, 4567)],
        )
        # Same job id on another cluster: another job.
        beta = job("beta", "cpu", "101", "@sum", "-carol", 1, 0, at("2026-11-10T00:00"))
        add_rows(
            session, ours, beta, [(at("2026-11-10T00:00"), at("2026-11-10T01:00"), 3600, 0, 50)]
        )
        # Across the month's start: only its November row belongs to November.
        across = job("alpha", "cpu", "404", "", "alice", 2, 0, at("2026-10-31T23:00"))
        add_rows(
            session,
            ours,
            across,
            [
                (at("2026-10-31T23:00"), at("2026-11-01T00:00"), 7200, 0, 60),
                (at("2026-11-01T00:00"), at("2026-11-01T00:30"), 3600, 0, 30),
            ],
        )
        october = job("alpha", "cpu", "303", "old", "alice", 1, 0, at("2026-10-15T08:00"))
        add_rows(
            session, ours, october, [(at("2026-10-15T08:00"), at("2026-10-15T09:00"), 3600, 0, 50)]
        )
        theirs = job("alpha", "cpu", "505", "not ours", "dave", 16, 0, at("2026-11-12T00:00"))
        add_rows(
            session,
            other,
            theirs,
            [(at("2026-11-12T00:00"), at("2026-11-12T01:00"), 57600, 0, 800)],
        )

        session.add_all(
            [
                Transaction(
                    account_id=ours.id,
                    kind="topup",
                    amount_mc=100_000,
                    actor="admin",
                    reason="=cmd|' /C calc'!A0 grant",
                    created_at=at("2026-11-02T08:00"),
                ),
                Transaction(
                    account_id=ours.id,
                    kind="adjustment",
                    amount_mc=-500,
                    actor="admin",
                    reason="correction",
                    created_at=at("2026-11-20T08:00"),
                ),
                Transaction(
                    account_id=ours.id,
                    kind="topup",
                    amount_mc=7_000,
                    actor="admin",
                    reason="october",
                    created_at=at("2026-10-20T08:00"),
                ),
                Transaction(
                    account_id=other.id,
                    kind="topup",
                    amount_mc=9_000,
                    actor="admin",
                    reason="theirs",
                    created_at=at("2026-11-20T08:00"),
                ),
            ]
        )
        session.execute(update(Account).where(Account.id == ours.id).values(balance_mc=12_345))
    return ours, other


EXPECTED_LINES = [
    JobLine(
        "alpha", "cpu", "404", "", "alice", 2, 0,
        at("2026-11-01T00:00"), at("2026-11-01T00:30"), 3600, 0, 30,
    ),
    JobLine(
        "alpha", "gpu", "202", "train", "bob", 8, 2,
        at("2026-11-03T12:00"), at("2026-11-03T12:45"), 21600, 5400, 4567,
    ),
    JobLine(
        "beta", "cpu", "101", "@sum", "-carol", 1, 0,
        at("2026-11-10T00:00"), at("2026-11-10T01:00"), 3600, 0, 50,
    ),
    JobLine(
        "alpha", "cpu", "101", '=HYPERLINK("x")', "alice", 4, 0,
        at("2026-11-26T09:30"), at("2026-11-26T11:00"), 21600, 0, 300,
    ),
]  # fmt: skip


def test_job_lines_add_up_each_jobs_rows_in_the_month(session, ledger):
    ours, _ = ledger
    with session.begin():
        lines = job_lines(session, ours.id, MONTH)
    assert lines == EXPECTED_LINES
    assert [line.core_hours for line in lines] == [
        Decimal("1.0000"),
        Decimal("6.0000"),
        Decimal("1.0000"),
        Decimal("6.0000"),
    ]
    assert lines[1].gpu_hours == Decimal("1.5000")


def test_job_lines_of_other_months(session, ledger):
    ours, other = ledger
    with session.begin():
        october = job_lines(session, ours.id, "2026-10")
        december = job_lines(session, ours.id, "2026-12")
        theirs = job_lines(session, other.id, MONTH)
    assert [(line.job_id, line.amount_mc) for line in october] == [("303", 50), ("404", 60)]
    assert december == []
    assert [(line.job_id, line.username, line.amount_mc) for line in theirs] == [
        ("505", "dave", 800)
    ]


def test_statement_totals_and_transactions(session, ledger):
    ours, _ = ledger
    with session.begin():
        data = build_statement(session, ours, MONTH)
    assert data.account_name == "proj-astro"
    assert data.account_display == "Astro group"
    assert data.account_kind == "project"
    assert data.month == MONTH
    assert list(data.lines) == EXPECTED_LINES
    assert (data.jobs, data.cpu_seconds, data.gpu_seconds, data.charges_mc) == (
        4,
        50400,
        5400,
        4947,
    )
    assert [(t.kind, t.amount_mc, t.actor, t.created_at) for t in data.transactions] == [
        ("topup", 100_000, "admin", at("2026-11-02T08:00")),
        ("adjustment", -500, "admin", at("2026-11-20T08:00")),
    ]
    assert data.credits_mc == 99_500
    assert data.balance_mc == 12_345


def test_statement_row_is_written_then_updated(session, ledger):
    ours, _ = ledger
    with session.begin():
        first = build_statement(session, ours, MONTH)
    with session.begin():
        row = session.scalars(select(Statement).where(Statement.account_id == ours.id)).one()
        assert (row.month, row.jobs, row.cpu_seconds, row.gpu_seconds) == (MONTH, 4, 50400, 5400)
        assert (row.charges_mc, row.credits_mc, row.generated_at) == (
            4947,
            99_500,
            first.generated_at,
        )

    late = job("alpha", "cpu", "707", "late", "alice", 1, 0, at("2026-11-29T10:00"))
    with session.begin():
        add_rows(
            session, ours, late, [(at("2026-11-29T10:00"), at("2026-11-29T11:00"), 3600, 0, 53)]
        )
    with session.begin():
        second = build_statement(session, ours, MONTH)
    session.expire_all()
    with session.begin():
        rows = session.scalars(select(Statement)).all()
        assert [(r.account_id, r.month, r.jobs, r.cpu_seconds, r.charges_mc) for r in rows] == [
            (ours.id, MONTH, 5, 54000, 5000)
        ]
    assert second.lines[-1].job_id == "707"


def test_csv_round_trips_with_formulas_defused(session, ledger):
    ours, _ = ledger
    with session.begin():
        text = render_csv(build_statement(session, ours, MONTH))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        [
            "cluster", "partition", "job_id", "job_name", "user", "cores", "gpus",
            "start", "end", "core_hours", "gpu_hours", "amount",
        ],
        [
            "alpha", "cpu", "404", "", "alice", "2", "0",
            "2026-11-01T00:00:00Z", "2026-11-01T00:30:00Z", "1.0000", "0.0000", "0.030",
        ],
        [
            "alpha", "gpu", "202", "train", "bob", "8", "2",
            "2026-11-03T12:00:00Z", "2026-11-03T12:45:00Z", "6.0000", "1.5000", "4.567",
        ],
        [
            "beta", "cpu", "101", "'@sum", "'-carol", "1", "0",
            "2026-11-10T00:00:00Z", "2026-11-10T01:00:00Z", "1.0000", "0.0000", "0.050",
        ],
        [
            "alpha", "cpu", "101", "'=HYPERLINK(\"x\")", "alice", "4", "0",
            "2026-11-26T09:30:00Z", "2026-11-26T11:00:00Z", "6.0000", "0.0000", "0.300",
        ],
        ["total", "", "", "", "", "", "", "", "", "14.0000", "1.5000", "4.947"],
    ]  # fmt: skip


def test_pdf_names_the_account_and_its_jobs(session, ledger):
    ours, _ = ledger
    with session.begin():
        pdf = render_pdf(build_statement(session, ours, MONTH))
    assert pdf.startswith(b"%PDF")
    assert b"corehour statement" in pdf
    assert b"proj-astro" in pdf
    assert b"(202)" in pdf
    assert b"4.947 credits" in pdf
    assert b"not ours" not in pdf


def test_month_must_be_year_dash_month(session, ledger):
    ours, _ = ledger
    for month in ("2026-13", "2026-1", "Nov 2026", ""):
        with pytest.raises(ValueError, match=r"month: use YYYY-MM, e.g\. 2026-11"):
            job_lines(session, ours.id, month)
        with pytest.raises(ValueError, match=r"month: use YYYY-MM"):
            build_statement(session, ours, month)
    assert month_bounds(MONTH) == (at("2026-11-01T00:00"), at("2026-12-01T00:00"))


@pytest.fixture
def pg_session(request):
    url = postgres_url()
    request.addfinalizer(lambda: drop_postgres(url))
    engine = make_engine(url)
    request.addfinalizer(engine.dispose)
    with session_factory(engine)() as session:
        yield session


def test_grouping_memory_ends_with_the_transaction(pg_session):
    """PostgreSQL only: work_mem is a PostgreSQL setting, raised for one query's transaction."""
    session = pg_session
    with session.begin():
        ours = create_account(session, NewAccount("proj-pg", "project", "alice"), "admin")
    with session.begin():
        before = session.connection().exec_driver_sql("SHOW work_mem").scalar()
        job_lines(session, ours.id, MONTH)
        assert session.connection().exec_driver_sql("SHOW work_mem").scalar() == "64MB"
    with session.begin():
        assert session.connection().exec_driver_sql("SHOW work_mem").scalar() == before
