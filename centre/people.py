"""Who may have a server or a job, and which names may be handed out: one rule for every path.

The spawner, the app kit, enrolment and single sign-on all ask this module, so a person that
one path refuses is refused by all of them.  A job never runs as

* a system account: a uid below the site's ``min_uid`` (root is uid 0);
* a reserved name (``root``, the daemons', the portal's own) or one of the hub's admins, who
  administer the portal and do not run jobs through it;
* someone outside the portal's Unix groups.

The rules are pure (:func:`job_refusal`, :func:`name_refusal`); :func:`account_of` is the
thin shell that reads the passwd and group databases.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_MIN_UID = 1000
# Debian's system accounts, the daemons a portal host runs, the portal's own user, and the
# role names that mail and support conventions keep for people who run the machine.
DEFAULT_RESERVED_NAMES = (
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp",
    "proxy", "www-data", "backup", "list", "irc", "gnats", "nobody", "nogroup", "_apt",
    "messagebus", "sshd", "systemd-network", "systemd-resolve", "systemd-timesync",
    "polkitd", "munge", "slurm", "mysql", "postgres", "redis", "rabbitmq", "mosquitto",
    "exim", "postfix", "prometheus", "corehour", "jupyterhub", "admin", "administrator",
    "sysadmin", "operator", "support", "security", "abuse", "postmaster", "hostmaster",
    "webmaster", "staff", "wheel", "sudo",
)  # fmt: skip


@dataclass(frozen=True)
class PersonRules:
    """What the site allows (site file ``hub.min_uid``, ``hub.reserved_names``,
    ``hub.admin_users``, ``hub.allowed_groups``); no groups means any group."""

    min_uid: int = DEFAULT_MIN_UID
    reserved_names: frozenset[str] = frozenset(DEFAULT_RESERVED_NAMES)
    admin_users: frozenset[str] = frozenset()
    allowed_groups: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        min_uid: int = DEFAULT_MIN_UID,
        reserved_names: Iterable[str] = DEFAULT_RESERVED_NAMES,
        admin_users: Iterable[str] = (),
        allowed_groups: Iterable[str] = (),
    ) -> PersonRules:
        return cls(
            min_uid, frozenset(reserved_names), frozenset(admin_users), frozenset(allowed_groups)
        )


@dataclass(frozen=True)
class UnixAccount:
    """What the system says about a name: its uid (None: no such account) and its groups."""

    name: str
    uid: int | None
    groups: frozenset[str] = frozenset()


def name_refusal(name: str, rules: PersonRules) -> str | None:
    """Why ``name`` may never be a portal person, or None: reserved and admin names."""
    if name in rules.reserved_names:
        return f"'{name}' is a reserved name (a system or service account); it cannot be used"
    if name in rules.admin_users:
        return f"'{name}' is one of the portal's admins, who do not run jobs through the portal"
    return None


def job_refusal(account: UnixAccount, rules: PersonRules) -> str | None:
    """Why no server or job may run as ``account``, or None when one may."""
    refusal = name_refusal(account.name, rules)
    if refusal is not None:
        return refusal
    if account.uid is None:
        return f"there is no Unix account named '{account.name}'"
    if account.uid < rules.min_uid:
        return (
            f"'{account.name}' is a system account (uid {account.uid}); jobs run only as "
            f"people, whose uid is {rules.min_uid} or more"
        )
    if rules.allowed_groups and rules.allowed_groups.isdisjoint(account.groups):
        groups = ", ".join(sorted(rules.allowed_groups))
        return f"'{account.name}' is not in the portal's group ({groups})"
    return None


def enrolment_refusal(account: UnixAccount, rules: PersonRules, by_admin: bool) -> str | None:
    """Why ``account`` may not be enrolled in a course, or None.

    Reserved, admin and system names never.  A name with no account yet is fine: the portal
    makes it, in the portal group.  An account that exists outside the portal's group belongs
    to someone the portal did not make; only an admin may bring it in, or an instructor could
    open that person's course server and spend in their name.
    """
    refusal = name_refusal(account.name, rules)
    if refusal is not None or account.uid is None:
        return refusal
    if account.uid < rules.min_uid:
        return f"'{account.name}' is a system account (uid {account.uid}); it cannot be enrolled"
    if rules.allowed_groups and rules.allowed_groups.isdisjoint(account.groups) and not by_admin:
        return f"'{account.name}' is a local account outside the portal; only an admin can enrol it"
    return None


def account_of(name: str) -> UnixAccount:
    """The passwd and group facts for ``name`` (the shell around the rules above)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return UnixAccount(name, None)
    groups = {
        grp.getgrgid(gid).gr_name for gid in os.getgrouplist(name, entry.pw_gid) if _gid_known(gid)
    }
    return UnixAccount(name, entry.pw_uid, frozenset(groups))


def _gid_known(gid: int) -> bool:
    try:
        grp.getgrgid(gid)
    except KeyError:
        return False
    return True
