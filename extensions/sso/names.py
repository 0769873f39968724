"""Which account names a sign-in may give: the rule is pure, the passwd file is the shell.

A sign-in through the provider never gives a person

* a reserved or admin name (``centre/people.py``), not even one an admin linked them to,
  so ``root@evil.example`` and ``HPCAdmin@uni.example`` are refused;
* a system account (uid below ``hub.min_uid``);
* at their first sign-in, an account that already exists.  It belongs to someone the
  provider did not name (a local person, a demo user, a service), and taking it would give
  a stranger their files and jobs.  An admin links a subject to an existing account on
  purpose with ``python -m extensions.sso.assign``; a later sign-in of that subject then
  finds its name held.  A centre whose directory (LDAP/SSSD) already holds everyone's
  account under the rule's name sets ``auth.adopt_directory_accounts``: then only the
  accounts in this machine's own ``/etc/passwd`` are kept back.

An account the portal made at a person's first sign-in (``courses.create_unix_accounts``)
is theirs from then on: their subject holds its name in the identity table.
"""

from __future__ import annotations

from pathlib import Path

from centre.people import PersonRules, UnixAccount, name_refusal

PASSWD = Path("/etc/passwd")
ASK_FOR_ACCOUNT = "Ask the centre's support to give you an account."


def sign_in_refusal(
    account: UnixAccount,
    rules: PersonRules,
    *,
    first_sign_in: bool,
    in_passwd_file: bool,
    adopt_directory_accounts: bool = False,
) -> str | None:
    """Why a sign-in may not be given ``account``, or None; the message is for the person.

    ``first_sign_in``: no provider subject holds the name yet (a returning or admin-linked
    subject holds it).  ``in_passwd_file``: the account is in this machine's ``/etc/passwd``
    rather than only in the centre's directory.
    """
    name = account.name
    refusal = name_refusal(name, rules)
    if refusal is not None:
        return (
            f"Your sign-in gives the account name {name!r}, which is refused: {refusal}. "
            f"{ASK_FOR_ACCOUNT}"
        )
    if account.uid is not None and account.uid < rules.min_uid:
        return (
            f"Your sign-in gives the account name {name!r}, a system account "
            f"(uid {account.uid}); people's accounts have a uid of {rules.min_uid} or more. "
            f"{ASK_FOR_ACCOUNT}"
        )
    adoptable = adopt_directory_accounts and not in_passwd_file
    if first_sign_in and account.uid is not None and not adoptable:
        return (
            f"Your sign-in gives the account name {name!r}, which already belongs to a local "
            "account that was not made for you, so it is not handed out. If it is yours, ask "
            "the centre's support to link it to your sign-in; otherwise ask them for an account."
        )
    return None


def in_passwd_file(name: str, path: Path = PASSWD) -> bool:
    """Whether ``name`` is in the machine's own passwd file (not only in the directory).
    A file that cannot be read counts as yes, so nothing is adopted by mistake."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return True
    return any(line.split(":", 1)[0] == name for line in lines)
