"""The metering cycle's bulk writes, one statement per table on PostgreSQL.

SQLite gets plain executemany, which is fast in-process.  PostgreSQL gets one statement
over ``unnest`` of column arrays: one round trip for thousands of rows instead of one
per row.  Both write exactly the same rows.
"""

from __future__ import annotations

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from billing_hooks.ledger import insert_for
from billing_hooks.models import Account, Charge, MeteredJob

# Columns of a charge row with their PostgreSQL array types, in insert order.
CHARGE_COLUMNS = {
    "idempotency_key": "varchar",
    "account_id": "integer",
    "username": "varchar",
    "cluster": "varchar",
    "partition": "varchar",
    "job_id": "varchar",
    "job_name": "varchar",
    "job_start": "bigint",
    "interval_start": "bigint",
    "interval_end": "bigint",
    "cpus": "integer",
    "gpus": "integer",
    "mem_mb": "bigint",
    "cpu_seconds": "bigint",
    "gpu_seconds": "bigint",
    "mem_mb_seconds": "bigint",
    "amount_mc": "bigint",
    "closed": "boolean",
}
# What a later cycle may change in an open row.
CHARGE_UPDATES = (
    "interval_end",
    "amount_mc",
    "cpu_seconds",
    "gpu_seconds",
    "mem_mb_seconds",
    "closed",
)
PROGRESS_UPDATES = {
    "open_from": "bigint",
    "open_amount_mc": "bigint",
    "charged_until": "bigint",
    "finished": "boolean",
}


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _arrays(rows: list[dict], columns) -> dict[str, list]:
    return {name: [row[name] for row in rows] for name in columns}


def upsert_charges(session: Session, rows: list[dict]) -> None:
    if not rows:
        return
    if _postgres(session):
        names = ", ".join(CHARGE_COLUMNS)
        arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in CHARGE_COLUMNS.items())
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in CHARGE_UPDATES)
        session.execute(
            text(
                f"INSERT INTO charge ({names}) SELECT * FROM unnest({arrays}) "
                f"ON CONFLICT (idempotency_key) DO UPDATE SET {updates}"
            ),
            _arrays(rows, CHARGE_COLUMNS),
        )
        return
    insert = insert_for(session)(Charge.__table__)
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["idempotency_key"],
            set_={name: insert.excluded[name] for name in CHARGE_UPDATES},
        ),
        rows,
    )


def insert_progress(session: Session, rows: list[dict]) -> None:
    if rows:
        session.execute(MeteredJob.__table__.insert(), rows)


def update_progress(session: Session, rows: list[dict]) -> None:
    """``rows`` carry ``row_id`` and the PROGRESS_UPDATES columns."""
    if not rows:
        return
    if _postgres(session):
        columns = {"row_id": "bigint", **PROGRESS_UPDATES}
        arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns.items())
        sets = ", ".join(f"{name} = u.{name}" for name in PROGRESS_UPDATES)
        session.execute(
            text(
                f"UPDATE metered_job SET {sets} FROM unnest({arrays}) "
                f"AS u({', '.join(columns)}) WHERE metered_job.id = u.row_id"
            ),
            _arrays(rows, columns),
        )
        return
    table = MeteredJob.__table__
    session.execute(
        table.update()
        .where(table.c.id == bindparam("row_id"))
        .values({name: bindparam(name) for name in PROGRESS_UPDATES}),
        rows,
    )


def debit_balances(session: Session, deltas: dict[int, int]) -> None:
    """``balance -= delta`` per account id: relative, so concurrent top-ups are kept."""
    changed = [{"account": a, "delta": d} for a, d in deltas.items() if d]
    if not changed:
        return
    if _postgres(session):
        session.execute(
            text(
                "UPDATE account SET balance_mc = account.balance_mc - u.delta "
                "FROM unnest(CAST(:account AS integer[]), CAST(:delta AS bigint[])) "
                "AS u(id, delta) WHERE account.id = u.id"
            ),
            _arrays(changed, ("account", "delta")),
        )
        return
    table = Account.__table__
    session.execute(
        table.update()
        .where(table.c.id == bindparam("account"))
        .values(balance_mc=table.c.balance_mc - bindparam("delta")),
        changed,
    )
