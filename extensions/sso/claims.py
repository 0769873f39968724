"""What the provider says about a person, checked: pure functions, no network.

``verify_id_token`` checks an id_token against a key the caller already fetched (the shell
in ``oidc.py`` gets it from the provider's JWKS).  ``checked_claims`` joins the id_token and
the userinfo answer, and ``require_verified_email`` refuses an e-mail username the provider
does not vouch for; ``groups_in``, ``is_admin``, ``course_groups`` and ``auth_state_for``
turn them into what the hub and the course code use.  Every refusal is a
:class:`ClaimError` whose message is for the person at the login page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import jwt

# Clocks drift; a minute either way is the usual allowance for exp, iat and nbf.
LEEWAY_SECONDS = 60
REQUIRED = ("iss", "sub", "aud", "exp", "iat")
ASK_SUPPORT = "If it happens again, tell the centre's support."


class ClaimError(ValueError):
    """The provider's answer cannot sign this person in; the message says why, for them."""


def verify_id_token(
    id_token: str, key: object, *, issuer: str, client_id: str, algorithms: Iterable[str]
) -> dict:
    """The id_token's claims once its signature (with ``key``), issuer, audience and
    expiry are checked.

    Refused: a bad signature or one made with another algorithm than ``algorithms``; an
    ``iss`` other than ``issuer``; an ``aud`` without ``client_id``; a past ``exp``; any
    of ``iss sub aud exp iat`` missing; a token that is not a JWT at all.
    """
    try:
        return jwt.decode(
            id_token,
            key,
            algorithms=list(algorithms),
            audience=client_id,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": list(REQUIRED)},
        )
    except jwt.ExpiredSignatureError:
        raise ClaimError(
            "Your sign-in expired before it reached the portal; sign in again."
        ) from None
    except jwt.InvalidAudienceError:
        raise ClaimError(
            "The identity provider made this sign-in for another application, not this "
            f"portal (client {client_id!r}). {ASK_SUPPORT}"
        ) from None
    except jwt.InvalidIssuerError:
        raise ClaimError(
            f"This sign-in does not come from {issuer}, the portal's identity provider. "
            f"{ASK_SUPPORT}"
        ) from None
    except jwt.InvalidSignatureError:
        raise ClaimError(
            "The sign-in's signature does not match the identity provider's keys, so it was "
            f"refused. {ASK_SUPPORT}"
        ) from None
    except jwt.MissingRequiredClaimError as e:
        raise ClaimError(
            f"The identity provider's token has no {e.claim!r} claim. {ASK_SUPPORT}"
        ) from None
    except jwt.InvalidTokenError as e:
        raise ClaimError(
            f"The identity provider's token could not be checked ({e}). {ASK_SUPPORT}"
        ) from None


def checked_claims(id_claims: Mapping, userinfo: Mapping, groups_claim: str) -> dict:
    """The person's claims: the id_token's, with the userinfo answer's on top.

    Refused: a userinfo ``sub`` other than the id_token's (OpenID Connect Core §5.3.2: the
    answer may be for someone else) and a groups claim that is not a list of names.
    """
    if userinfo.get("sub") != id_claims["sub"]:
        raise ClaimError(
            "The identity provider's user information is for another person than its token. "
            f"{ASK_SUPPORT}"
        )
    claims = {**id_claims, **userinfo}
    claims[groups_claim] = groups_in(claims, groups_claim)
    return claims


def require_verified_email(claims: Mapping, username_claim: str) -> None:
    """Refuse a username that is an e-mail address the provider has not verified.

    The claim is an e-mail when it is ``email`` or its value holds an ``@``.  Then
    ``email_verified`` must be true (JSON ``true``, or the string ``"true"`` that some
    providers send): an unverified address is whatever the person typed at the provider,
    such as ``root@evil.example`` or someone else's address.
    """
    value = claims.get(username_claim)
    if username_claim != "email" and not (isinstance(value, str) and "@" in value):
        return
    verified = claims.get("email_verified")
    if verified is True or verified == "true":
        return
    raise ClaimError(
        f"The identity provider has not verified your e-mail address ({str(value)[:80]!r}), "
        "and the portal names accounts after it. Verify the address at your identity provider, "
        f"then sign in again. {ASK_SUPPORT}"
    )


def groups_in(claims: Mapping, groups_claim: str) -> list[str]:
    """The groups claim as a list: missing or null is no groups, one name is one group."""
    value = claims.get(groups_claim)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(g, str) and g for g in value):
        raise ClaimError(
            f"The identity provider's {groups_claim!r} claim is not a list of group names. "
            f"{ASK_SUPPORT}"
        )
    return list(dict.fromkeys(value))


def is_admin(groups: Iterable[str], admin_groups: Iterable[str]) -> bool:
    """Whether any of ``groups`` is one of the site's admin groups (names compared exactly)."""
    return not set(groups).isdisjoint(admin_groups)


def course_groups(groups: Iterable[str], prefix: str) -> list[str]:
    """The groups the course code may trust: those that start with ``prefix``, which is
    taken off (``corehour:course-chem101-tas`` → ``course-chem101-tas``).  Every other group
    is dropped, whatever its name: a provider where people make their own groups must not
    make anyone an instructor."""
    assert prefix, "an empty prefix would trust every group"
    return [g[len(prefix) :] for g in groups if g.startswith(prefix) and len(g) > len(prefix)]


def auth_state_for(claims: Mapping, groups_claim: str, issuer: str, course_prefix: str) -> dict:
    """What the hub hands on about the person: no tokens, only who they are, their groups,
    and the course groups among them (``course_groups``)."""
    groups = list(claims.get(groups_claim) or [])
    return {
        "issuer": issuer,
        "sub": claims["sub"],
        "email": claims.get("email"),
        "name": claims.get("name"),
        "groups": groups,
        "course_groups": course_groups(groups, course_prefix),
    }
