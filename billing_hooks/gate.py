"""Before a spawn: which accounts a person may charge, the price, and whether it is covered.

Used in the hub process by the spawner, always on a ledger thread (ledger_calls.py).  The
accounts come from the billing service (``accounts`` is ledger_client.LedgerClient's
``accounts_for``), which reads the ledger; everything else here is arithmetic on the site's
rates.  The price of a request is the price of its TRES at the partition's current rate,
times the account's tier multiplier; with "auto" the dearest candidate cluster is quoted, so
a quote is never too low.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from centre.pricing import RateBook, Tres, format_credits, hourly_price_mc, now
from centre.site import Billing, Site


def personal_account_name(username: str) -> str:
    return f"u-{username}"


class SpendRefused(Exception):
    """The account cannot pay for a minimum run; the message says price, balance and what to do."""


@dataclass(frozen=True)
class AccountChoice:
    name: str
    display_name: str
    kind: str
    available_mc: int
    balance_mc: int
    credit_limit_mc: int
    multiplier: Decimal
    status: str

    def to_json(self) -> dict:
        return {**self.__dict__, "multiplier": str(self.multiplier)}

    @classmethod
    def from_json(cls, data: dict) -> AccountChoice:
        return cls(**{**data, "multiplier": Decimal(data["multiplier"])})


def request_tres(cores: int, gpus: int, memory_gb: int) -> Tres:
    return Tres(cpus=cores, gpus=gpus, mem_mb=memory_gb * 1024)


def quote_mc_per_hour(
    rates: RateBook,
    clusters: tuple[str, ...],
    partition: str,
    tres: Tres,
    multiplier: Decimal,
    at: int,
) -> int:
    return max(
        hourly_price_mc(rates.price_at(cluster, partition, at), tres, multiplier)
        for cluster in clusters
    )


def refusal(
    account: AccountChoice, per_hour_mc: int, minimum_minutes: int, where: str, top_up_hint: str
) -> str | None:
    """The message that refuses a spawn, or None when the account covers the minimum run."""
    needed = math.ceil(per_hour_mc * minimum_minutes / 60)
    if account.status != "active":
        return (
            f"Account {account.name} is {account.status}, so it cannot start servers. {top_up_hint}"
        )
    if account.available_mc >= needed and (per_hour_mc == 0 or account.available_mc > 0):
        return None
    return (
        f"Not enough credits in account {account.name}. This server costs "
        f"{format_credits(per_hour_mc)} credits per hour on {where}; a minimum run of "
        f"{minimum_minutes} minutes needs {format_credits(needed)}. The account has "
        f"{format_credits(account.available_mc)} available (balance "
        f"{format_credits(account.balance_mc)}, credit limit "
        f"{format_credits(account.credit_limit_mc)}). {top_up_hint}"
    )


class SpendingGate:
    """The ledger as the spawner sees it."""

    def __init__(
        self,
        site: Site,
        accounts: Callable[[str], list[AccountChoice]],
        usage_url: str = "/services/billing/usage",
    ):
        assert site.billing is not None
        self.site = site
        self.billing: Billing = site.billing
        self.rates = RateBook.from_site(site.billing)
        self.accounts_for = accounts
        self.usage_url = usage_url

    def top_up_hint(self) -> str:
        return (
            "Ask your account manager or the centre's support to top it up; "
            f"your balance and usage are at {self.usage_url}."
        )

    def choose(self, username: str, requested: str | None) -> AccountChoice:
        accounts = self.accounts_for(username)
        name = requested or personal_account_name(username)
        for account in accounts:
            if account.name == name:
                return account
        raise LookupError(
            f"'{str(requested)[:64]}' is not an account you may charge; "
            f"choose one of {', '.join(a.name for a in accounts)}."
        )

    def price(
        self, clusters: tuple[str, ...], partition: str, tres: Tres, account: AccountChoice
    ) -> int:
        return quote_mc_per_hour(self.rates, clusters, partition, tres, account.multiplier, now())

    def admit(
        self, account: AccountChoice, clusters: tuple[str, ...], partition: str, tres: Tres
    ) -> int:
        """Price per hour when the account covers the minimum run; else SpendRefused."""
        per_hour = self.price(clusters, partition, tres, account)
        where = "/".join(("|".join(clusters), partition))
        message = refusal(
            account, per_hour, self.billing.minimum_run_minutes, where, self.top_up_hint()
        )
        if message:
            raise SpendRefused(message)
        return per_hour

    def price_table(self, at: int | None = None) -> dict[str, dict[str, dict[str, str]]]:
        """Current credits per unit-hour by cluster and partition, for the spawn form."""
        at = at or now()
        table: dict[str, dict[str, dict[str, str]]] = {}
        for cluster, partition in self.rates.partitions():
            price = self.rates.price_at(cluster, partition, at)
            table.setdefault(cluster, {})[partition] = {
                "core_hour": str(price.core_hour),
                "gpu_hour": str(price.gpu_hour),
                "gb_mem_hour": str(price.gb_mem_hour),
            }
        return table
