"""leave room in charge and metered_job pages, so the open rows are updated in place

Each cycle rewrites one charge row and one progress row per running job.  With free space
in the page PostgreSQL keeps the new version on the same page (a HOT update) and touches
no index.  SQLite has no such setting.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE charge SET (fillfactor = 50)")
        op.execute("ALTER TABLE metered_job SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE charge RESET (fillfactor)")
        op.execute("ALTER TABLE metered_job RESET (fillfactor)")
