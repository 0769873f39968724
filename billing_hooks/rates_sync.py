"""Copy the site file's rates into the ledger, so every bill can be explained later."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from billing_hooks.models import Rate
from centre.pricing import RateBook
from centre.site import Billing


def store_rates(sessions: sessionmaker[Session], billing: Billing) -> int:
    """Replace the stored rates with the site's; returns how many rows were written."""
    book = RateBook.from_site(billing)
    rows = []
    for cluster, partition in book.partitions():
        for period in book.periods(cluster, partition):
            for resource in ("core_hour", "gpu_hour", "gb_mem_hour"):
                rows.append(
                    Rate(
                        cluster=cluster,
                        partition=partition,
                        resource=resource,
                        price=getattr(period.price, resource),
                        valid_from=period.start,
                        valid_until=period.end,
                    )
                )
    with sessions.begin() as session:
        session.execute(delete(Rate))
        session.add_all(rows)
    return len(rows)
