"""What a backup writes about its databases and when a restore refuses, before it touches one."""

from __future__ import annotations

import json
import re

import pytest

from centre import backup_manifest
from centre.backup_manifest import copy_of, from_json, read, restore_plan, to_json, write
from centre.db_copy import CopyError, display_url

pytestmark = pytest.mark.unit

PG = "postgresql+psycopg://corehour:s3cr%40t@db.example.org:5432/ledger"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (PG, "postgresql+psycopg://corehour@db.example.org:5432/ledger"),
        ("postgresql://u:pw@h/db?sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("postgresql://u@h/db?password=pw&sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("sqlite:////var/lib/corehour/hub/jupyterhub.sqlite", "sqlite:////var/lib/corehour/hub/jupyterhub.sqlite"),
        ("not a url :pw@", "(a database URL that cannot be read)"),
    ],
)  # fmt: skip
def test_a_url_is_shown_without_its_password(url, shown):
    assert display_url(url) == shown
    assert "pw" not in display_url(url) and "s3cr" not in display_url(url)


def test_the_manifest_names_each_copy_and_keeps_no_password(tmp_path):
    copies = [copy_of("ledger", PG, "0006"), copy_of("hub", f"sqlite:///{tmp_path}/hub.sqlite")]
    manifest = to_json(copies, {"identities": "it does not exist"}, "2026-12-01T00:00:00+00:00")
    write(tmp_path, manifest)
    text = (tmp_path / "manifest.json").read_text()
    assert "s3cr" not in text
    assert (tmp_path / "manifest.json").stat().st_mode & 0o777 == 0o600
    ledger = json.loads(text)["databases"]["ledger"]
    assert ledger == {
        "file": "ledger.pgdump",
        "kind": "postgresql",
        "source": "postgresql+psycopg://corehour@db.example.org:5432/ledger",
        "revision": "0006",
    }
    (tmp_path / "ledger.pgdump").write_bytes(b"x")
    (tmp_path / "hub.sqlite").write_bytes(b"x")
    assert read(tmp_path) == copies


def test_a_folder_without_a_manifest_is_refused(tmp_path):
    with pytest.raises(CopyError, match=r"manifest.json is missing: .* is not a corehour backup"):
        read(tmp_path)


def test_a_manifest_of_another_format_or_damaged_is_refused(tmp_path):
    with pytest.raises(CopyError, match="not a corehour backup manifest of format 1"):
        from_json({"format": 99, "databases": {}}, tmp_path)
    with pytest.raises(CopyError, match="damaged"):
        from_json({"format": 1, "databases": {"ledger": {"file": "x"}}}, tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(CopyError, match="cannot be read"):
        read(tmp_path)


def test_a_manifest_cannot_send_a_restore_outside_its_folder(tmp_path):
    escape = {"file": "../../etc/shadow", "kind": "sqlite", "source": "sqlite:///x"}
    with pytest.raises(
        CopyError, match=re.escape("damaged: ledger is listed as '../../etc/shadow'")
    ):
        from_json({"format": 1, "databases": {"ledger": escape}}, tmp_path)


def test_a_listed_copy_that_is_missing_is_refused(tmp_path):
    write(tmp_path, to_json([copy_of("ledger", PG)], {}, "now"))
    with pytest.raises(
        CopyError, match=re.escape("ledger.pgdump is missing: the backup is incomplete")
    ):
        read(tmp_path)


def test_a_copy_goes_back_only_into_a_database_of_its_kind():
    copies = [copy_of("ledger", PG), copy_of("hub", "sqlite:////s/jupyterhub.sqlite")]
    targets = {"ledger": "sqlite:////s/billing.sqlite", "hub": "sqlite:////s/jupyterhub.sqlite"}
    with pytest.raises(CopyError) as refused:
        restore_plan(copies, targets)
    assert str(refused.value) == (
        "the backup's ledger database is postgresql "
        "(postgresql+psycopg://corehour@db.example.org:5432/ledger) but the target "
        "sqlite:////s/billing.sqlite is sqlite: corehour restores only into a database of the "
        "same kind; point the site at one"
    )
    targets["ledger"] = PG.replace("db.example.org", "other")
    assert [(c.name, url) for c, url in restore_plan(copies, targets)] == [
        ("ledger", targets["ledger"]),
        ("hub", targets["hub"]),
    ]


def test_a_copy_with_no_database_to_go_into_is_refused():
    with pytest.raises(CopyError, match="holds the ledger database but this site has none"):
        restore_plan([copy_of("ledger", PG)], {"ledger": None, "hub": "sqlite:////h.sqlite"})


def test_only_sqlite_and_postgresql_are_copied():
    with pytest.raises(CopyError, match="SQLite and PostgreSQL only, not mysql"):
        backup_manifest.copy_of("ledger", "mysql://u:pw@h/db")
