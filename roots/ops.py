"""corehour's operations on its databases: migrate, back up, restore (docs/operations.md).

    python -m roots.ops migrate --site SITE [--state-dir DIR]
    python -m roots.ops backup DIR --site SITE [--state-dir DIR]
    python -m roots.ops restore DIR --site SITE [--state-dir DIR]

A composition root like roots/hub.py, and nothing imports it: it alone knows which
databases a site has (the ledger, JupyterHub's own, single sign-on's identities) and where.
How one is copied is centre/db_copy.py's job, and the backup's manifest is
centre/backup_manifest.py's.  ``./corehour migrate|backup|restore`` run it with the env
file's database URLs.  The hub and the billing service only check the ledger's schema: a
migration is a deploy step, run once, after a backup.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from billing_hooks.db import (
    database_url,
    ensure_private_sqlite,
    head_revision,
    sqlite_path,
    upgrade,
)
from centre import backup_manifest
from centre.db_copy import CopyError, display_url, dump, exists, load, schema_revision
from centre.site import DEFAULT_SITE, Site, load_site_or_exit
from extensions.sso.identities import IdentityStore
from roots.hub import (
    DEFAULT_STATE_DIR,
    hub_db_url,
    hub_pid_file,
    identity_db_url,
    slurm_events_token,
)

JUPYTERHUB = Path(sys.executable).with_name("jupyterhub")


def databases(site: Site, state_dir: Path) -> dict[str, str | None]:
    """Each database the site has, by name; None where it has none (a site without billing)."""
    return {
        "ledger": database_url(site.billing.database_url) if site.billing else None,
        "hub": hub_db_url(state_dir),
        "identities": identity_db_url(state_dir),
    }


# -- migrate ------------------------------------------------------------------------------


def migrate(site: Site, state_dir: Path) -> None:
    urls = databases(site, state_dir)
    if urls["ledger"] is None:
        print("ledger: this site has no billing section; nothing to migrate")
    else:
        _changed("ledger", urls["ledger"], lambda: upgrade(urls["ledger"]))
    _changed("hub", urls["hub"], lambda: upgrade_hub_db(urls["hub"]))
    if site.auth.kind == "oidc":
        _private(urls["identities"])
        # One table and no migrations: extensions/sso/identities.py makes it if it is missing.
        IdentityStore(urls["identities"]).engine.dispose()
        print(f"identities {display_url(urls['identities'])}: its table is there")
    else:
        print("identities: single sign-on is off; no database")


def _changed(name: str, url: str, step) -> None:
    before = schema_revision(url)
    step()
    after = schema_revision(url)
    was = f"was at {before}" if before else "was empty"
    print(f"{name} {display_url(url)}: {was}, now at {after}")


def upgrade_hub_db(url: str) -> None:
    """``jupyterhub upgrade-db`` on ``url``, which reaches it in the environment: a password
    on the command line could be read by any local user."""
    _private(url)
    with tempfile.TemporaryDirectory(prefix="corehour-upgrade-db-") as folder:
        config = Path(folder) / "upgrade_db_config.py"
        config.write_text(
            'import os\nc.JupyterHub.db_url = os.environ["COREHOUR_UPGRADE_DB_URL"]\n'
        )
        result = subprocess.run(
            [str(JUPYTERHUB), "upgrade-db", "-f", str(config)],
            cwd=folder,
            env={**os.environ, "COREHOUR_UPGRADE_DB_URL": url},
            capture_output=True,
            text=True,
            timeout=600,
        )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise CopyError(f"jupyterhub upgrade-db of {display_url(url)} failed:\n{tail}")


def _private(url: str) -> None:
    # SQLite would make a new file with the umask's mode; these hold tokens and identities.
    path = sqlite_path(url)
    if path is not None:
        ensure_private_sqlite(path)


# -- backup and restore -------------------------------------------------------------------


def backup(site: Site, state_dir: Path, folder: Path) -> None:
    try:
        folder.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        raise CopyError(f"{folder} already exists; a backup goes into a new folder") from None
    folder.chmod(0o700)
    try:
        copies, skipped = [], {}
        for name, url in databases(site, state_dir).items():
            if url is None or not exists(url):
                skipped[name] = "this site has none" if url is None else "it does not exist"
                print(f"{name}: skipped, {skipped[name]} ({display_url(url or '')})")
                continue
            copy = backup_manifest.copy_of(name, url, schema_revision(url))
            dump(url, folder / copy.file)
            copies.append(copy)
            print(f"{name} {copy.source}: copied to {folder / copy.file}")
        made_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        backup_manifest.write(folder, backup_manifest.to_json(copies, skipped, made_at))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # half a backup must not pass for one
        raise
    print(f"backup in {folder}: it holds secrets (tokens, identities); keep it 0700")


def restore(site: Site, state_dir: Path, folder: Path) -> None:
    print("restore: the hub and the billing service must be stopped (./corehour down)")
    pid = running_hub(state_dir)
    if pid is not None:
        raise CopyError(
            f"JupyterHub (pid {pid}) is running on {state_dir}: stop it and the billing "
            "service with `./corehour down`, then restore"
        )
    plan = backup_manifest.restore_plan(backup_manifest.read(folder), databases(site, state_dir))
    for copy, url in plan:
        load(folder / copy.file, url)
        print(f"{copy.name} {display_url(url)}: restored from {folder / copy.file}")
    ledger = next((url for copy, url in plan if copy.name == "ledger"), None)
    if ledger and schema_revision(ledger) != head_revision():
        print(f"ledger: at {schema_revision(ledger)}, not {head_revision()}: run migrate next")


def running_hub(state_dir: Path) -> int | None:
    """The pid in the hub's pid file if that process is alive."""
    try:
        pid = int(hub_pid_file(state_dir).read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # alive, another user's
    return pid


SLURM_MAIL_DIR = Path("/etc/corehour/slurm-mail.d")


def register_slurm_mail(site, state_dir: Path, name: str, folder: Path = SLURM_MAIL_DIR) -> Path:
    """Tell this host's Slurm MailProg (deploy/slurm/corehour-slurm-mail) to hand job mails to
    this portal's billing service: its URL and the Slurm-events token, root-only."""
    if site.billing is None:
        raise CopyError("the site has no billing section, so no service takes Slurm's mails")
    url = site.billing.service_url.rstrip("/") + "/services/billing/slurm-events"
    config = {"url": url, "token": slurm_events_token(state_dir)}
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        json.dump(config, f)
    draft.replace(path)
    return path


# -- command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m roots.ops", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("migrate", "backup", "restore", "slurm-mail"))
    parser.add_argument("folder", nargs="?", type=Path, help="the backup folder")
    parser.add_argument("--site", default=os.environ.get("COREHOUR_SITE", DEFAULT_SITE))
    parser.add_argument(
        "--state-dir", type=Path, default=os.environ.get("COREHOUR_STATE_DIR", DEFAULT_STATE_DIR)
    )
    parser.add_argument(
        "--name", default="corehour", help="slurm-mail: this portal's file in slurm-mail.d"
    )
    args = parser.parse_args(argv)
    if args.command == "slurm-mail":
        site = load_site_or_exit(args.site)
        try:
            print(register_slurm_mail(site, Path(args.state_dir), args.name))
        except CopyError as e:
            print(f"corehour slurm-mail: {e}", file=sys.stderr)
            return 2
        return 0
    if (args.command == "migrate") != (args.folder is None):
        parser.error(
            f"{args.command} {'takes no' if args.command == 'migrate' else 'needs a'} folder"
        )
    site = load_site_or_exit(args.site)
    state_dir = Path(args.state_dir)
    try:
        if args.command == "migrate":
            migrate(site, state_dir)
        elif args.command == "backup":
            backup(site, state_dir, args.folder.absolute())
        else:
            restore(site, state_dir, args.folder.absolute())
    except CopyError as e:
        print(f"corehour {args.command}: {e}", file=sys.stderr)
        return 2
    except SQLAlchemyError as e:
        # Which database: the URLs in the message are the driver's, without passwords.
        print(f"corehour {args.command}: a database did not answer: {e.orig or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
