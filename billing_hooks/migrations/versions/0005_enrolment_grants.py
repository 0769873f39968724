"""enrolments: keep the class list's role and the provider's role apart

A role the identity provider's groups gave must go when the group goes, and a class list
must not be undone by it.  ``role`` stays the one everything reads (the higher of the two).
Existing rows are filled from their source; a listed enrolment that a sign-in had already
raised keeps the raised role as its listed one, because 0004 kept no record of the list's.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("listed_role", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("sso_role", sa.String(length=16), nullable=True))
    op.execute("UPDATE enrolment SET listed_role = role WHERE source <> 'sso'")
    op.execute("UPDATE enrolment SET sso_role = role WHERE source = 'sso'")


def downgrade() -> None:
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.drop_column("sso_role")
        batch_op.drop_column("listed_role")
