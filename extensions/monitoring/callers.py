"""Who may read a person's own monitoring data (My jobs, the job history): that person, with a
token that may read their servers.  A service, or a token lent to someone else's server, gets
403."""

from __future__ import annotations

from tornado import web

from centre.api_scopes import JOBS


def require_person(handler, not_a_person: str, scope_missing: str) -> None:
    """Raise 403 unless ``handler``'s caller is a person whose token reads their own servers.

    ``scope_missing`` may name the scope with ``{scope}``."""
    user = handler.current_user
    if getattr(user, "kind", "user") != "user":
        raise web.HTTPError(403, not_a_person)
    # As much as reading one's own servers needs, or the public API's jobs scope: a token
    # lent to a server holds neither.
    scope = f"servers!user={user.name}"
    if not {"servers", scope, JOBS} & set(handler.expanded_scopes):
        raise web.HTTPError(403, scope_missing.format(scope=scope))
