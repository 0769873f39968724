"""Everyone who opens the billing pages or API has a personal account, in the ledger and Slurm."""

from __future__ import annotations

import asyncio
import logging

from billing_hooks.ledger import site_personal_account
from billing_hooks.service.context import Context
from billing_hooks.slurm_accounts import SacctmgrError, Wanted

log = logging.getLogger("corehour.billing")
_ready: set[tuple[int, str]] = set()


async def ensure_person(ctx: Context, username: str) -> None:
    key = (id(ctx), username)
    if key in _ready:
        return

    def in_ledger() -> str:
        with ctx.sessions.begin() as session:
            return site_personal_account(session, username, ctx.billing).name

    account = await asyncio.to_thread(in_ledger)
    try:
        await ctx.slurm.sync(
            [Wanted(account, f"corehour {account}", (username,))], {username: account}
        )
    except SacctmgrError as e:
        log.error("could not associate %s with %s in Slurm: %s", username, account, e)
        return
    _ready.add(key)
