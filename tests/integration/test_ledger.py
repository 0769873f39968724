"""The ledger and the meter against real databases: SQLite files and the local PostgreSQL.

No Slurm here: the meter is fed synthetic readings, so these tests never touch the shared
clusters.  Expected amounts are computed independently of ``centre/pricing.py``, from the rates
in the site file, as ``round(TRES × elapsed × rate)`` with one half-up rounding.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import multiprocessing
import threading
import time
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, func, select, update
from sqlalchemy.exc import DBAPIError

from billing_hooks.db import make_engine, session_factory
from billing_hooks.ledger import (
    MAX_TRANSACTION_MC,
    LedgerError,
    NewAccount,
    add_charge,
    add_member,
    audited_balance_mc,
    create_account,
    ensure_personal_account,
    record_transaction,
)
from billing_hooks.meter import ClusterReading, Meter
from billing_hooks.models import Account, Charge, MeterCursor, MeteredJob, Transaction
from billing_hooks.usage import JobUsage
from centre.pricing import RateBook, Tres
from centre.site import parse_site
from tests.ledger_db import drop_postgres, postgres_url, sqlite_url

pytestmark = pytest.mark.integration

# Odd prices and odd cycle lengths, so any per-cycle rounding would show up in the totals.
RATES = [
    {"cluster": "alpha", "partition": "cpu", "core_hour": "0.37", "gb_mem_hour": "0.011"},
    {"cluster": "alpha", "partition": "gpu", "core_hour": "0.5", "gpu_hour": "7.3"},
    {"cluster": "beta", "partition": "cpu", "core_hour": "0.29"},
    {"cluster": "beta", "partition": "bigmem", "core_hour": "0.4", "gb_mem_hour": "0.023"},
]
T0 = 1_800_001_234  # 2027-01-15, 20 min 34 s past an hour
OPENING_MC = 500_000
CYCLE = 61
EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "deploy" / "site.example.yaml"


def example_site():
    raw = yaml.safe_load(EXAMPLE_SITE.read_text())
    raw["billing"] = {"rates": [{"valid_from": "2020-01-01", **rate} for rate in RATES]}
    return parse_site(raw, "site.example.yaml + billing")


SITE = example_site()
RATE_BOOK = RateBook.from_site(SITE.billing)


def expected_mc(tres: Tres, seconds: int, partition="cpu", cluster="alpha", multiplier="1"):
    """round(TRES × elapsed × rate), half up, from the site file's numbers alone."""
    rate = next(r for r in SITE.billing.rates if (r.cluster, r.partition) == (cluster, partition))
    credits_per_hour = (
        Fraction(rate.core_hour) * tres.cpus
        + Fraction(rate.gpu_hour) * tres.gpus
        + Fraction(rate.gb_mem_hour) * Fraction(tres.mem_mb, 1024)
    )
    exact = credits_per_hour * 1000 * seconds / 3600 * Fraction(Decimal(multiplier))
    return math.floor(exact + Fraction(1, 2))


# -- databases -----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path):
    url = sqlite_url(tmp_path) if request.param == "sqlite" else postgres_url()
    engine = make_engine(url)
    yield session_factory(engine)
    engine.dispose()
    if request.param == "postgresql":
        drop_postgres(url)


@pytest.fixture(scope="module")
def sqlite_sessions(tmp_path_factory):
    engine = make_engine(sqlite_url(tmp_path_factory.mktemp("ledger")))
    yield session_factory(engine)
    engine.dispose()


def new_account(sessions, name, opening_mc=OPENING_MC, kind="personal", owner=None) -> int:
    with sessions.begin() as session:
        spec = NewAccount(name=name, kind=kind, owner=owner or name)
        return create_account(session, spec, actor="test", opening_mc=opening_mc).id


def personal(sessions, username, multiplier="1") -> int:
    with sessions.begin() as session:
        return ensure_personal_account(
            session, username, OPENING_MC, "standard", Decimal(multiplier)
        ).id


def balances(sessions, account_id) -> tuple[int, int]:
    """(Account.balance_mc, the balance recomputed from the rows), read afresh."""
    with sessions() as session:
        stored = session.scalar(select(Account.balance_mc).where(Account.id == account_id))
        return stored, audited_balance_mc(session, account_id)


def count(sessions, column, *where) -> int:
    with sessions() as session:
        return session.scalar(select(func.count(column)).where(*where))


# -- a. balances add up, whatever the sequence of operations ------------------------

AMOUNTS = st.integers(1, MAX_TRANSACTION_MC)
TRANSACTION_KEYS = st.one_of(st.none(), st.sampled_from(["k1", "k2", "k3"]))
OPERATIONS = st.one_of(
    st.tuples(st.just("topup"), AMOUNTS, TRANSACTION_KEYS),
    st.tuples(st.just("refund"), AMOUNTS, TRANSACTION_KEYS),
    st.tuples(
        st.just("adjustment"),
        st.integers(-MAX_TRANSACTION_MC, MAX_TRANSACTION_MC).filter(bool),
        TRANSACTION_KEYS,
    ),
    st.tuples(st.just("charge"), st.integers(0, 10**9), st.sampled_from(["c1", "c2", "c3"])),
)
_accounts = itertools.count()


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
@given(opening=st.integers(0, MAX_TRANSACTION_MC), operations=st.lists(OPERATIONS, max_size=20))
def test_balance_is_the_sum_of_its_rows(sqlite_sessions, opening, operations):
    sessions = sqlite_sessions
    name = f"prop-{next(_accounts)}"
    account_id = new_account(sessions, name, opening_mc=opening)
    expected = opening
    used = set()
    for kind, amount, key in operations:
        # Keys are unique ledger-wide: prefix them so examples never share one.
        unique_key = key and f"{name}:{kind == 'charge'}:{key}"
        repeated = unique_key in used
        with sessions.begin() as session:
            if kind == "charge":
                booked = add_charge(
                    session, account_id, name, "alpha", "cpu", "1", (T0, T0 + 60), 1, amount,
                    unique_key,
                )  # fmt: skip
                assert booked is not repeated
            else:
                done = record_transaction(
                    session, account_id, kind, amount, "test", "property", unique_key
                )
                assert (done is None) is repeated
        if unique_key is not None:
            used.add(unique_key)
        if not repeated:
            expected += -amount if kind == "charge" else amount
    assert balances(sessions, account_id) == (expected, expected)


# -- b. bad input is refused by name and writes nothing ------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount_mc": -5}, "amount"),
        ({"amount_mc": 0}, "amount"),
        ({"amount_mc": float("nan")}, "amount"),
        ({"amount_mc": 12.5}, "amount"),
        ({"amount_mc": "1000"}, "amount"),
        ({"amount_mc": Decimal(1000)}, "amount"),
        ({"amount_mc": True}, "amount"),
        ({"amount_mc": MAX_TRANSACTION_MC + 1}, "amount"),
        ({"kind": "refund", "amount_mc": -1}, "amount"),
        ({"kind": "adjustment", "amount_mc": 0}, "amount"),
        ({"kind": "adjustment", "amount_mc": -MAX_TRANSACTION_MC - 1}, "amount"),
        ({"kind": "gift"}, "kind"),
        ({"reason": ""}, "reason"),
        ({"reason": "   "}, "reason"),
        ({"reason": None}, "reason"),
        ({"reason": "x" * 501}, "reason"),
        ({"account_id": 999_999}, "account"),
    ],
)
def test_bad_topups_are_refused_by_name_and_write_nothing(sqlite_sessions, change, field):
    sessions = sqlite_sessions
    account_id = new_account(sessions, f"bad-{next(_accounts)}")
    before = (count(sessions, Transaction.id), count(sessions, Charge.id))
    request = dict(
        account_id=account_id, kind="topup", amount_mc=1000, actor="admin", reason="grant"
    )
    request.update(change)
    # The caller commits despite the refusal: anything written half-way would stay.
    with sessions.begin() as session:
        with pytest.raises(LedgerError) as refused:
            record_transaction(session, **request)
    assert refused.value.field == field
    assert field in str(refused.value)
    assert (count(sessions, Transaction.id), count(sessions, Charge.id)) == before
    assert balances(sessions, account_id) == (OPENING_MC, OPENING_MC)


# -- c. transactions are append-only -------------------------------------------------


def test_transactions_cannot_be_changed_or_deleted(sqlite_sessions):
    sessions = sqlite_sessions
    account_id = new_account(sessions, f"append-{next(_accounts)}")
    with sessions() as session:
        opening = session.scalar(select(Transaction).where(Transaction.account_id == account_id))
        opening.amount_mc = 1
        with pytest.raises(PermissionError, match="append-only"):
            session.flush()
        session.rollback()
        session.delete(session.get(Transaction, opening.id))
        with pytest.raises(PermissionError, match="append-only"):
            session.flush()
        session.rollback()
    with sessions() as session:
        rows = session.scalars(select(Transaction).where(Transaction.account_id == account_id))
        assert [(t.kind, t.amount_mc) for t in rows] == [("topup", OPENING_MC)]
    assert balances(sessions, account_id) == (OPENING_MC, OPENING_MC)


def test_bulk_update_or_delete_of_transactions_is_refused_by_the_database(sqlite_sessions):
    """ORM bulk statements skip the flush hook; the database's own triggers still refuse."""
    sessions = sqlite_sessions
    account_id = new_account(sessions, f"bulk-{next(_accounts)}")
    for statement in (
        update(Transaction).where(Transaction.account_id == account_id).values(amount_mc=1),
        delete(Transaction).where(Transaction.account_id == account_id),
    ):
        with sessions() as session:
            with pytest.raises(DBAPIError, match="append-only"):
                session.execute(statement)
            session.rollback()


# -- d. concurrent writers lose nothing ----------------------------------------------

WORKERS = 8
OPERATIONS_EACH = 500
SHARED_KEYS = 5  # charges every worker tries to book under the same keys: one wins each


def planned(worker: int, index: int) -> tuple[str, int, str]:
    """(operation, amount, idempotency key) of one worker's index-th operation."""
    if index < SHARED_KEYS:
        return "charge", 100 + index, f"shared-{index}"
    if index % 4 == 0:
        return "topup", 1000 + 7 * worker + index, f"top-{worker}-{index}"
    return "charge", 1 + (31 * worker + index) % 50, f"charge-{worker}-{index}"


def hammer(url: str, worker: int, account_id: int, operations: int, barrier) -> None:
    """One worker process: each operation in its own database transaction."""
    engine = make_engine(url)
    sessions = session_factory(engine)
    barrier.wait(timeout=120)
    for index in range(operations):
        kind, amount, key = planned(worker, index)
        with sessions.begin() as session:
            if kind == "topup":
                assert record_transaction(
                    session, account_id, "topup", amount, f"w{worker}", "load test", key
                )
            else:
                booked = add_charge(
                    session, account_id, f"w{worker}", "alpha", "cpu", f"{worker}.{index}",
                    (T0, T0 + 60), 1, amount, key,
                )  # fmt: skip
                assert booked or key.startswith("shared-")
    engine.dispose()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_concurrent_processes_lose_no_update(tmp_path, database):
    # On SQLite the writers queue for the lock (BEGIN IMMEDIATE, 30 s busy timeout): all
    # 8 × 500 transactions still finish in about 15 s on a 2-core VM, most of it start-up.
    url = postgres_url() if database == "postgresql" else sqlite_url(tmp_path)
    engine = make_engine(url)
    sessions = session_factory(engine)
    try:
        account_id = new_account(sessions, "shared-account")
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(WORKERS)
        workers = [
            context.Process(target=hammer, args=(url, w, account_id, OPERATIONS_EACH, barrier))
            for w in range(WORKERS)
        ]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 540
        for worker in workers:
            worker.join(max(1, deadline - time.monotonic()))
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
                worker.join()
        assert [w.exitcode for w in workers] == [0] * WORKERS

        plan = [planned(w, i) for w in range(WORKERS) for i in range(OPERATIONS_EACH)]
        charges = {key: amount for kind, amount, key in plan if kind == "charge"}
        topups = [amount for kind, amount, _ in plan if kind == "topup"]
        expected = OPENING_MC + sum(topups) - sum(charges.values())
        assert balances(sessions, account_id) == (expected, expected)
        assert count(sessions, Charge.id) == len(charges)
        assert count(sessions, Transaction.id) == len(topups) + 1  # and the opening balance
    finally:
        engine.dispose()
        if database == "postgresql":
            drop_postgres(url)


# -- e. the meter on synthetic readings ----------------------------------------------


NOTEBOOK = Tres(4, 0, 8192)


def running(job_id, user, start=T0, *, tres=NOTEBOOK, account="corehour", **more):
    fields = dict(cluster="alpha", partition="cpu", name=f"nb-{job_id}", state="RUNNING")
    fields.update(more)
    return JobUsage(
        job_id=str(job_id), user=user, account=account, start=start, end=None, suspended=0,
        tres=tres, **fields,
    )  # fmt: skip


def ended(job: JobUsage, end: int) -> JobUsage:
    return dataclasses.replace(job, state="COMPLETED", end=end)


def reading(now, running=(), accounted=()):
    """What one cycle read from alpha; ``accounted=None`` is an unreachable sacct."""
    return ClusterReading(
        "alpha",
        running=list(running),
        accounted=None if accounted is None else list(accounted),
        sacct_until=now,
        errors=["alpha: sacct: timed out"] if accounted is None else [],
    )


def meter(sessions) -> Meter:
    return Meter(SITE, sessions, RATE_BOOK)


def charged(sessions, job_id) -> int:
    with sessions() as session:
        return session.scalar(
            select(func.coalesce(func.sum(Charge.amount_mc), 0)).where(Charge.job_id == job_id)
        )


def test_running_job_is_charged_exactly_then_ends(sessions):
    alice = personal(sessions, "alice")
    job = running(1001, "alice")
    ticker = meter(sessions)
    last = T0 + 80 * CYCLE  # crosses an hour boundary
    for now in range(T0 + CYCLE, last + 1, CYCLE):
        report = ticker.apply([reading(now, [job])], now)
        assert report.jobs_charged == 1
        assert charged(sessions, "1001") == expected_mc(job.tres, now - T0)
    end = last + 23
    report = ticker.apply([reading(end + 45, [], [ended(job, end)])], end + 45)

    total = expected_mc(job.tres, end - T0)
    assert charged(sessions, "1001") == total
    assert report.charged_mc == total - expected_mc(job.tres, last - T0)
    assert balances(sessions, alice) == (OPENING_MC - total, OPENING_MC - total)
    # One row per hour bucket the job touched (from 20:34 past one hour to 42:17 past the
    # next), all closed once it ended.
    assert count(sessions, Charge.id) == 2
    assert count(sessions, Charge.id, Charge.closed.is_(False)) == 0
    assert count(sessions, MeteredJob.id, MeteredJob.finished.is_(True)) == 1


def test_the_same_cycle_twice_charges_once(sessions):
    alice = personal(sessions, "alice")
    job = running(1002, "alice", tres=Tres(2, 0, 4096))
    ticker = meter(sessions)
    for now in (T0 + 600, T0 + 660):
        ticker.apply([reading(now, [job])], now)
    again = ticker.apply([reading(T0 + 660, [job])], T0 + 660)
    older = ticker.apply([reading(T0 + 600, [job])], T0 + 600)
    assert again.rows_written == again.charged_mc == older.rows_written == older.charged_mc == 0
    assert charged(sessions, "1002") == expected_mc(job.tres, 660)

    end = T0 + 700
    final = [reading(T0 + 720, [], [ended(job, end)])]
    ticker.apply(final, T0 + 720)
    repeat = ticker.apply(final, T0 + 720)
    assert repeat.rows_written == repeat.charged_mc == 0
    total = expected_mc(job.tres, 700)
    assert charged(sessions, "1002") == total
    assert balances(sessions, alice) == (OPENING_MC - total, OPENING_MC - total)


def test_a_restarted_meter_continues_without_a_gap(sessions):
    alice = personal(sessions, "alice")
    job = running(1003, "alice", tres=Tres(8, 0, 32768))
    first = meter(sessions)
    for now in range(T0 + CYCLE, T0 + 6 * CYCLE, CYCLE):
        first.apply([reading(now, [job])], now)
    down_until = T0 + 5 * CYCLE + 900  # the meter was down for a quarter of an hour

    restarted = Meter(SITE, session_factory(sessions.kw["bind"]), RATE_BOOK)
    report = restarted.apply([reading(down_until, [job])], down_until)
    assert report.charged_mc == expected_mc(job.tres, down_until - T0) - expected_mc(
        job.tres, 5 * CYCLE
    )
    for now in range(down_until + CYCLE, down_until + 5 * CYCLE, CYCLE):
        restarted.apply([reading(now, [job])], now)
        assert charged(sessions, "1003") == expected_mc(job.tres, now - T0)
    end = down_until + 5 * CYCLE + 17
    restarted.apply([reading(end + 30, [], [ended(job, end)])], end + 30)
    total = expected_mc(job.tres, end - T0)
    assert charged(sessions, "1003") == total
    assert balances(sessions, alice) == (OPENING_MC - total, OPENING_MC - total)


def test_jobs_of_people_without_an_account_are_not_charged(sessions):
    alice = personal(sessions, "alice")
    ours, theirs = running(1004, "alice"), running(1005, "mallory")
    report = meter(sessions).apply([reading(T0 + 600, [ours, theirs])], T0 + 600)
    assert report.jobs_charged == 1
    assert charged(sessions, "1005") == 0
    assert count(sessions, MeteredJob.id, MeteredJob.job_id == "1005") == 0
    spent = expected_mc(ours.tres, 600)
    assert balances(sessions, alice) == (OPENING_MC - spent, OPENING_MC - spent)


def test_a_job_under_a_project_account_is_charged_to_the_project(sessions):
    bob = personal(sessions, "bob")
    with sessions.begin() as session:
        spec = NewAccount("proj-ml", "project", owner="alice", price_multiplier=Decimal("0.8"))
        project = create_account(session, spec, actor="admin", opening_mc=OPENING_MC)
        add_member(session, project, "bob", "member")
        project_id = project.id
    job = running(1006, "bob", account="proj-ml", partition="gpu", tres=Tres(2, 1, 16384))
    ticker = meter(sessions)
    ticker.apply([reading(T0 + 300, [job])], T0 + 300)
    ticker.apply([reading(T0 + 400, [], [ended(job, T0 + 333)])], T0 + 400)

    spent = expected_mc(job.tres, 333, partition="gpu", multiplier="0.8")
    assert spent > 0
    assert balances(sessions, project_id) == (OPENING_MC - spent, OPENING_MC - spent)
    assert balances(sessions, bob) == (OPENING_MC, OPENING_MC)
    with sessions() as session:
        assert set(session.scalars(select(Charge.account_id))) == {project_id}


def test_an_unreachable_sacct_keeps_state_and_the_next_read_catches_up(sessions):
    alice = personal(sessions, "alice")
    job = running(1007, "alice", tres=Tres(3, 0, 6000))
    ticker = meter(sessions)
    for now in (T0 + 60, T0 + 120, T0 + 180):
        ticker.apply([reading(now, [job], [job])], now)
    before = charged(sessions, "1007")
    assert before == expected_mc(job.tres, 180)

    end = T0 + 211  # ends while slurmdbd cannot be asked
    for now in (T0 + 240, T0 + 300):
        report = ticker.apply([reading(now, [], None)], now)
        assert report.errors == ["alpha: sacct: timed out"]
        assert report.rows_written == 0
    assert charged(sessions, "1007") == before
    with sessions() as session:
        assert session.get(MeterCursor, "alpha").sacct_until == T0 + 180

    ticker.apply([reading(T0 + 360, [], [ended(job, end)])], T0 + 360)
    total = expected_mc(job.tres, 211)
    assert charged(sessions, "1007") == total
    assert balances(sessions, alice) == (OPENING_MC - total, OPENING_MC - total)
    with sessions() as session:
        assert session.get(MeterCursor, "alpha").sacct_until == T0 + 360


def test_a_thousand_job_cycle_keeps_one_open_row_per_job(sessions):
    users = [f"user{n:02d}" for n in range(50)]
    accounts = [personal(sessions, user) for user in users]
    jobs = [running(2000 + n, users[n % 50], start=T0 + n % 7) for n in range(1000)]
    ticker = meter(sessions)
    hour_end = T0 - T0 % 3600 + 3600
    for now in (T0 + 600, T0 + 660, hour_end - 30, hour_end + 30, hour_end + 90):
        report = ticker.apply([reading(now, jobs, jobs)], now)
        assert report.jobs_charged == 1000
        with sessions() as session:
            open_rows = session.execute(
                select(Charge.job_id, func.count())
                .where(Charge.closed.is_(False))
                .group_by(Charge.job_id)
            ).all()
        assert len(open_rows) == 1000
        assert {n for _, n in open_rows} == {1}
    # One row per job and hour, however many cycles ran in it.
    assert count(sessions, Charge.id) == 2000
    assert count(sessions, MeteredJob.id) == 1000
    spent = sum(expected_mc(job.tres, hour_end + 90 - job.start) for job in jobs)
    with sessions() as session:
        total = session.scalar(select(func.sum(Charge.amount_mc)))
        stored = session.scalar(
            select(func.sum(Account.balance_mc)).where(Account.id.in_(accounts))
        )
    assert total == spent
    assert stored == OPENING_MC * 50 - spent


def test_two_meters_applying_the_same_cycle_at_once_charge_once(request, sessions):
    engine = sessions.kw["bind"]
    alice = personal(sessions, "alice")
    jobs = [running(3000 + n, "alice") for n in range(20)]
    meter(sessions).apply([reading(T0 + 60, jobs)], T0 + 60)

    # Hold each cycle right after it read the jobs' progress until the other has read it too
    # (or for 3 s, where the other is kept waiting, as it should be, by a lock).
    both_read = threading.Barrier(2)

    @event.listens_for(engine, "after_cursor_execute")
    def _hold(_conn, _cursor, statement, *_):
        if statement.startswith("SELECT") and "FROM metered_job" in statement:
            with contextlib.suppress(threading.BrokenBarrierError):
                both_read.wait(timeout=3)

    cycles = [
        threading.Thread(target=meter(sessions).apply, args=([reading(T0 + 120, jobs)], T0 + 120))
        for _ in range(2)
    ]
    try:
        for cycle in cycles:
            cycle.start()
        for cycle in cycles:
            cycle.join(60)
    finally:
        event.remove(engine, "after_cursor_execute", _hold)
    spent = sum(expected_mc(job.tres, 120) for job in jobs)
    assert sum(charged(sessions, job.job_id) for job in jobs) == spent
    assert balances(sessions, alice) == (OPENING_MC - spent, OPENING_MC - spent)


def test_a_read_only_sqlite_engine_reads_while_a_cycle_holds_the_write_lock(tmp_path):
    """Hub pages read the ledger on every render; they must not queue behind the meter."""
    url = sqlite_url(tmp_path)
    writer = session_factory(make_engine(url))
    reader = session_factory(make_engine(url, read_only=True))
    account_id = new_account(writer, "read-only-check")
    with writer.begin() as holding:  # BEGIN IMMEDIATE: the write lock, as a metering cycle
        holding.execute(update(Account).where(Account.id == account_id).values(credit_limit_mc=5))
        started = time.monotonic()
        with reader() as session:
            seen = session.scalar(select(Account.credit_limit_mc).where(Account.id == account_id))
        assert time.monotonic() - started < 1  # no wait for the lock
        assert seen == 0  # the last committed value
    with reader() as session:
        with pytest.raises(DBAPIError, match="readonly"):
            session.execute(update(Account).values(credit_limit_mc=1))
