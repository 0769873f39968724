"""Who holds which account name: the provider's stable subject → Unix name, in SQLite.

One row per (issuer, subject), and each name belongs to one row.  The first sign-in of a
subject takes the name that ``extensions/courses/identity.py`` makes from its username
claim, unless someone else already holds that name or the sign-in rules refuse it
(``extensions/sso/names.py``); later sign-ins keep the name even if the claim changes.  An
admin links a subject to an existing account with :meth:`IdentityStore.assign` (the command
``python -m extensions.sso.assign``).  The file lives in the hub's state dir, so hub
restarts keep it; it is not the hub's own database because ``jupyterhub upgrade-db`` and a
reset of that database must never hand a name to a second person.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import BigInteger, String, UniqueConstraint, create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from extensions.courses.identity import IdentityError, claim_name, unix_name


class _Base(DeclarativeBase):
    pass


class Identity(_Base):
    """A person at one provider and the account name they were given."""

    __tablename__ = "sso_identity"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    username: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=lambda: int(time.time()))

    def __repr__(self) -> str:
        return f"<Identity {self.username} = {self.issuer} {self.subject}>"


def _holder(issuer: str, subject: str) -> str:
    # One string per person across providers: a space cannot occur in an issuer URL.
    return f"{issuer} {subject}"


def _no_check(name: str, first_sign_in: bool) -> None:
    return None


class IdentityStore:
    def __init__(self, url: str):
        self.engine = create_engine(url)
        _Base.metadata.create_all(self.engine)

    def name_for(
        self,
        issuer: str,
        subject: str,
        claim: object,
        check: Callable[[str, bool], None] = _no_check,
        *,
        _retry: bool = True,
    ) -> str:
        """The account name of ``subject``: the one it holds, or a new one from ``claim``.

        ``check(name, first_sign_in)`` raises :class:`IdentityError` for a name the site
        does not hand out; it runs on held names too, and before a new name is recorded, so
        a refused sign-in holds nothing.  Raises :class:`IdentityError` also for a claim the
        rule refuses and for a name someone else holds.
        """
        with Session(self.engine) as session:
            held = session.scalar(
                select(Identity.username).where(
                    Identity.issuer == issuer, Identity.subject == subject
                )
            )
            if held is not None:
                check(held, False)
                return held
            wanted = unix_name(claim)
            owner = session.scalar(select(Identity).where(Identity.username == wanted))
            owners = {wanted: _holder(owner.issuer, owner.subject)} if owner else {}
            name = claim_name(_holder(issuer, subject), claim, owners, held={})
            check(name, True)
            session.add(Identity(issuer=issuer, subject=subject, username=name))
            try:
                session.commit()
                return name
            except IntegrityError:
                if not _retry:
                    raise
                session.rollback()
        # A first sign-in running at the same moment took the name: its row now decides.
        return self.name_for(issuer, subject, claim, check, _retry=False)

    def assign(self, issuer: str, subject: str, username: str) -> str | None:
        """Link ``subject`` to the account ``username`` on purpose (an admin's act); the name
        it held before, if any.  Raises :class:`IdentityError` when another subject holds
        ``username``.  The sign-in rules still apply at each sign-in."""
        with Session(self.engine) as session:
            owner = session.scalar(select(Identity).where(Identity.username == username))
            if owner is not None and (owner.issuer, owner.subject) != (issuer, subject):
                raise IdentityError(
                    f"{username!r} is already held by subject {owner.subject!r} of {owner.issuer}"
                )
            row = session.scalar(
                select(Identity).where(Identity.issuer == issuer, Identity.subject == subject)
            )
            before = row.username if row else None
            if row is None:
                session.add(Identity(issuer=issuer, subject=subject, username=username))
            else:
                row.username = username
            session.commit()
            return before
