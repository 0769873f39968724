"""What every request handler of the billing service shares."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from billing_hooks.hub_client import HubClient
from billing_hooks.slurm_accounts import SlurmAccounts
from centre.pricing import RateBook
from centre.site import Billing, Site


@dataclass
class Context:
    site: Site
    sessions: sessionmaker[Session]
    rates: RateBook
    hub: HubClient
    slurm: SlurmAccounts
    prefix: str  # e.g. /services/billing/
    hub_prefix: str  # e.g. /hub/
    # Sessions whose connections and statements time out (ledger_calls.TIMEOUT_S), for the
    # hub's reads (hub_reads.py): read-only ones, which never wait for SQLite's write lock,
    # and ones that may write; None: sessions.
    reads: sessionmaker[Session] | None = None
    quick_writes: sessionmaker[Session] | None = None
    # What the hub sends with its reads of the ledger (hub_reads.py); empty refuses them all.
    hub_reads_token: str = ""

    @property
    def read_sessions(self) -> sessionmaker[Session]:
        return self.reads or self.sessions

    @property
    def write_sessions(self) -> sessionmaker[Session]:
        return self.quick_writes or self.sessions

    @property
    def billing(self) -> Billing:
        assert self.site.billing is not None
        return self.site.billing

    @property
    def usage_url(self) -> str:
        return f"{self.prefix}usage"
