"""Who holds which account name: the provider's stable subject → Unix name, in SQLite.

One row per (issuer, subject), and each name belongs to one row.  The first sign-in of a
subject takes the name that ``extensions/courses/identity.py`` makes from its username
claim, unless someone else already holds that name; later sign-ins keep the name even if
the claim changes.  The file lives in the hub's state dir, so hub restarts keep it; it is
not the hub's own database because ``jupyterhub upgrade-db`` and a reset of that database
must never hand a name to a second person.
"""

from __future__ import annotations

import time

from sqlalchemy import BigInteger, String, UniqueConstraint, create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from extensions.courses.identity import claim_name, unix_name


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


class IdentityStore:
    def __init__(self, url: str):
        self.engine = create_engine(url)
        _Base.metadata.create_all(self.engine)

    def name_for(self, issuer: str, subject: str, claim: object, *, _retry: bool = True) -> str:
        """The account name of ``subject``: the one it holds, or a new one from ``claim``.

        Raises :class:`IdentityError` for a claim the rule refuses and for a name someone
        else holds.
        """
        with Session(self.engine) as session:
            held = session.scalar(
                select(Identity.username).where(
                    Identity.issuer == issuer, Identity.subject == subject
                )
            )
            if held is not None:
                return held
            wanted = unix_name(claim)
            owner = session.scalar(select(Identity).where(Identity.username == wanted))
            owners = {wanted: _holder(owner.issuer, owner.subject)} if owner else {}
            name = claim_name(_holder(issuer, subject), claim, owners, held={})
            session.add(Identity(issuer=issuer, subject=subject, username=name))
            try:
                session.commit()
                return name
            except IntegrityError:
                if not _retry:
                    raise
                session.rollback()
        # A first sign-in running at the same moment took the name: its row now decides.
        return self.name_for(issuer, subject, claim, _retry=False)
