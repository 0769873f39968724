"""Alembic environment for the ledger; run through billing_hooks.db.upgrade."""

from alembic import context
from sqlalchemy import create_engine

from billing_hooks.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")


def run() -> None:
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Held until commit: a second process waits, then finds nothing to do.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7243001)")
            context.run_migrations()
    engine.dispose()


run()
