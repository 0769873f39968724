"""``python -m roots.ops backup`` and ``restore`` against real databases: a ledger with money in
it, JupyterHub's own database and single sign-on's identities, on SQLite and on PostgreSQL
(password auth).  Back up, wipe, restore: balances, monthly statements and a reconcile
come out the same."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from jupyterhub import orm
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_hooks.db import make_engine, session_factory
from billing_hooks.ledger import (
    NewAccount,
    add_charge,
    add_member,
    audited_balance_mc,
    create_account,
    record_transaction,
)
from billing_hooks.models import Account
from billing_hooks.reconcile import compare, ledger_totals
from billing_hooks.statements import build_statement, render_csv
from billing_hooks.usage import JobUsage
from centre.db_copy import schema_revision
from centre.pricing import RateBook, Tres
from centre.site import parse_site
from extensions.sso.identities import Identity, IdentityStore
from roots.hub import identity_db_url
from tests.harness import HUB_BIN, REPO, portal_site
from tests.ledger_db import PG_ADMIN, PG_PASSWORD, drop_postgres, postgres_database_url

pytestmark = pytest.mark.integration

# After the accounts are made: a reconcile skips jobs that ended before their account began.
START = int(time.time()) + 60
MONTH = dt.datetime.fromtimestamp(START, dt.UTC).strftime("%Y-%m")


def new_postgres() -> str:
    name = f"corehour_test_{os.urandom(6).hex()}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return postgres_database_url(name)


def wipe_postgres(url: str) -> None:
    drop_postgres(url)
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(request, tmp_path):
    """A site file, a state folder and the environment ./corehour would give roots.ops."""
    env = {k: v for k, v in os.environ.items() if k not in ("COREHOUR_BILLING_DB",)}
    env.pop("COREHOUR_HUB_DB_URL", None)
    site = portal_site(27950, tmp_path)
    if request.param == "postgresql":
        site["billing"]["database_url"] = new_postgres()
        env["COREHOUR_HUB_DB_URL"] = new_postgres()
        for url in (site["billing"]["database_url"], env["COREHOUR_HUB_DB_URL"]):
            request.addfinalizer(lambda url=url: drop_postgres(url))
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    return {
        "kind": request.param,
        "site": site,
        "ledger": site["billing"]["database_url"],
        "hub": env.get("COREHOUR_HUB_DB_URL", f"sqlite:///{state / 'jupyterhub.sqlite'}"),
        "identities": identity_db_url(state),
        "state": state,
        "env": env,
        "argv": ["--site", str(tmp_path / "site.yaml"), "--state-dir", str(state)],
    }


def ops(deployment, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(HUB_BIN / "python"), "-m", "roots.ops", *args, *deployment["argv"]],
        cwd=REPO,
        env=deployment["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )


def fill_ledger(sessions) -> None:
    """Two projects and a personal account: top-ups, an adjustment, members and charges."""
    with sessions.begin() as session:
        astro = create_account(
            session, NewAccount("proj-astro", "project", "alice", "Astro"), "admin", 500_000
        )
        bio = create_account(session, NewAccount("proj-bio", "project", "dave"), "admin", 90_000)
        alice = create_account(session, NewAccount("alice", "personal", "alice"), "corehour")
        add_member(session, astro, "bob", "member")
        record_transaction(session, astro.id, "topup", 250_000, "admin", "grant 2", "key-1")
        record_transaction(session, bio.id, "adjustment", -1_234, "admin", "correction")
        record_transaction(session, alice.id, "topup", 10_000, "admin", "welcome")
        charges = [
            (astro, "alice", "alpha", "cpu", "101", 0, 3600, 4, 14_400),
            (astro, "alice", "alpha", "cpu", "101", 3600, 5400, 4, 7_200),
            (astro, "bob", "beta", "cpu", "7", 600, 1800, 2, 2_400),
            (bio, "dave", "alpha", "gpu", "88", 0, 3600, 8, 33_333),
            (alice, "alice", "beta", "cpu", "9", 0, 60, 1, 60),
        ]
        for account, user, cluster, partition, job, a, b, cpus, mc in charges:
            key = f"{cluster}:{job}:{a}"
            interval = (START + a, START + b)
            add_charge(session, account.id, user, cluster, partition, job, interval, cpus, mc, key)


def ledger_facts(url: str, site) -> dict:
    """What must survive: every balance (kept and recomputed), every account's statement for
    the month and what a reconcile against sacct's jobs finds."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            accounts = {a.name: a for a in session.scalars(select(Account).order_by(Account.name))}
            balances = {
                name: (a.balance_mc, audited_balance_mc(session, a.id))
                for name, a in accounts.items()
            }
            statements = {}
            for name, account in accounts.items():
                data = build_statement(session, account, MONTH)
                statements[name] = render_csv(dataclasses.replace(data, generated_at=0))
            session.rollback()  # build_statement records its totals; leave the ledger as it was
            jobs = [
                sacct_job("alpha", "101", "alice", "proj-astro", "cpu", (0, 5400), 4),
                sacct_job("beta", "7", "bob", "proj-astro", "cpu", (600, 1800), 2),
                sacct_job("alpha", "88", "dave", "proj-bio", "gpu", (0, 3600), 8),
            ]
            totals = ledger_totals(session, START - 86400, START + 86400)
            reconciled = compare(jobs, totals, accounts, RateBook.from_site(site.billing))
    finally:
        engine.dispose()
    return {"balances": balances, "statements": statements, "reconcile": reconciled}


def sacct_job(cluster, job_id, user, account, partition, span, cpus) -> JobUsage:
    """A finished job as sacct would report it, ``span`` seconds after START."""
    start, end = START + span[0], START + span[1]
    return JobUsage(
        cluster, job_id, user, account, partition, "x", "COMPLETED", start, end, 0, Tres(cpus)
    )


def fill_hub_and_identities(deployment) -> None:
    db = orm.new_session_factory(deployment["hub"])()
    db.add_all([orm.User(name="alice"), orm.User(name="bob", admin=True)])
    db.commit()
    db.close()
    store = IdentityStore(deployment["identities"])
    with Session(store.engine) as session:
        session.add(Identity(issuer="https://idp.example.org", subject="s-1", username="alice"))
        session.commit()
    store.engine.dispose()


def hub_and_identity_facts(deployment) -> tuple:
    db = orm.new_session_factory(deployment["hub"])()
    users = sorted((u.name, u.admin) for u in db.query(orm.User))
    db.close()
    store = IdentityStore(deployment["identities"])
    with Session(store.engine) as session:
        names = [(i.subject, i.username) for i in session.scalars(select(Identity))]
    store.engine.dispose()
    return users, names


def wipe(deployment) -> None:
    if deployment["kind"] == "postgresql":
        wipe_postgres(deployment["ledger"])
        wipe_postgres(deployment["hub"])
    else:
        ledger = Path(deployment["ledger"].split("///", 1)[1])
        for path in ledger.parent.glob(ledger.name + "*"):
            path.unlink()
    for path in deployment["state"].iterdir():
        path.unlink()


def test_a_backup_restores_balances_statements_and_reconcile_exactly(deployment, tmp_path):
    site = parse_site(deployment["site"], "site.yaml")
    migrated = ops(deployment, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    fill_hub_and_identities(deployment)
    writer = make_engine(deployment["ledger"])  # held open: SQLite keeps the newest pages in -wal
    fill_ledger(session_factory(writer))
    before = ledger_facts(deployment["ledger"], site)
    assert before["balances"]["proj-astro"] == (500_000 + 250_000 - 24_000,) * 2
    assert before["reconcile"][0] == 3 and before["reconcile"][1]  # 33_333 mc is not sacct's
    hub_before = hub_and_identity_facts(deployment)
    assert hub_before == ([("alice", False), ("bob", True)], [("s-1", "alice")])
    if deployment["kind"] == "sqlite":
        assert Path(deployment["ledger"].split("///", 1)[1] + "-wal").stat().st_size > 0

    folder = tmp_path / "backups" / "one"
    made = ops(deployment, "backup", str(folder))
    writer.dispose()
    assert made.returncode == 0, made.stderr
    assert folder.stat().st_mode & 0o777 == 0o700
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()} == {
        name: 0o600
        for name in (
            "manifest.json",
            *(
                f"{db}.{'sqlite' if deployment['kind'] == 'sqlite' else 'pgdump'}"
                for db in ("ledger", "hub")
            ),
            "identities.sqlite",
        )
    }
    manifest = (folder / "manifest.json").read_text()
    assert PG_PASSWORD not in manifest
    assert json.loads(manifest)["databases"]["ledger"]["revision"] == "0007"

    wipe(deployment)
    assert schema_revision(deployment["ledger"]) is None  # wiped: nothing left to read
    assert schema_revision(deployment["hub"]) is None
    restored = ops(deployment, "restore", str(folder))
    assert restored.returncode == 0, restored.stderr
    for name in ("ledger", "hub", "identities"):
        assert f"{name} " in restored.stdout and "restored from" in restored.stdout

    assert ledger_facts(deployment["ledger"], site) == before
    assert hub_and_identity_facts(deployment) == hub_before


def test_backup_skips_what_does_not_exist_and_restore_refuses_a_running_hub(tmp_path):
    site = portal_site(27960, tmp_path)
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    deployment = {
        "env": {k: v for k, v in os.environ.items() if not k.startswith("COREHOUR_")},
        "argv": ["--site", str(tmp_path / "site.yaml"), "--state-dir", str(tmp_path / "state")],
    }
    assert ops(deployment, "migrate").returncode == 0
    made = ops(deployment, "backup", str(tmp_path / "b"))
    assert made.returncode == 0, made.stderr
    assert "identities: skipped, it does not exist" in made.stdout
    assert "identities.sqlite" not in {p.name for p in (tmp_path / "b").iterdir()}

    (tmp_path / "state" / "jupyterhub.pid").write_text(str(os.getpid()))
    refused = ops(deployment, "restore", str(tmp_path / "b"))
    assert refused.returncode == 2
    assert f"JupyterHub (pid {os.getpid()}) is running on {tmp_path / 'state'}" in refused.stderr

    again = ops(deployment, "backup", str(tmp_path / "b"))
    assert (
        again.returncode == 2 and "already exists; a backup goes into a new folder" in again.stderr
    )
