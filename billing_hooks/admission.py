"""Billing's part in a spawn: choose the account, check its money, and the form's prices.

The hub's composition root puts :meth:`BillingAdmission.choose_account` first and
:meth:`BillingAdmission.check_money` last in the spawner's admission steps
(centre/admission.py); other steps (a course's rules) run between them.  One
:class:`BillingAdmission` serves every spawner of the hub.
The accounts come from the billing service (``accounts``: LedgerClient.accounts_for), on a
ledger thread with a deadline (ledger_calls.py): when the ledger does not answer, a spawn is
refused with 503 before anything reaches Slurm, and the form is shown without prices, while
the hub's other pages go on.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from billing_hooks import ledger_calls
from billing_hooks.gate import AccountChoice, SpendingGate, SpendRefused, request_tres
from billing_hooks.ledger_calls import LedgerUnavailable
from billing_hooks.slurm_accounts import SacctmgrError, SlurmAccounts, Wanted
from centre.admission import Admission, AdmissionRefused, SharedStep
from centre.pricing import format_credits
from centre.site import Site

log = logging.getLogger("corehour.billing")

FORM_NOTICE = (
    "Prices and balances cannot be shown right now: the billing ledger does not answer. "
    "Starting a server needs it too, so if the start is refused, try again in a minute."
)


class BillingAdmission(SharedStep):
    def __init__(self, site: Site, accounts: Callable[[str], list[AccountChoice]]):
        self.site = site
        self._gate = SpendingGate(site, accounts)
        # It remembers the associations it has seen: a known person costs no sacctmgr call.
        self._slurm = SlurmAccounts(site, remember=True)

    def gate(self) -> SpendingGate:
        return self._gate

    async def choose_account(self, admission: Admission) -> Admission:
        """The account to charge: the one the person chose, if they may charge it, else
        their personal account."""
        account = await self._ledger(self._choose, admission)
        return dataclasses.replace(admission, account=account.name, account_kind=account.kind)

    async def check_money(self, admission: Admission) -> Admission:
        """Refuse an account that cannot pay for the minimum run; then make sure Slurm lets
        the person submit to it."""
        request = admission.request
        account = await self._ledger(self._choose, admission)
        clusters = request.candidate_clusters if request.cluster == "auto" else (request.cluster,)
        tres = request_tres(request.cores, request.gpus, request.memory_gb)
        try:
            self.gate().admit(account, clusters, request.partition, tres)
        except SpendRefused as e:
            raise AdmissionRefused(402, "account", str(e)) from None
        ready = await self._ensure_in_slurm(admission.username, account, clusters)
        if ready != clusters:
            # auto goes on with the clusters that know the person: a centre that is away
            # must not stop a start elsewhere.
            request = dataclasses.replace(request, candidate_clusters=ready)
            admission = dataclasses.replace(admission, request=request)
        return admission

    def _choose(self, admission: Admission) -> AccountChoice:
        # After choose_account, admission.account names the account it chose.
        return self.gate().choose(
            admission.username, admission.account or admission.request.account
        )

    async def _ledger(self, function, *args):
        try:
            return await ledger_calls.call(function, *args)
        except LookupError as e:
            raise AdmissionRefused(400, "account", f"account: {e}") from None
        except LedgerUnavailable as e:
            raise AdmissionRefused(503, "account", str(e)) from None

    async def _ensure_in_slurm(
        self, username: str, account: AccountChoice, clusters: tuple[str, ...]
    ) -> tuple[str, ...]:
        """Make sure Slurm lets the person submit to the account on ``clusters``; the ones
        where it now does.  Refused only when none of them does."""
        defaults = {username: account.name} if account.kind == "personal" else {}
        wanted = [Wanted(account.name, f"corehour {account.name}", (username,))]
        ready, problems = [], []
        for cluster in clusters:
            try:
                await self._slurm.sync(wanted, defaults, clusters=(cluster,))
            except SacctmgrError as e:
                problems.append(str(e))
            else:
                ready.append(cluster)
        if not ready:
            raise AdmissionRefused(
                503,
                "account",
                f"Slurm could not be told about account {account.name}: "
                f"{'; '.join(problems)}. Try again shortly.",
            )
        if problems:
            log.warning("%s: starting without %s", username, "; ".join(problems))
        return tuple(ready)

    async def form(self, username: str) -> tuple[dict | None, str | None]:
        """Accounts, prices and the minimum run for the spawn form's live price; (None, a
        notice for the person) when the ledger does not answer."""
        try:
            gate, accounts = await ledger_calls.call(
                self._form_accounts,
                username,
                deadline=ledger_calls.FORM_DEADLINE_S,
                wait_when_quiet=False,
            )
        except LedgerUnavailable:
            return None, FORM_NOTICE
        return {
            "currency": gate.billing.currency,
            "minimum_run_minutes": gate.billing.minimum_run_minutes,
            "prices": gate.price_table(),
            "accounts": [
                {
                    "name": a.name,
                    "label": f"{a.display_name}: {format_credits(a.available_mc)} available",
                    "available_mc": a.available_mc,
                    "multiplier": str(a.multiplier),
                }
                for a in accounts
                if a.status == "active"
            ],
            "usage_url": gate.usage_url,
        }, None

    def _form_accounts(self, username: str) -> tuple[SpendingGate, list[AccountChoice]]:
        gate = self.gate()
        return gate, gate.accounts_for(username)
