"""jupyterhub-idle-culler with an idle timeout per profile, telling people why.

The culler asks ``arbiter`` about each server.  The timeout comes from the profile in the
server's ``user_options`` (``billing.idle_timeout_minutes`` in the site file, "default" for
the rest), and a culled server leaves a notice that the person reads on their next page.
"""

from __future__ import annotations

import argparse
import logging
import os
from urllib.parse import unquote

from jupyterhub_idle_culler import IdleCuller
from traitlets.config import Config

from billing_hooks.db import database_url, make_engine, session_factory
from billing_hooks.enforce import add_notice
from centre.logs import hub_logging_config
from centre.site import DEFAULT_SITE, load_site_or_exit

DEFAULT_MINUTES = 60
log = logging.getLogger("corehour.idle")


def timeout_minutes(timeouts: dict[str, int], profile: str) -> int:
    return timeouts.get(profile, timeouts.get("default", DEFAULT_MINUTES))


def owner_of(server: dict) -> tuple[str, str]:
    """(username, server name) from a server model's URL, /user/<name>/<server>/."""
    parts = [unquote(p) for p in server.get("url", "").strip("/").split("/")]
    username = parts[parts.index("user") + 1] if "user" in parts[:-1] else ""
    return username, server.get("name", "")


def make_arbiter(timeouts: dict[str, int], notify):
    def arbiter(*, inactive, inactive_limit, server, **_ignored) -> bool:
        profile = str((server.get("user_options") or {}).get("profile", ""))
        minutes = timeout_minutes(timeouts, profile)
        if inactive.total_seconds() < minutes * 60:
            return False
        username, name = owner_of(server)
        notify(username, name, minutes)
        return True

    return arbiter


def main() -> None:
    parser = argparse.ArgumentParser(description="corehour's idle culler (started by the hub)")
    parser.add_argument("--site", default=os.environ.get("COREHOUR_SITE", DEFAULT_SITE))
    parser.add_argument("--cull-every", type=int, default=60)
    args = parser.parse_args()
    site = load_site_or_exit(args.site)
    assert site.billing is not None
    timeouts = dict(site.billing.idle_timeout_minutes)
    sessions = session_factory(make_engine(database_url(site.billing.database_url)))

    def notify(username: str, server: str, minutes: int) -> None:
        label = f"'{server}'" if server else "(default)"
        with sessions.begin() as session:
            add_notice(
                session,
                username,
                "info",
                f"Your server {label} was stopped after {minutes} minute{'' if minutes == 1 else 's'} "
                "without activity, "
                "so it stopped costing credits. Your files are kept; start it again from Home.",
                None,
            )

    # The culler is a traitlets application like the hub: its own lines and ours go through
    # its handler, in the site's format.
    logs = hub_logging_config(site.logging.level, site.logging.format)
    culler = IdleCuller(config=Config({"Application": logs}))
    shortest = min([timeout_minutes(timeouts, "default"), *timeouts.values()])
    culler.initialize(
        argv=[f"--timeout={shortest * 60}", f"--cull-every={args.cull_every}", "--concurrency=5"]
    )
    culler.cull_arbiter_hook = make_arbiter(timeouts, notify)
    culler.start()


if __name__ == "__main__":
    main()
