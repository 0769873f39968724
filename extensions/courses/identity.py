"""From an identity provider's username claim to a Unix account name: one documented rule.

The rule, applied in order:

1. An e-mail address keeps only its local part (``Anna.Mueller@uni.example`` → ``Anna.Mueller``).
2. Letters lose their accents and case (``Müller`` → ``muller``, ``ß`` → ``ss``); others outside
   ``a-z``, ``0-9``, ``_`` and ``-`` become ``-``, and runs of ``-`` collapse to one.
3. Leading and trailing ``-`` are dropped; a name that starts with a digit gets a ``u`` in
   front (``2024x`` → ``u2024x``), because Unix names start with a letter or ``_``.
4. The result must be 1–32 characters; a longer one is refused rather than cut, because two
   people who differ only after character 32 would otherwise become one account.

Two people whose claims give the same name (``anna.mueller@a.example`` and
``anna.mueller@b.example``) are a collision: the second is refused and told to ask the
centre, which can link them to another account by hand (``python -m extensions.sso.assign``).
Which names a sign-in may not be given at all (reserved, admin, system, a local account) is
decided in ``extensions/sso/names.py``.  A person keeps their name by the provider's stable
subject (``sub``), not by the claim, so a changed e-mail address does not make a new account.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from centre.names import UNIX_NAME

MAX_LENGTH = 32
_OUTSIDE = re.compile(r"[^a-z0-9_-]+")
_DASHES = re.compile(r"-{2,}")
# Letters that Unicode does not decompose into a base letter and an accent.
_SPELLED_OUT = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o", "œ": "oe", "Œ": "oe", "đ": "d",
     "Đ": "d", "ł": "l", "Ł": "l", "þ": "th", "Þ": "th"}
)  # fmt: skip


class IdentityError(ValueError):
    """This login cannot become a Unix account; the message says why, for the person."""


def unix_name(claim: object) -> str:
    if not isinstance(claim, str) or not claim.strip():
        raise IdentityError("Your identity provider sent no username; ask the centre's support.")
    local = claim.strip().split("@", 1)[0]
    spelled = unicodedata.normalize("NFKD", local.translate(_SPELLED_OUT))
    ascii_only = spelled.encode("ascii", "ignore").decode()
    name = _DASHES.sub("-", _OUTSIDE.sub("-", ascii_only.lower())).strip("-")
    if name and name[0].isdigit():
        name = "u" + name
    if not name:
        raise IdentityError(
            f"The username {claim[:60]!r} has no letters or digits to make an account name from; "
            "ask the centre's support."
        )
    if len(name) > MAX_LENGTH:
        raise IdentityError(
            f"The username {claim[:60]!r} gives the account name {name!r}, longer than "
            f"{MAX_LENGTH} characters; ask the centre's support to map it by hand."
        )
    assert UNIX_NAME.fullmatch(name), name  # the steps above guarantee it
    return name


def claim_name(
    subject: str, claim: object, owners: Mapping[str, str], held: Mapping[str, str]
) -> str:
    """The account for ``subject``: the one it already holds (``held``: subject → name), or
    the rule's name for its claim unless another subject holds that (``owners``: name →
    subject)."""
    if subject in held:
        return held[subject]
    name = unix_name(claim)
    holder = owners.get(name)
    if holder is not None and holder != subject:
        raise IdentityError(
            f"The account name {name!r} already belongs to someone else who signed in with a "
            "similar username. Ask the centre's support to give you an account."
        )
    return name
