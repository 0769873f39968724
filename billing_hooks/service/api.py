"""The billing REST API (see openapi.yaml next to this file)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from billing_hooks import reports, statements
from billing_hooks.db import read_only_sessions
from billing_hooks.enforce import release_if_covered
from billing_hooks.job_bill import job_bill
from billing_hooks.ledger import (
    LedgerError,
    NewAccount,
    accounts_of,
    add_shared_member,
    create_account,
    record_transaction,
)
from billing_hooks.models import Account, Membership, Notice
from billing_hooks.service.access import Forbidden, account_for, visible_accounts
from billing_hooks.service.base import ApiHandler, Refused, refused_from
from billing_hooks.service.people import ensure_person
from billing_hooks.service.query import month_of, usage_query
from billing_hooks.slurm_accounts import SacctmgrError, Wanted
from billing_hooks.statements import hours
from centre.pricing import format_credits, parse_credits

OPENAPI = Path(__file__).with_name("openapi.yaml")


def account_json(account: Account, role: str) -> dict:
    return {
        "name": account.name,
        "display_name": account.display_name,
        "kind": account.kind,
        "owner": account.owner,
        "role": role,
        "status": account.status,
        "tier": account.tier,
        "balance": format_credits(account.balance_mc),
        "credit_limit": format_credits(account.credit_limit_mc),
        "available": format_credits(account.available_mc),
        "balance_mc": account.balance_mc,
        "credit_limit_mc": account.credit_limit_mc,
        "available_mc": account.available_mc,
    }


def iso(moment: int | None) -> str | None:
    if moment is None:
        return None
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def amount_from(value: object, field: str = "amount") -> int:
    """Credits from JSON (a string like "12.5" or a number) as milli-credits."""
    if isinstance(value, bool) or value is None:
        raise LedgerError(field, 'give an amount of credits, e.g. "25" or "12.5"')
    if isinstance(value, float) and not math.isfinite(value):
        raise LedgerError(field, "must be a finite number")
    if not isinstance(value, (int, float, str)):
        raise LedgerError(field, 'give an amount of credits, e.g. "25" or "12.5"')
    try:
        return parse_credits(repr(value) if isinstance(value, float) else str(value))
    except ValueError as e:
        raise LedgerError(field, str(e)) from None


def text_field(data: dict, field: str, limit: int = 500, required: bool = True) -> str:
    value = data.get(field, "")
    if not isinstance(value, str):
        raise LedgerError(field, "must be text")
    value = value.strip()
    if required and not value:
        raise LedgerError(field, "is required")
    if len(value) > limit:
        raise LedgerError(field, f"at most {limit} characters")
    return value


class MeHandler(ApiHandler):
    async def get(self) -> None:
        await ensure_person(self.ctx, self.viewer.name)
        with self.ctx.sessions() as session:
            accounts = accounts_of(session, self.viewer.name)
            notices = session.scalars(
                select(Notice)
                .where(Notice.username == self.viewer.name, Notice.dismissed.is_(False))
                .order_by(Notice.id.desc())
                .limit(20)
            ).all()
            self.send(
                {
                    "name": self.viewer.name,
                    "admin": self.viewer.admin,
                    "accounts": [account_json(a, r) for a, r in accounts],
                    "notices": [
                        {
                            "id": n.id,
                            "level": n.level,
                            "message": n.message,
                            "created": iso(n.created_at),
                        }
                        for n in notices
                    ],
                }
            )


class AccountsHandler(ApiHandler):
    def get(self) -> None:
        with self.ctx.sessions() as session:
            self.send(
                {
                    "accounts": [
                        account_json(a, r) for a, r in visible_accounts(session, self.viewer)
                    ]
                }
            )

    async def post(self) -> None:
        if not self.viewer.admin:
            raise Refused(403, "only admins can create accounts")
        data = self.body()
        try:
            spec = NewAccount(
                name=text_field(data, "name", 63),
                kind=text_field(data, "kind", 16),
                owner=text_field(data, "owner", 64),
                display_name=text_field(data, "display_name", 200, required=False),
                tier=self._tier(data),
                price_multiplier=self.ctx.billing.tiers[self._tier(data)],
                credit_limit_mc=amount_from(data.get("credit_limit", "0"), "credit_limit"),
            )
            with self.ctx.sessions.begin() as session:
                account = create_account(session, spec, actor=self.viewer.name)
                body = account_json(account, "admin")
        except LedgerError as e:
            raise refused_from(e) from None
        await sync_slurm(self, spec.name, (spec.owner,))
        self.send(body, 201)

    def _tier(self, data: dict) -> str:
        tier = data.get("tier", self.ctx.billing.default_tier)
        if tier not in self.ctx.billing.tiers:
            raise LedgerError("tier", f"must be one of {', '.join(self.ctx.billing.tiers)}")
        return tier


class AccountHandler(ApiHandler):
    def get(self, name: str) -> None:
        with self.ctx.sessions() as session:
            try:
                account, role = account_for(session, self.viewer, name)
            except Exception as e:
                raise refused_from(e) from None
            self.send(account_json(account, role))


class MembersHandler(ApiHandler):
    def get(self, name: str) -> None:
        with self.ctx.sessions() as session:
            try:
                account, _role = account_for(session, self.viewer, name, need="manager")
            except Exception as e:
                raise refused_from(e) from None
            members = session.scalars(
                select(Membership)
                .where(Membership.account_id == account.id)
                .order_by(Membership.username)
            )
            self.send(
                {
                    "account": name,
                    "members": [{"username": m.username, "role": m.role} for m in members],
                }
            )

    async def post(self, name: str) -> None:
        with self.ctx.sessions() as session:
            try:
                account_for(session, self.viewer, name, need="manager")  # before the body
            except Exception as e:
                raise refused_from(e) from None
        data = self.body()
        try:
            username = text_field(data, "username", 64)
            role = text_field(data, "role", 16) if "role" in data else "member"
            with self.ctx.sessions.begin() as session:
                account, _ = account_for(session, self.viewer, name, need="manager")
                if account.kind == "course" and not self.viewer.admin:
                    # Its members are the course's people, each under a cap; a manager
                    # adding anyone here would let them spend the budget with no cap.
                    raise Forbidden(
                        "a course account's members are the people enrolled in the course; "
                        "enrol them on the course page, or ask an admin"
                    )
                add_shared_member(session, account, username, role)
        except Exception as e:
            raise refused_from(e) from None
        await sync_slurm(self, name, (username,))
        self.send({"account": name, "username": username, "role": role}, 201)


async def sync_slurm(handler: ApiHandler, account: str, users: tuple[str, ...]) -> None:
    try:
        await handler.ctx.slurm.sync([Wanted(account, f"corehour {account}", users)], {})
    except SacctmgrError as e:
        raise Refused(502, f"saved in the ledger, but Slurm was not updated: {e}") from None


class TransactionsHandler(ApiHandler):
    def get(self, name: str) -> None:
        with self.ctx.sessions() as session:
            try:
                account, _ = account_for(session, self.viewer, name, need="manager")
            except Exception as e:
                raise refused_from(e) from None
            rows = reports.audit_trail(session, 500, account.id)
            self.send({"account": name, "transactions": [transaction_json(t, a) for t, a in rows]})

    async def post(self, name: str) -> None:
        if not self.viewer.admin:
            raise Refused(403, "only admins can top up or adjust accounts")
        data = self.body()
        try:
            kind = text_field(data, "kind", 16) if "kind" in data else "topup"
            amount = amount_from(data.get("amount"))
            reason = text_field(data, "reason", 500)
            key = data.get("idempotency_key")
            if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 160):
                raise LedgerError("idempotency_key", "must be text of 1 to 160 characters")
            with self.ctx.sessions.begin() as session:
                account = session.scalar(select(Account).where(Account.name == name))
                if account is None:
                    raise LedgerError("account", f"no account named '{name[:64]}'")
                transaction = record_transaction(
                    session, account.id, kind, amount, self.viewer.name, reason, key
                )
                session.refresh(account)
                result = {
                    "account": account_json(account, "admin"),
                    "transaction": transaction_json(transaction, name) if transaction else None,
                    "replayed": transaction is None,
                }
        except LedgerError as e:
            raise refused_from(e) from None
        await release_if_covered(self.ctx.sessions, self.ctx.slurm, name)
        self.send(result, 201 if transaction else 200)


def transaction_json(t, account_name: str) -> dict:
    return {
        "id": t.id,
        "account": account_name,
        "kind": t.kind,
        "amount": format_credits(t.amount_mc),
        "amount_mc": t.amount_mc,
        "actor": t.actor,
        "reason": t.reason,
        "created": iso(t.created_at),
    }


class ChargesHandler(ApiHandler):
    """Per-job bills of a month; plain members of a shared account see their own jobs."""

    def get(self, name: str) -> None:
        month = month_of(self)
        with self.ctx.sessions() as session:
            try:
                account, role = account_for(session, self.viewer, name)
            except Exception as e:
                raise refused_from(e) from None
            lines = statements.job_lines(session, account.id, month)
        if role == "member" and account.kind != "personal":
            lines = [line for line in lines if line.username == self.viewer.name]
        self.send({"account": name, "month": month, "jobs": [line_json(line) for line in lines]})


def line_json(line) -> dict:
    return {
        "cluster": line.cluster,
        "partition": line.partition,
        "job_id": line.job_id,
        "job_name": line.job_name,
        "user": line.username,
        "cores": line.cpus,
        "gpus": line.gpus,
        "start": iso(line.start),
        "end": iso(line.end),
        "core_hours": str(line.core_hours),
        "gpu_hours": str(line.gpu_hours),
        "amount": format_credits(line.amount_mc),
        "amount_mc": line.amount_mc,
    }


class JobBillHandler(ApiHandler):
    """The caller's bill for one of their jobs: what the ledger has charged, and whether it
    is final (the meter settles a job's last interval at Slurm's end time)."""

    def get(self, cluster: str, job_id: str) -> None:
        with read_only_sessions(self.ctx.sessions)() as session:
            bill = job_bill(session, self.viewer.name, cluster, job_id)
        if bill is None:
            raise Refused(
                404,
                f"no charge of yours for job {job_id} on {cluster} yet: a job is charged once "
                f"it runs, within {self.ctx.site.billing.meter_interval} s",
            )
        self.send(
            {
                "cluster": cluster,
                "job_id": job_id,
                "job_name": bill.job_name,
                "account": bill.account,
                "partition": bill.partition,
                "cores": bill.cpus,
                "gpus": bill.gpus,
                "start": iso(bill.start),
                "charged_until": iso(bill.charged_until),
                "core_hours": str(hours(bill.cpu_seconds)),
                "gpu_hours": str(hours(bill.gpu_seconds)),
                "amount": format_credits(bill.amount_mc),
                "amount_mc": bill.amount_mc,
                "currency": self.ctx.site.billing.currency,
                "final": bill.final,
            }
        )


class RunningHandler(ApiHandler):
    """The caller's running jobs and their cost so far (admins: everyone's, with ?all=1)."""

    def get(self) -> None:
        # Read-only: asked every few seconds by open pages, it must not take the write lock.
        with read_only_sessions(self.ctx.sessions)() as session:
            accounts = visible_accounts(session, self.viewer)
            ids = [a.id for a, _ in accounts]
            username = (
                None if self.viewer.admin and self.get_argument("all", "") else self.viewer.name
            )
            jobs = reports.running_jobs(session, ids, username)
        self.send(
            {
                "jobs": [
                    {
                        "cluster": j.cluster,
                        "job_id": j.job_id,
                        "partition": j.partition,
                        "account": j.account,
                        "user": j.username,
                        "cores": j.cpus,
                        "gpus": j.gpus,
                        "start": iso(j.start),
                        "charged_until": iso(j.charged_until),
                        "cost": format_credits(j.cost_mc),
                        "cost_mc": j.cost_mc,
                    }
                    for j in jobs
                ]
            }
        )


class UsageHandler(ApiHandler):
    """Admins: usage in a period by account, user, cluster or partition."""

    def get(self) -> None:
        if not self.viewer.admin:
            raise Refused(403, "only admins can read usage across accounts")
        start, end, group_by = usage_query(self)
        with self.ctx.sessions() as session:
            rows = reports.usage(session, start, end, group_by)
        self.send(
            {
                "from": iso(start),
                "to": iso(end),
                "group_by": group_by,
                "rows": [
                    {
                        "key": r.key,
                        "jobs": r.jobs,
                        "core_hours": str(Decimal(r.cpu_seconds) / 3600),
                        "gpu_hours": str(Decimal(r.gpu_seconds) / 3600),
                        "amount": format_credits(r.amount_mc),
                        "amount_mc": r.amount_mc,
                    }
                    for r in rows
                ],
            }
        )


class DismissHandler(ApiHandler):
    def post(self, notice_id: str) -> None:
        if len(notice_id) > 18:  # ids are 64-bit; int() of a long one would be refused anyway
            raise Refused(404, "no such notice")
        with self.ctx.sessions.begin() as session:
            notice = session.get(Notice, int(notice_id))
            if notice is None or notice.username != self.viewer.name:
                raise Refused(404, "no such notice")
            notice.dismissed = True
        self.send({"dismissed": int(notice_id)})


class OpenApiHandler(ApiHandler):
    async def prepare(self) -> None:
        pass  # the description of the API is public

    def get(self) -> None:
        self.set_header("Content-Type", "application/yaml")
        self.finish(OPENAPI.read_text())
