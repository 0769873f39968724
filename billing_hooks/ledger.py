"""Money movements on the ledger: accounts, top-ups and single charges.

Every change to a balance is a relative ``UPDATE`` in the same database transaction as the
row that explains it, so concurrent top-ups and charges add up exactly on PostgreSQL and
SQLite alike.  Callers own the transaction (``with session.begin():``).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from billing_hooks.gate import personal_account_name
from billing_hooks.models import (
    ACCOUNT_KINDS,
    ROLES,
    TRANSACTION_KINDS,
    Account,
    Charge,
    Membership,
    Transaction,
    now,
)
from centre.names import ACCOUNT_NAME, UNIX_NAME
from centre.pricing import MC_PER_CREDIT, format_credits

# A single top-up above this is almost certainly a typo (a million credits).
MAX_TRANSACTION_MC = 1_000_000 * 1000


class LedgerError(ValueError):
    """A request the ledger refuses; ``field`` names what was wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def insert_for(session: Session):
    """The dialect's INSERT, which knows ON CONFLICT."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


@dataclass(frozen=True)
class NewAccount:
    name: str
    kind: str
    owner: str
    display_name: str = ""
    tier: str = "standard"
    price_multiplier: Decimal = Decimal(1)
    credit_limit_mc: int = 0


def create_account(session: Session, spec: NewAccount, actor: str, opening_mc: int = 0) -> Account:
    if not ACCOUNT_NAME.fullmatch(spec.name):
        raise LedgerError(
            "name", "use 1–63 lower-case letters, digits, '-' or '_', starting with a letter"
        )
    if spec.kind not in ACCOUNT_KINDS:
        raise LedgerError("kind", f"must be one of {', '.join(ACCOUNT_KINDS)}")
    if not 0 <= spec.credit_limit_mc <= MAX_TRANSACTION_MC:
        raise LedgerError("credit_limit", "must be between 0 and 1,000,000 credits")
    if session.scalar(select(Account.id).where(Account.name == spec.name)) is not None:
        raise LedgerError("name", f"an account named '{spec.name}' already exists")
    account = Account(
        name=spec.name,
        kind=spec.kind,
        owner=spec.owner,
        display_name=spec.display_name or spec.name,
        tier=spec.tier,
        price_multiplier=spec.price_multiplier,
        credit_limit_mc=spec.credit_limit_mc,
        balance_mc=0,
        reference_mc=spec.credit_limit_mc,
        status="active",
    )
    session.add(account)
    session.flush()
    add_member(session, account, spec.owner, "manager")
    if opening_mc:
        record_transaction(session, account.id, "topup", opening_mc, actor, "opening balance")
    return account


def ensure_personal_account(
    session: Session, username: str, opening_mc: int, tier: str, multiplier: Decimal
) -> Account:
    """The account every person has; created with the site's opening balance on first use."""
    name = personal_account_name(username)
    account = session.scalar(select(Account).where(Account.name == name))
    if account is not None:
        return account
    spec = NewAccount(
        name=name,
        kind="personal",
        owner=username,
        display_name=f"{username} (personal)",
        tier=tier,
        price_multiplier=multiplier,
    )
    try:
        # A savepoint: if another process creates the same account at this moment (the hub
        # and the billing service can), its row wins and this one reads it.
        with session.begin_nested():
            return create_account(session, spec, actor="corehour", opening_mc=opening_mc)
    except IntegrityError:
        return session.scalar(select(Account).where(Account.name == name))


def site_personal_account(session: Session, username: str, billing) -> Account:
    """``username``'s personal account, opened with the site's balance and default tier."""
    return ensure_personal_account(
        session,
        username,
        opening_mc=int(billing.opening_balance * MC_PER_CREDIT),
        tier=billing.default_tier,
        multiplier=billing.tiers[billing.default_tier],
    )


def add_member(session: Session, account: Account, username: str, role: str) -> Membership:
    if role not in ROLES:
        raise LedgerError("role", f"must be one of {', '.join(ROLES)}")
    membership = session.scalar(
        select(Membership).where(
            Membership.account_id == account.id, Membership.username == username
        )
    )
    if membership is None:
        membership = Membership(account_id=account.id, username=username, role=role)
        session.add(membership)
    else:
        membership.role = role
    session.flush()
    return membership


def add_shared_member(session: Session, account: Account, username: str, role: str) -> Membership:
    """A member added by a manager or admin; a personal account is its owner's alone."""
    if not isinstance(username, str) or not UNIX_NAME.fullmatch(username):
        raise LedgerError(
            "username", "use a Unix user name: lower-case letters, digits, '_' or '-'"
        )
    if account.kind == "personal" and username != account.owner:
        raise LedgerError(
            "account",
            "a personal account is its owner's alone; share credits through a project account",
        )
    return add_member(session, account, username, role)


def accounts_of(session: Session, username: str) -> list[tuple[Account, str]]:
    """The accounts a person may charge, personal first, with their role in each."""
    rows = session.execute(
        select(Account, Membership.role)
        .join(Membership, Membership.account_id == Account.id)
        .where(Membership.username == username)
        .order_by((Account.kind != "personal"), Account.name)
    ).all()
    return [(account, role) for account, role in rows]


def record_transaction(
    session: Session,
    account_id: int,
    kind: str,
    amount_mc: int,
    actor: str,
    reason: str,
    idempotency_key: str | None = None,
) -> Transaction | None:
    """Append a top-up, adjustment or refund and move the balance by it.

    Returns None when ``idempotency_key`` was already used: a retried request moves no money.
    """
    if kind not in TRANSACTION_KINDS:
        raise LedgerError("kind", f"must be one of {', '.join(TRANSACTION_KINDS)}")
    if isinstance(amount_mc, bool) or not isinstance(amount_mc, int):
        raise LedgerError("amount", "must be a whole number of milli-credits")
    if kind in ("topup", "refund") and amount_mc <= 0:
        raise LedgerError("amount", f"a {kind} must be more than 0")
    if amount_mc == 0:
        raise LedgerError("amount", "an adjustment of 0 changes nothing")
    if abs(amount_mc) > MAX_TRANSACTION_MC:
        raise LedgerError(
            "amount", f"at most {format_credits(MAX_TRANSACTION_MC)} credits in one transaction"
        )
    reason = (reason or "").strip()
    if not reason:
        raise LedgerError("reason", "say why, for the audit trail")
    if len(reason) > 500:
        raise LedgerError("reason", "at most 500 characters")
    if session.get(Account, account_id) is None:
        raise LedgerError("account", f"no account with id {account_id}")
    values = dict(
        account_id=account_id,
        kind=kind,
        amount_mc=amount_mc,
        actor=actor,
        reason=reason,
        created_at=now(),
        idempotency_key=idempotency_key,
    )
    statement = insert_for(session)(Transaction).values(**values)
    if idempotency_key is not None:
        statement = statement.on_conflict_do_nothing(index_elements=["idempotency_key"])
    inserted = session.execute(statement.returning(Transaction.id)).scalar()
    if inserted is None:
        return None
    balance_change = Account.balance_mc + amount_mc
    values_to_set = {"balance_mc": balance_change}
    if amount_mc > 0:
        # Warnings count down from what was available right after the latest money came in.
        values_to_set["reference_mc"] = balance_change + Account.credit_limit_mc
    session.execute(update(Account).where(Account.id == account_id).values(**values_to_set))
    return session.get(Transaction, inserted)


def add_charge(
    session: Session,
    account_id: int,
    username: str,
    cluster: str,
    partition: str,
    job_id: str,
    interval: tuple[int, int],
    cpus: int,
    amount_mc: int,
    idempotency_key: str,
) -> bool:
    """Book one closed charge; False when its key was already booked (nothing changes)."""
    start, end = interval
    statement = (
        insert_for(session)(Charge)
        .values(
            idempotency_key=idempotency_key,
            account_id=account_id,
            username=username,
            cluster=cluster,
            partition=partition,
            job_id=job_id,
            job_name="",
            job_start=start,
            interval_start=start,
            interval_end=end,
            cpus=cpus,
            gpus=0,
            mem_mb=0,
            cpu_seconds=cpus * (end - start),
            gpu_seconds=0,
            mem_mb_seconds=0,
            amount_mc=amount_mc,
            closed=True,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Charge.id)
    )
    if session.execute(statement).scalar() is None:
        return False
    session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(balance_mc=Account.balance_mc - amount_mc)
    )
    return True


def audited_balance_mc(session: Session, account_id: int) -> int:
    """The balance recomputed from the rows, for checks against ``Account.balance_mc``."""
    credited = session.scalar(
        select(func.coalesce(func.sum(Transaction.amount_mc), 0)).where(
            Transaction.account_id == account_id
        )
    )
    charged = session.scalar(
        select(func.coalesce(func.sum(Charge.amount_mc), 0)).where(Charge.account_id == account_id)
    )
    return int(credited) - int(charged)
