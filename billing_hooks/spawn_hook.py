"""The spawner's view of billing: admit or refuse a request, and price data for the form.

The spawner calls these only when ``c.CorehourSpawner.billing_database_url`` is set.  One
:class:`SpendingGate` (one pair of database engines) serves every spawner of a site.  Every
ledger call runs on a ledger thread with a deadline (ledger_calls.py): when the ledger does
not answer, a spawn is refused with 503 before anything reaches Slurm, and the form is
shown without prices, while the hub's other pages go on.
"""

from __future__ import annotations

import datetime as dt
import threading

from sqlalchemy import select

from billing_hooks import ledger_calls
from billing_hooks.gate import AccountChoice, SpendingGate, SpendRefused, request_tres
from billing_hooks.ledger_calls import LedgerUnavailable
from billing_hooks.models import Account
from billing_hooks.slurm_accounts import SacctmgrError, SlurmAccounts, Wanted
from centre.options import SpawnRequest
from centre.pricing import format_credits
from spawners.materials import Materials

_gates: dict[tuple[str, str], SpendingGate] = {}
_gates_lock = threading.Lock()
_slurm: dict[str, SlurmAccounts] = {}

FORM_NOTICE = (
    "Prices and balances cannot be shown right now: the billing ledger does not answer. "
    "Starting a server needs it too, so if the start is refused, try again in a minute."
)


class SpawnRefused(Exception):
    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status = status
        self.field = field


def gate_for(spawner) -> SpendingGate:
    """The site's gate; made on a ledger thread, as its first use reaches the database."""
    key = (spawner._site_key, spawner.billing_database_url)
    with _gates_lock:
        if key not in _gates:
            _gates[key] = SpendingGate(
                spawner.site_model, spawner.billing_database_url, timeout_s=ledger_calls.TIMEOUT_S
            )
        return _gates[key]


async def admit(spawner, request: SpawnRequest) -> str:
    """The account to charge; raises SpawnRefused with what the person must know."""
    try:
        gate, account, course = await ledger_calls.call(_choose, spawner, request)
    except LookupError as e:
        raise SpawnRefused(400, "account", f"account: {e}") from None
    except LedgerUnavailable as e:
        raise SpawnRefused(503, "account", str(e)) from None
    spawner.course_materials = None
    if course is not None:
        spawner.course_materials = Materials.from_settings(course.slug, course.materials)
    clusters = request.candidate_clusters if request.cluster == "auto" else (request.cluster,)
    tres = request_tres(request.cores, request.gpus, request.memory_gb)
    try:
        gate.admit(account, clusters, request.partition, tres)
    except SpendRefused as e:
        raise SpawnRefused(402, "account", str(e)) from None
    await _ensure_in_slurm(spawner, gate, account.name, account.kind == "personal")
    return account.name


def _choose(spawner, request: SpawnRequest) -> tuple[SpendingGate, AccountChoice, object]:
    """On a ledger thread: the gate, the account to charge and its course (or None)."""
    gate = gate_for(spawner)
    username = spawner.user.name
    account = gate.choose(username, request.account)
    course = None
    if account.kind == "course":
        course = _check_course(gate, account.name, username, request)
    return gate, account, course


def _check_course(gate: SpendingGate, account: str, username: str, request: SpawnRequest):
    """A course's own rules (term, profiles, images, the student's cap) before its money;
    the course (``CourseSpawn``), or None when no course is paid from ``account``."""
    from extensions.courses.spawn_rules import CourseRefused, check, course_spawn

    with gate.reads() as session:
        account_id = session.scalar(select(Account.id).where(Account.name == account))
        course = course_spawn(session, account_id, username)
    if course is None:
        return None
    try:
        check(course, request.profile, request.image, dt.datetime.now(dt.UTC).date())
    except CourseRefused as e:
        raise SpawnRefused(403, e.field, f"{e.field}: {e}") from None
    return course


async def _ensure_in_slurm(spawner, gate: SpendingGate, account: str, personal: bool) -> None:
    username = spawner.user.name
    # It remembers the associations it has seen: a known person costs no sacctmgr call.
    slurm = _slurm.setdefault(spawner._site_key, SlurmAccounts(gate.site, remember=True))
    defaults = {username: account} if personal else {}
    try:
        await slurm.sync([Wanted(account, f"corehour {account}", (username,))], defaults)
    except SacctmgrError as e:
        raise SpawnRefused(
            503,
            "account",
            f"Slurm could not be told about account {account}: {e}. Try again shortly.",
        ) from None


async def form_billing(spawner) -> tuple[dict | None, str | None]:
    """Accounts, prices and the minimum run for the spawn form's live price; (None, a notice
    for the person) when the ledger does not answer."""
    try:
        gate, accounts = await ledger_calls.call(
            _form_accounts,
            spawner,
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


def _form_accounts(spawner) -> tuple[SpendingGate, list[AccountChoice]]:
    gate = gate_for(spawner)
    return gate, gate.accounts_for(spawner.user.name)
