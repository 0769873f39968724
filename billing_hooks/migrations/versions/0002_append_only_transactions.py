"""transactions are append-only in the database itself, not only through the ORM

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "transactions are append-only: record a correcting adjustment instead"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION corehour_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{MESSAGE}'; END; $$ LANGUAGE plpgsql
            """
        )
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f'CREATE TRIGGER transaction_no_{action.lower()} BEFORE {action} ON "transaction" '
                "FOR EACH ROW EXECUTE FUNCTION corehour_append_only()"
            )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f'CREATE TRIGGER transaction_no_{action.lower()} BEFORE {action} ON "transaction" '
                f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
            )


def downgrade() -> None:
    for action in ("update", "delete"):
        op.execute(
            f'DROP TRIGGER transaction_no_{action} ON "transaction"'
            if op.get_bind().dialect.name == "postgresql"
            else f"DROP TRIGGER transaction_no_{action}"
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION corehour_append_only()")
