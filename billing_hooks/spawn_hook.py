"""The spawner's view of billing: admit or refuse a request, and price data for the form.

The spawner calls these only when ``c.CorehourSpawner.billing_database_url`` is set.  One
:class:`SpendingGate` (one database engine) serves every spawner of a site.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from billing_hooks.charging import format_credits
from billing_hooks.gate import SpendingGate, SpendRefused, request_tres
from billing_hooks.models import Account
from billing_hooks.slurm_accounts import SacctmgrError, SlurmAccounts, Wanted
from spawners.materials import Materials
from spawners.options import SpawnRequest

_gates: dict[tuple[str, str], SpendingGate] = {}
_slurm: dict[str, SlurmAccounts] = {}


class SpawnRefused(Exception):
    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status = status
        self.field = field


def gate_for(spawner) -> SpendingGate:
    key = (spawner._site_key, spawner.billing_database_url)
    if key not in _gates:
        _gates[key] = SpendingGate(spawner.site_model, spawner.billing_database_url)
    return _gates[key]


async def admit(spawner, request: SpawnRequest) -> str:
    """The account to charge; raises SpawnRefused with what the person must know."""
    gate = gate_for(spawner)
    username = spawner.user.name
    try:
        account = gate.choose(username, request.account)
    except LookupError as e:
        raise SpawnRefused(400, "account", f"account: {e}") from None
    except SQLAlchemyError:
        spawner.log.exception("billing ledger unavailable for %s", username)
        raise SpawnRefused(
            503, "account", "The billing ledger cannot be reached right now; try again in a minute."
        ) from None
    spawner.course_materials = None
    if account.kind == "course":
        course = _check_course(gate, account.name, username, request)
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


def _check_course(gate: SpendingGate, account: str, username: str, request: SpawnRequest):
    """A course's own rules (term, profiles, images, the student's cap) before its money;
    the course (``CourseSpawn``), or None when no course is paid from ``account``."""
    from extensions.courses.spawn_rules import CourseRefused, check, course_spawn

    with gate.sessions() as session:
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


def form_billing(spawner) -> dict:
    """Accounts, prices and the minimum run, for the spawn form's live price."""
    gate = gate_for(spawner)
    accounts = gate.accounts_for(spawner.user.name)
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
    }
