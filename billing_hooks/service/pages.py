"""The billing pages: My usage (balance, running costs, bills, statements) and the admin page."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from tornado import web

from billing_hooks import charts, reports, statements
from billing_hooks.db import read_only_sessions
from billing_hooks.enforce import AccountSnapshot, percent_left, release_if_covered
from billing_hooks.ledger import (
    LedgerError,
    NewAccount,
    add_shared_member,
    create_account,
    record_transaction,
)
from billing_hooks.models import Account, Membership
from billing_hooks.service.access import account_for, visible_accounts
from billing_hooks.service.api import amount_from, sync_slurm
from billing_hooks.service.base import BaseHandler, Refused, refused_from
from billing_hooks.service.people import ensure_person
from billing_hooks.service.query import month_of, usage_query
from centre.pricing import format_credits

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
)
CHART_DAYS = 30


def when(moment: int | None) -> str:
    if not moment:
        return ""
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def hours(value) -> str:
    return f"{Decimal(value):.4f}"


class PageHandler(BaseHandler):
    templates: Environment = TEMPLATES

    def render_page(self, name: str, **values) -> None:
        flashes = []
        if self.get_argument("done", ""):
            flashes.append(("success", self.get_argument("done")[:300]))
        if self.get_argument("error", ""):
            flashes.append(("danger", self.get_argument("error")[:300]))
        html = self.templates.get_template(name).render(
            prefix=self.ctx.prefix,
            hub_prefix=self.ctx.hub_prefix,
            viewer=self.viewer,
            currency=self.ctx.billing.currency,
            credits=format_credits,
            when=when,
            hours=hours,
            flashes=flashes,
            xsrf=self.xsrf_token.decode(),
            **values,
        )
        self.finish(html)

    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        message = getattr(error, "message", None) or getattr(error, "log_message", None) or ""
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}: {message or self._reason}\n")


class UsagePage(PageHandler):
    @web.authenticated
    async def get(self) -> None:
        await ensure_person(self.ctx, self.viewer.name)
        month = month_of(self)
        # Read-only: the page only reads, and must not queue behind a metering cycle.
        with read_only_sessions(self.ctx.sessions)() as session:
            accounts = visible_accounts(session, self.viewer)
            if not accounts:
                return self.render_page("usage.html", page="usage", accounts=[])
            chosen = self.get_argument("account", accounts[0][0].name)
            try:
                account, role = account_for(session, self.viewer, chosen)
            except Exception as e:
                raise refused_from(e) from None
            own_only = role == "member" and account.kind != "personal"
            username = self.viewer.name if own_only else None
            lines = statements.job_lines(session, account.id, month)
            if own_only:
                lines = [line for line in lines if line.username == self.viewer.name]
            running = reports.running_jobs(session, [account.id], username)
            now = int(dt.datetime.now(dt.UTC).timestamp())
            start = now - CHART_DAYS * 86400
            spend = reports.daily_spend(session, [account.id], start, now + 1, username)
        snapshot = AccountSnapshot(
            account.id, account.name, account.available_mc, account.reference_mc, (), ()
        )
        self.render_page(
            "usage.html",
            page="usage",
            accounts=accounts,
            account=account,
            month=month,
            lines=lines,
            month_total_mc=sum(line.amount_mc for line in lines),
            running=running,
            percent_left=f"{percent_left(snapshot):.0f}%",
            chart_json=charts.daily_spend_figure(spend, start, now + 1, self.ctx.billing.currency),
            chart_days=CHART_DAYS,
            running_api=f"{self.ctx.prefix}api/jobs/running",
            account_api=f"{self.ctx.prefix}api/accounts/{quote(account.name)}",
            refresh_seconds=max(5, min(60, int(self.ctx.billing.meter_interval))),
        )


class StatementDownload(PageHandler):
    @web.authenticated
    async def get(self, extension: str) -> None:
        month = month_of(self)
        name = self.get_argument("account", "")
        # A statement of thousands of jobs takes seconds to lay out: off the event loop.
        body = await asyncio.to_thread(self._statement, name, month, extension)
        filename = f"corehour-{name}-{month}.{extension}"
        self.set_header(
            "Content-Type", "text/csv; charset=utf-8" if extension == "csv" else "application/pdf"
        )
        self.set_header("Content-Disposition", f'attachment; filename="{filename}"')
        self.finish(body)

    def _statement(self, name: str, month: str, extension: str) -> bytes | str:
        with self.ctx.sessions.begin() as session:
            try:
                account, role = account_for(session, self.viewer, name)
            except Exception as e:
                raise refused_from(e) from None
            if role == "member" and account.kind != "personal":
                raise Refused(403, "statements of a shared account are for its managers")
            data = statements.build_statement(session, account, month)
        return statements.render_csv(data) if extension == "csv" else statements.render_pdf(data)


class AdminPage(PageHandler):
    @web.authenticated
    def get(self) -> None:
        if not self.viewer.admin:
            raise Refused(403, "the billing admin page is for admins")
        start, end, group_by = usage_query(self)
        with self.ctx.sessions() as session:
            accounts = list(session.scalars(select(Account).order_by(Account.name)))
            members: dict[int, list[Membership]] = {}
            for m in session.scalars(select(Membership).order_by(Membership.username)):
                members.setdefault(m.account_id, []).append(m)
            usage = reports.usage(session, start, end, group_by)
            audit = reports.audit_trail(session, 200)
        self.render_page(
            "admin.html",
            page="admin",
            accounts=accounts,
            members=members,
            tiers=list(self.ctx.billing.tiers),
            usage=usage,
            audit=audit,
            group_by=group_by,
            groupings=list(reports.GROUPINGS),
            period_from=when(start)[:10],
            period_to=when(end - 86400)[:10],
            chart_json=charts.usage_figure(usage, group_by, self.ctx.billing.currency),
        )


class AdminUsageCsv(PageHandler):
    @web.authenticated
    def get(self) -> None:
        if not self.viewer.admin:
            raise Refused(403, "usage exports are for admins")
        start, end, group_by = usage_query(self)
        with self.ctx.sessions() as session:
            rows = reports.usage(session, start, end, group_by)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([group_by, "jobs", "core_hours", "gpu_hours", "amount"])
        for r in rows:
            writer.writerow(
                [
                    statements.csv_safe(r.key),
                    r.jobs,
                    hours(Decimal(r.cpu_seconds) / 3600),
                    hours(Decimal(r.gpu_seconds) / 3600),
                    format_credits(r.amount_mc),
                ]
            )
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header(
            "Content-Disposition",
            f'attachment; filename="corehour-usage-{when(start)[:10]}-{when(end - 86400)[:10]}.csv"',
        )
        self.finish(out.getvalue())


class AdminAction(PageHandler):
    """Form posts from the admin page; each redirects back with what happened."""

    def back(self, **message: str) -> None:
        self.redirect(f"{self.ctx.prefix}admin?{urlencode(message)}")

    @web.authenticated
    async def post(self, action: str) -> None:
        if not self.viewer.admin:
            raise Refused(403, "only admins can change accounts")
        form = {k: self.get_body_argument(k, "") for k in self.request.body_arguments}
        try:
            done = await self._do(action, form)
        except (LedgerError, Refused) as e:
            field = getattr(e, "field", None)
            message = getattr(e, "message", str(e))
            return self.back(error=f"{field}: {message}" if field else message)
        self.back(done=done)

    async def _do(self, action: str, form: dict[str, str]) -> str:
        name = form.get("account", "")
        if action == "transactions":
            with self.ctx.sessions.begin() as session:
                account = session.scalar(select(Account).where(Account.name == name))
                if account is None:
                    raise LedgerError("account", f"no account named '{name[:64]}'")
                amount = amount_from(form.get("amount", ""))
                record_transaction(
                    session,
                    account.id,
                    form.get("kind", "topup"),
                    amount,
                    self.viewer.name,
                    form.get("reason", ""),
                )
            await release_if_covered(self.ctx.sessions, self.ctx.slurm, name)
            return f"Recorded a {form.get('kind', 'topup')} of {format_credits(amount)} on {name}."
        if action == "accounts":
            tier = form.get("tier") or self.ctx.billing.default_tier
            if tier not in self.ctx.billing.tiers:
                raise LedgerError("tier", f"must be one of {', '.join(self.ctx.billing.tiers)}")
            spec = NewAccount(
                name=form.get("name", "").strip(),
                kind=form.get("kind", "project"),
                owner=form.get("owner", "").strip(),
                tier=tier,
                price_multiplier=self.ctx.billing.tiers[tier],
                credit_limit_mc=amount_from(form.get("credit_limit") or "0", "credit_limit"),
            )
            if not spec.owner:
                raise LedgerError("owner", "name the person who manages the account")
            with self.ctx.sessions.begin() as session:
                create_account(session, spec, actor=self.viewer.name)
            await sync_slurm(self, spec.name, (spec.owner,))
            return f"Created account {spec.name}."
        if action == "members":
            username = form.get("username", "").strip()
            if not username:
                raise LedgerError("username", "is required")
            with self.ctx.sessions.begin() as session:
                account, _ = account_for(session, self.viewer, name, need="manager")
                add_shared_member(session, account, username, form.get("role", "member"))
            await sync_slurm(self, name, (username,))
            return f"Added {username} to {name}."
        raise Refused(404, "no such action")
