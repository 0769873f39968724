"""What the hub's wiring reads from outside the site file, gathered in a process of its own.

:func:`gather` checks that the ledger is migrated and reads the course roles, the identity
provider's discovery document and client secret, and the app catalogue. A bad one stops
the hub with a message naming the key.

The hub runs it as ``python -m roots.hub_facts`` (:func:`gather_apart`) and reads the facts
as JSON: what the reading imports and leaves behind (alembic's migration scripts, the
catalogue's models, a second ledger engine, an HTTP client for the provider) would stay
resident in the hub for its whole life, about 1 MB of a hub that serves hundreds of
servers. The imports sit inside the functions for the same reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from centre.site import DEFAULT_SITE, Site, load_site_or_exit
from extensions.sso.discovery import Discovery


@dataclass(frozen=True)
class HubFacts:
    """What the wiring reads from outside the site file, gathered before it is applied."""

    # The app catalogue as plain data, by slug.
    apps: dict = field(default_factory=dict)
    # Every course's slug and its students, for the hub's course roles.
    course_students: dict[str, list[str]] = field(default_factory=dict)
    # With single sign-on: the provider's endpoints and the client secret.
    provider: Discovery | None = None
    client_secret: str = ""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> HubFacts:
        data = json.loads(text)
        provider = data.pop("provider")
        return cls(**data, provider=Discovery(**provider) if provider else None)


def gather(site: Site, apps_path: str | Path | None = None) -> HubFacts:
    """The facts :func:`roots.hub.apply_site` needs; exits with a message naming what is
    wrong."""
    from sqlalchemy.exc import OperationalError

    from billing_hooks.db import LedgerNotMigrated, database_url, require_head
    from centre.db_copy import display_url
    from centre.slurm_cli import control_dir_problem
    from extensions.courses.store import course_students
    from extensions.sso.discovery import DiscoveryError, fetch_discovery
    from extensions.sso.secret_file import SecretFileError, read_secret_file
    from voila_apps.catalogue import DEFAULT_CATALOGUE, CatalogueError, load_catalogue

    try:
        catalogue = load_catalogue(
            apps_path or os.environ.get("COREHOUR_APPS", DEFAULT_CATALOGUE), site
        )
        provider, secret = None, ""
        if site.auth.kind == "oidc":
            provider = fetch_discovery(site.auth.issuer)
            secret = read_secret_file(site.auth.client_secret_file)
    except CatalogueError as e:
        exit_with(str(e))
    except (DiscoveryError, SecretFileError) as e:
        exit_with(f"auth: {e}")
    for name, cluster in site.clusters.items():
        problem = cluster.ssh and control_dir_problem(name, cluster.ssh)
        if problem:
            exit_with(problem)
    students = {}
    if site.billing is not None:
        url = database_url(site.billing.database_url)
        try:
            # Migrating is a deploy step, never a side effect of a start: see roots/ops.py.
            require_head(url)
            students = course_students(url)
        except LedgerNotMigrated as e:
            exit_with(str(e))
        except OperationalError as e:
            exit_with(f"cannot read the ledger at {display_url(url)}: {e.orig}")
    return HubFacts(
        apps={a.slug: a.model_dump(mode="json", exclude_none=True) for a in catalogue.apps},
        course_students=students,
        provider=provider,
        client_secret=secret,
    )


def exit_with(message: str):
    print(f"corehour: {message}", file=sys.stderr)
    raise SystemExit(2) from None


def gather_apart(site_path: str | Path) -> HubFacts:
    """:func:`gather` in a child process; its message and exit status become the hub's."""
    done = subprocess.run(
        [sys.executable, "-m", "roots.hub_facts", "--site", str(site_path)],
        capture_output=True,
        text=True,
    )
    # Its warnings belong in the hub's log as much as its refusal does.
    sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise SystemExit(done.returncode or 2)
    return HubFacts.from_json(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the hub's facts as JSON.")
    parser.add_argument("--site", default=os.environ.get("COREHOUR_SITE", DEFAULT_SITE))
    args = parser.parse_args()
    print(gather(load_site_or_exit(args.site)).to_json())


if __name__ == "__main__":
    main()
