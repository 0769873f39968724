"""What a personal API token may do in corehour's public API (docs/api.md).

Each is a JupyterHub custom scope.  Every person's role holds all three, so a token made
without naming scopes may do what its owner may; a token made with some of them may do
only that.  The public API always acts for the token's owner and nobody else, so a scope
needs no ``!user=`` filter.
"""

from __future__ import annotations

from collections.abc import Collection

JOBS = "custom:corehour:jobs"
FILES = "custom:corehour:files"
BILLING = "custom:corehour:billing"

PUBLIC_SCOPES = {
    JOBS: {
        "description": "List, submit, follow and cancel your batch jobs and read their "
        "output, on every cluster of the portal.",
    },
    FILES: {
        "description": "List, upload and download files in your home on each cluster.",
    },
    BILLING: {
        "description": "Read your accounts' balances, your jobs' bills and your statements.",
    },
}


def not_signed_in(token_sent: bool) -> str:
    """A sentence for a 401: a token that did not work, or none at all."""
    if token_sent:
        return (
            "this API token is not valid: it was revoked, has expired or is mistyped. "
            "Make a new one on the portal's Token page."
        )
    return "sign in, or send a personal API token: Authorization: token …"


def missing_scope(held: Collection[str], needed: str) -> str | None:
    """A sentence for a 403 when ``held`` lacks ``needed``, else None."""
    if needed in held:
        return None
    return (
        f"this token may not do this: it needs the scope {needed}. "
        "Make a token that includes it on the portal's Token page."
    )
