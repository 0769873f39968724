"""An upgrade from release 8efa8d7, whose ledger was at revision 0004: the hub and the billing
service refuse it and say to migrate, ``python -m roots.ops migrate`` brings it to head, and
every balance, member, course and enrolment written by the old schema reads the same with
today's code.  The rows are raw INSERTs in 0004's columns (migrations 0001-0004)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess

import pytest
import sqlalchemy as sa
import yaml
from alembic import command
from sqlalchemy import select
from sqlalchemy.orm import Session

from billing_hooks.db import alembic_config, head_revision, make_engine
from billing_hooks.ledger import accounts_of, audited_balance_mc
from billing_hooks.models import Account, Course, Enrolment
from centre.site import parse_site
from extensions.courses.store import course_students
from roots.hub_facts import gather
from tests.harness import HUB_BIN, REPO, portal_site
from tests.ledger_db import PG_ADMIN, drop_postgres, postgres_database_url

pytestmark = pytest.mark.integration

JSON_COLUMNS = ("profiles", "images", "materials")
# name → (kind, owner, top-ups, charges): the balance is what 8efa8d7 kept in balance_mc.
ACCOUNTS = {
    "proj-astro": ("project", "alice", [500_000, -2_500], [14_400, 7_200]),
    "alice": ("personal", "alice", [10_000], [60]),
    "course-chem101": ("course", "inst", [300_000], [1_234]),
}


@pytest.fixture(params=["sqlite", "postgresql"])
def old_ledger(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'billing.sqlite'}"
    else:
        import psycopg

        name = f"corehour_test_{os.urandom(6).hex()}"
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = postgres_database_url(name)
        request.addfinalizer(lambda: drop_postgres(url))
    command.upgrade(alembic_config(url), "0004")
    engine = sa.create_engine(url)
    with engine.begin() as db:
        fill_0004(db)
    engine.dispose()
    site = portal_site(27970, tmp_path)
    site["billing"]["database_url"] = url
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    return url, site, tmp_path


def insert(db, table: str, **values) -> None:
    columns = [sa.column(k, sa.JSON if k in JSON_COLUMNS else None) for k in values]
    db.execute(sa.insert(sa.table(table, *columns)).values(**values))


def fill_0004(db) -> None:
    for i, (name, (kind, owner, credits, charges)) in enumerate(ACCOUNTS.items(), start=1):
        balance = sum(credits) - sum(charges)
        insert(db, "account", id=i, name=name, kind=kind, owner=owner, display_name=name,
               tier="standard", price_multiplier=1, credit_limit_mc=0,
               balance_mc=balance, reference_mc=credits[0], status="active",
               held_in_slurm=False, created_at=1_700_000_000)  # fmt: skip
        insert(db, "membership", id=i, account_id=i, username=owner, role="manager")
        for j, amount in enumerate(credits):
            insert(db, "transaction", id=10 * i + j, account_id=i,
                   kind="topup" if amount > 0 else "adjustment", amount_mc=amount,
                   actor="admin", reason="8efa8d7", created_at=1_700_000_100 + j,
                   idempotency_key=f"old-{i}-{j}")  # fmt: skip
        for j, amount in enumerate(charges):
            start = 1_700_000_000 + 3600 * j
            insert(db, "charge", id=10 * i + j, idempotency_key=f"alpha:{i}:{start}",
                   account_id=i, username=owner, cluster="alpha", partition="cpu",
                   job_id=str(100 + i), job_name="old", job_start=1_700_000_000,
                   interval_start=start, interval_end=start + 3600, cpus=2, gpus=0, mem_mb=0,
                   cpu_seconds=7200, gpu_seconds=0, mem_mb_seconds=0, amount_mc=amount,
                   closed=True)  # fmt: skip
    insert(db, "membership", id=10, account_id=1, username="bob", role="member")
    insert(db, "course", id=1, slug="chem101", title="Chemistry 101", account_id=3,
           term_start=dt.date(2027, 1, 11), term_end=dt.date(2027, 5, 28), student_cap_mc=5_000,
           default_profile="cpu", profiles=["cpu"], images=["base"], materials=None,
           created_by="admin", created_at=1_700_000_000)  # fmt: skip
    enrolled = [
        ("s01", "student", "csv"),
        ("s02", "student", "api"),
        ("ta1", "ta", "csv"),
        ("inst", "instructor", "sso"),
    ]
    for i, (name, role, source) in enumerate(enrolled, start=1):
        insert(db, "enrolment", id=i, course_id=1, username=name, role=role, display_name="",
               email="", cap_mc=None, source=source, created_at=1_700_000_000)  # fmt: skip


def run(argv: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COREHOUR_")}
    return subprocess.run(
        [str(HUB_BIN / "python"), *argv, "--site", str(tmp_path / "site.yaml")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_hub_and_the_billing_service_refuse_an_old_ledger_and_say_to_migrate(
    old_ledger, capsys
):
    _url, site, tmp_path = old_ledger
    with pytest.raises(SystemExit) as stopped:
        gather(parse_site(site, "site.yaml"))
    assert stopped.value.code == 2
    said = capsys.readouterr().err
    assert f"is at revision 0004, this corehour needs {head_revision()}" in said
    assert "run `./corehour migrate` (or `python -m roots.ops migrate --site SITE`)" in said
    assert "corehour_tests:" not in said  # the URL is shown without its password

    service = run(["-m", "roots.billing"], tmp_path)
    assert service.returncode != 0
    assert "corehour billing: the ledger at" in service.stderr
    assert "is at revision 0004" in service.stderr


def test_an_empty_ledger_is_refused_too_and_migrate_creates_it(tmp_path, capsys):
    site = portal_site(27980, tmp_path)
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    with pytest.raises(SystemExit):
        gather(parse_site(site, "site.yaml"))
    assert "is empty (no ledger tables yet)" in capsys.readouterr().err
    migrated = run(["-m", "roots.ops", "migrate", "--state-dir", str(tmp_path / "s")], tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert f"was empty, now at {head_revision()}" in migrated.stdout
    assert gather(parse_site(site, "site.yaml")).course_students == {}


def test_migrate_brings_a_0004_ledger_to_head_and_keeps_every_balance_and_course(old_ledger):
    url, site, tmp_path = old_ledger
    migrated = run(["-m", "roots.ops", "migrate", "--state-dir", str(tmp_path / "s")], tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert f"was at 0004, now at {head_revision()}" in migrated.stdout
    assert "corehour_tests:" not in migrated.stdout

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            for name, (_kind, _owner, credits, charges) in ACCOUNTS.items():
                account = session.scalar(select(Account).where(Account.name == name))
                expected = sum(credits) - sum(charges)
                assert (account.balance_mc, audited_balance_mc(session, account.id)) == (
                    expected,
                    expected,
                ), name
            assert [(a.name, role) for a, role in accounts_of(session, "bob")] == [
                ("proj-astro", "member")
            ]
            course = session.scalar(select(Course).where(Course.slug == "chem101"))
            assert (course.title, course.term_start, course.profiles) == (
                "Chemistry 101",
                dt.date(2027, 1, 11),
                ["cpu"],
            )
            enrolled = session.execute(
                select(Enrolment.username, Enrolment.listed_role, Enrolment.sso_role).order_by(
                    Enrolment.username
                )
            ).all()
            assert [tuple(row) for row in enrolled] == [
                ("inst", None, "instructor"),
                ("s01", "student", None),
                ("s02", "student", None),
                ("ta1", "ta", None),
            ]
    finally:
        engine.dispose()
    assert course_students(url) == {"chem101": ["s01", "s02"]}
    # and the hub now starts on it: gather reads the course roles instead of refusing
    assert gather(parse_site(site, "site.yaml")).course_students == {"chem101": ["s01", "s02"]}
