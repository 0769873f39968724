"""metered_job: an index for one account's running jobs

``GET api/jobs/running`` and the hub's pages ask for the running jobs of a few accounts;
without this index each call read the whole metered_job table, and with the old query the
whole charge table too (billing_hooks/reports.py running_jobs).

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_metered_job_account_running",
        "metered_job",
        ["account_id", "finished", "username"],
    )


def downgrade() -> None:
    op.drop_index("ix_metered_job_account_running", table_name="metered_job")
