"""Unix accounts for enrolled people: made locally, only looked up at a centre.

Slurm jobs run as the person, so every enrolled login needs an account.  With
``courses.create_unix_accounts`` (the local default) the missing ones are made by
``deploy/users.sh ensure``, the same command UP uses; otherwise the accounts come from the
centre's directory (LDAP/SSSD) and the ones it does not know are reported.
"""

from __future__ import annotations

import asyncio
import pwd
from dataclasses import dataclass
from pathlib import Path

USERS_SH = Path(__file__).resolve().parents[2] / "deploy" / "users.sh"


@dataclass(frozen=True)
class AccountReport:
    created: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


class UnixAccountError(RuntimeError):
    pass


def missing_accounts(usernames: list[str]) -> list[str]:
    missing = []
    for name in usernames:
        try:
            pwd.getpwnam(name)
        except KeyError:
            missing.append(name)
    return missing


async def ensure_accounts(usernames: list[str], create: bool) -> AccountReport:
    missing = missing_accounts(usernames)
    if not missing or not create:
        return AccountReport(missing=tuple(missing))
    process = await asyncio.create_subprocess_exec(
        str(USERS_SH),
        "ensure",
        *missing,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        tail = " ".join(output.decode(errors="replace").split())[-400:]
        raise UnixAccountError(f"could not create the Unix accounts {missing[:5]}: {tail}")
    return AccountReport(created=tuple(missing), missing=tuple(missing_accounts(missing)))
