"""What the hub asks of the ledger, answered by the billing service.

The hub keeps no ledger code and no ledger connection of its own: its spawner and its pages
ask these routes (``hub-reads/<name>`` below the service's prefix) through
``billing_hooks/ledger_client.py``.  They answer a person's accounts (opening the personal
one on a first start), what the hub's home page shows of them, and what a plugin adds
(courses: the course a start is charged to).

Only the hub may call them: it gives this service a token in ``COREHOUR_HUB_READS_TOKEN``
and sends it with every call.  A request without it is refused before its body is parsed,
whoever sends it, so no person can read another's accounts through here.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from tornado import web

from billing_hooks.gate import AccountChoice
from billing_hooks.ledger import accounts_of, personal_account_name, site_personal_account
from billing_hooks.models import Account, Enrolment, Notice, Notification, now
from centre.names import ACCOUNT_NAME, UNIX_NAME
from centre.pricing import format_credits
from centre.site import Billing

log = logging.getLogger("corehour.billing")


# A read names a person and perhaps an account: a few hundred bytes at most.
MAX_BODY = 1024
# Notices on the hub's home page: the last few days' undismissed ones.
NOTICE_DAYS = 3
# The phone view's list of what happened to the person's jobs.
NOTIFICATIONS_SHOWN = 10
NOTICES_SHOWN = 5


# The reads run here, not on the service's event loop: a ledger that hangs holds these
# threads until their engines' timeouts (ledger_calls.TIMEOUT_S), never the service's pages.
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hub-reads")


class BadRead(ValueError):
    """A read whose body does not say what it must; the message names the field."""


def username_in(body: dict) -> str:
    return _name_in(body, "username", UNIX_NAME)


def account_in(body: dict) -> str:
    return _name_in(body, "account", ACCOUNT_NAME)


def _name_in(body: dict, field: str, pattern) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise BadRead(f"{field}: expected a name matching {pattern.pattern}")
    return value


class HubReadHandler(web.RequestHandler):
    """POST a JSON object, get the read's JSON answer; 403 without the hub's token."""

    def initialize(self, token: str, read: Callable[[dict], object]) -> None:
        self.token, self.read = token, read

    def check_xsrf_cookie(self) -> None:
        # Called with the hub's token, never with a person's cookie; the token is checked
        # in post() before anything else.
        return

    async def post(self) -> None:
        sent = self.request.headers.get("Authorization", "").encode()
        if not self.token or not hmac.compare_digest(sent, f"token {self.token}".encode()):
            raise web.HTTPError(403, "only the hub may call hub-reads")
        if len(self.request.body) > MAX_BODY:
            raise web.HTTPError(413, f"a read's body is at most {MAX_BODY} bytes")
        try:
            body = json.loads(self.request.body)
            if not isinstance(body, dict):
                raise BadRead("the body must be a JSON object")
            answer = await asyncio.wrap_future(_pool.submit(self.read, body))
        except (BadRead, json.JSONDecodeError, UnicodeDecodeError) as e:
            self._answer(400, {"message": str(e)})
            return
        except LookupError as e:
            self._answer(404, {"message": str(e.args[0] if e.args else e)})
            return
        except SQLAlchemyError as e:
            log.error("hub-reads %s: the ledger failed: %s", self.request.path, e)
            self._answer(503, {"message": "the billing ledger does not answer"})
            return
        self._answer(200, {"answer": answer})

    def _answer(self, status: int, data: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


class LedgerReads:
    """The service's answers to the hub: a person's accounts and their home page's values."""

    def __init__(
        self,
        billing: Billing,
        sessions: sessionmaker[Session],
        reads: sessionmaker[Session],
    ):
        self.billing = billing
        self.sessions = sessions
        # Most starts only read: they never wait for SQLite's write lock.
        self.reads = reads

    def accounts(self, body: dict) -> list[dict]:
        """The accounts the person may charge, personal first; opens the personal one."""
        username = username_in(body)
        with self.reads() as session:
            accounts = accounts_of(session, username)
            if any(a.name == personal_account_name(username) for a, _role in accounts):
                return [_choice(account).to_json() for account, _role in accounts]
        with self.sessions.begin() as session:
            site_personal_account(session, username, self.billing)
            return [_choice(a).to_json() for a, _role in accounts_of(session, username)]

    def page(self, body: dict) -> dict:
        """The person's accounts, recent notices and whether they are in a course."""
        username = username_in(body)
        with self.reads() as session:
            accounts = accounts_of(session, username)
            notices = session.scalars(
                select(Notice)
                .where(
                    Notice.username == username,
                    Notice.dismissed.is_(False),
                    Notice.created_at >= now() - NOTICE_DAYS * 86400,
                )
                .order_by(Notice.id.desc())
                .limit(NOTICES_SHOWN)
            ).all()
            in_courses = session.scalar(
                select(Enrolment.id).where(Enrolment.username == username).limit(1)
            )
            return {
                "in_courses": in_courses is not None,
                "accounts": [
                    {"label": a.display_name or a.name, "available": format_credits(a.available_mc)}
                    for a, _role in accounts
                ],
                "notices": [{"level": n.level, "message": n.message} for n in notices],
                "notifications": [
                    {
                        "event": n.event,
                        "subject": n.subject,
                        "cluster": n.cluster,
                        "job_id": n.job_id,
                        "created": n.created_at,
                    }
                    for n in session.scalars(
                        select(Notification)
                        .where(
                            Notification.username == username,
                            Notification.state.in_(("pending", "sent", "kept", "failed")),
                        )
                        .order_by(Notification.id.desc())
                        .limit(NOTIFICATIONS_SHOWN)
                    )
                ],
            }

    def routes(self, token: str) -> list[tuple[str, type[web.RequestHandler], dict]]:
        """(path below the service's prefix, handler, its arguments) for each read."""
        return [
            read_route("accounts", token, self.accounts),
            read_route("page", token, self.page),
        ]


def read_route(
    name: str, token: str, read: Callable[[dict], object]
) -> tuple[str, type[web.RequestHandler], dict]:
    return (f"hub-reads/{name}", HubReadHandler, {"token": token, "read": read})


def _choice(account: Account) -> AccountChoice:
    return AccountChoice(
        name=account.name,
        display_name=account.display_name or account.name,
        kind=account.kind,
        available_mc=account.available_mc,
        balance_mc=account.balance_mc,
        credit_limit_mc=account.credit_limit_mc,
        multiplier=Decimal(account.price_multiplier),
        status=account.status,
    )
