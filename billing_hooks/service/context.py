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

    @property
    def billing(self) -> Billing:
        assert self.site.billing is not None
        return self.site.billing

    @property
    def usage_url(self) -> str:
        return f"{self.prefix}usage"
