"""Who may see what: a person their own accounts, a manager the account's members, an admin all.

Pure rules over the ledger rows, so the API and the pages decide the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_hooks.models import Account, Membership


@dataclass(frozen=True)
class Viewer:
    name: str
    admin: bool


class Forbidden(Exception):
    pass


class NotFound(Exception):
    pass


def role_in(session: Session, viewer: Viewer, account: Account) -> str | None:
    return session.scalar(
        select(Membership.role).where(
            Membership.account_id == account.id, Membership.username == viewer.name
        )
    )


def account_for(
    session: Session, viewer: Viewer, name: str, need: str = "member"
) -> tuple[Account, str]:
    """The account and the viewer's standing in it ("admin", "manager" or "member").

    An account the viewer may not read is reported as not found, so names of other
    people's accounts cannot be probed; one they may read but not manage is forbidden.
    """
    account = session.scalar(select(Account).where(Account.name == name))
    if account is None:
        raise NotFound(f"no account named '{name[:64]}'")
    if viewer.admin:
        return account, "admin"
    role = role_in(session, viewer, account)
    if role is None:
        raise Forbidden(f"you are not a member of account '{name[:64]}'")
    if need == "manager" and role != "manager":
        raise Forbidden(f"only the managers of '{name}' and admins can do this")
    if need == "admin":
        raise Forbidden("only admins can do this")
    return account, role


def visible_accounts(session: Session, viewer: Viewer) -> list[tuple[Account, str]]:
    if viewer.admin:
        return [(a, "admin") for a in session.scalars(select(Account).order_by(Account.name))]
    rows = session.execute(
        select(Account, Membership.role)
        .join(Membership, Membership.account_id == Account.id)
        .where(Membership.username == viewer.name)
        .order_by(Account.kind != "personal", Account.name)
    )
    return [(a, r) for a, r in rows]
