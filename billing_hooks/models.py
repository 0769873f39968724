"""The ledger: accounts, who may charge them, prices, charges and money movements.

Money is integer milli-credits (``*_mc``).  Times are integer epoch seconds in UTC, as
Slurm reports them, so interval arithmetic is exact and identical on SQLite and PostgreSQL.

``Account.balance_mc`` is the sum of the account's transactions minus its charges.  It is
kept with relative updates (``balance = balance + delta``) in the same database transaction
as the row that causes them, so concurrent writers can never lose an update.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from centre.pricing import now

ACCOUNT_KINDS = ("personal", "project", "course")
ACCOUNT_STATUSES = ("active", "suspended", "closed")
ROLES = ("member", "manager")
RESOURCES = ("core_hour", "gpu_hour", "gb_mem_hour")
TRANSACTION_KINDS = ("topup", "adjustment", "refund")


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Also the Slurm account name, so sacct's "account" field finds the ledger account.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    tier: Mapped[str] = mapped_column(String(32), default="standard")
    price_multiplier: Mapped[Decimal] = mapped_column(Numeric(10, 4), default=Decimal(1))
    credit_limit_mc: Mapped[int] = mapped_column(BigInteger, default=0)
    balance_mc: Mapped[int] = mapped_column(BigInteger, default=0)
    # Balance plus credit right after the latest money came in: warnings are percentages of it.
    reference_mc: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")
    # True while the meter holds the account in Slurm (GrpJobs=0) because it ran out.
    held_in_slurm: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)

    memberships: Mapped[list[Membership]] = relationship(back_populates="account")

    @property
    def available_mc(self) -> int:
        """What may still be spent: balance plus credit."""
        return self.balance_mc + self.credit_limit_mc


class Membership(Base):
    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("account_id", "username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    username: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16), default="member")

    account: Mapped[Account] = relationship(back_populates="memberships")


class Rate(Base):
    """A price per unit-hour; loaded from the site file, kept so bills can be explained."""

    __tablename__ = "rate"
    __table_args__ = (UniqueConstraint("cluster", "partition", "resource", "valid_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster: Mapped[str] = mapped_column(String(64))
    partition: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(16))
    price: Mapped[Decimal] = mapped_column(Numeric(20, 6))
    valid_from: Mapped[int] = mapped_column(BigInteger)
    valid_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class Charge(Base):
    """The part of one job inside one hour bucket; the open bucket is updated in place."""

    __tablename__ = "charge"
    __table_args__ = (
        Index("ix_charge_account_start", "account_id", "interval_start"),
        Index("ix_charge_job", "cluster", "job_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    username: Mapped[str] = mapped_column(String(64), index=True)
    cluster: Mapped[str] = mapped_column(String(64))
    partition: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(String(32))
    job_name: Mapped[str] = mapped_column(String(200), default="")
    job_start: Mapped[int] = mapped_column(BigInteger)
    interval_start: Mapped[int] = mapped_column(BigInteger)
    interval_end: Mapped[int] = mapped_column(BigInteger)
    cpus: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    mem_mb: Mapped[int] = mapped_column(BigInteger, default=0)
    cpu_seconds: Mapped[int] = mapped_column(BigInteger)
    gpu_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    mem_mb_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_mc: Mapped[int] = mapped_column(BigInteger)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)


class MeteredJob(Base):
    """One row per job the meter has seen: where its charging stands, for restarts."""

    __tablename__ = "metered_job"
    __table_args__ = (
        UniqueConstraint("cluster", "job_id", "job_start"),
        # One account's (one person's) running jobs: reports.running_jobs, migration 0006.
        Index("ix_metered_job_account_running", "account_id", "finished", "username"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    cluster: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(String(32))
    job_start: Mapped[int] = mapped_column(BigInteger)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    username: Mapped[str] = mapped_column(String(64))
    partition: Mapped[str] = mapped_column(String(64))
    # Where the open charge row starts, and what it holds now: the next cycle rewrites it.
    open_from: Mapped[int] = mapped_column(BigInteger)
    open_amount_mc: Mapped[int] = mapped_column(BigInteger, default=0)
    charged_until: Mapped[int] = mapped_column(BigInteger)
    finished: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class Transaction(Base):
    """Money in or out by a person: append-only, with who did it and why."""

    __tablename__ = "transaction"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_mc: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    idempotency_key: Mapped[str | None] = mapped_column(String(160), unique=True, nullable=True)


class Statement(Base):
    """A month's totals for an account, written when the month's statement is produced."""

    __tablename__ = "statement"
    __table_args__ = (UniqueConstraint("account_id", "month"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"))
    month: Mapped[str] = mapped_column(String(7))
    jobs: Mapped[int] = mapped_column(Integer)
    cpu_seconds: Mapped[int] = mapped_column(BigInteger)
    gpu_seconds: Mapped[int] = mapped_column(BigInteger)
    charges_mc: Mapped[int] = mapped_column(BigInteger)
    credits_mc: Mapped[int] = mapped_column(BigInteger)
    generated_at: Mapped[int] = mapped_column(BigInteger, default=now)


class MeterCursor(Base):
    """Per cluster: the end of the last sacct window read completely."""

    __tablename__ = "meter_cursor"

    cluster: Mapped[str] = mapped_column(String(64), primary_key=True)
    sacct_until: Mapped[int] = mapped_column(BigInteger)


class Notice(Base):
    """Something a person must be told on their next page: a warning or why a server stopped."""

    __tablename__ = "notice"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    dismissed: Mapped[bool] = mapped_column(Boolean, default=False)
    dedupe_key: Mapped[str | None] = mapped_column(String(160), unique=True, nullable=True)


@event.listens_for(Session, "before_flush")
def _transactions_are_append_only(session: Session, _context, _instances) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, Transaction):
            raise PermissionError(
                "transactions are append-only: record a correcting adjustment instead"
            )


class Course(Base):
    """A class on a shared budget: its settings, next to the course account that pays.

    The settings are checked by ``extensions/courses/settings.py`` before they get here; the
    JupyterHub groups and the Slurm account are named from the slug.
    """

    __tablename__ = "course"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id"), unique=True)
    term_start: Mapped[dt.date] = mapped_column(Date)
    term_end: Mapped[dt.date] = mapped_column(Date)
    # What one student may spend of the course's money unless their enrolment says otherwise.
    student_cap_mc: Mapped[int] = mapped_column(BigInteger)
    default_profile: Mapped[str] = mapped_column(String(64))
    profiles: Mapped[list] = mapped_column(JSON)
    images: Mapped[list] = mapped_column(JSON)
    materials: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)

    account: Mapped[Account] = relationship()
    enrolments: Mapped[list[Enrolment]] = relationship(back_populates="course")


class Enrolment(Base):
    """One person in one course, as a student, a TA or an instructor.

    Two things can give a role: a class list (an upload or the API: ``listed_role``) and the
    identity provider's groups at sign-in (``sso_role``).  ``role``, which everything else
    reads, is the higher of the two, so either can be taken back without undoing the other.
    """

    __tablename__ = "enrolment"
    __table_args__ = (UniqueConstraint("course_id", "username"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"))
    username: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    # A cap set for this student alone; None means the course's student_cap_mc.
    cap_mc: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Where the enrolment came from first: "csv", "api" or "sso" (the identity provider's groups).
    source: Mapped[str] = mapped_column(String(8))
    # The role the class list gives; None when no list names this person.
    listed_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # The role the provider's groups gave at the last sign-in; None when they give none.
    sso_role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)

    course: Mapped[Course] = relationship(back_populates="enrolments")


class Notification(Base):
    """One thing a person is told (extensions/notify): kept for the in-portal list, and its
    mail's progress.  ``dedupe_key`` makes each event of each job one row however often it
    is reported; a job's end waits (``state`` "waiting") until its bill is settled."""

    __tablename__ = "notification"
    __table_args__ = (Index("ix_notification_job", "cluster", "job_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    event: Mapped[str] = mapped_column(String(32))
    cluster: Mapped[str] = mapped_column(String(64), default="")
    job_id: Mapped[str] = mapped_column(String(32), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    # waiting (for its facts), pending (to be mailed), sent, failed, or kept (no mail wanted)
    state: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now)
    read: Mapped[bool] = mapped_column(Boolean, default=False)
    # What the event brought that Slurm's accounting does not keep (the output's path).
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)
