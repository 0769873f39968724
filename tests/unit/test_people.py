"""Who may run jobs, and which names may be handed out (centre/people.py), and what a job
may read of the site.  The attacks: a job as root, an instructor enrolling a system or admin
name or someone else's account, a job reading the ledger's password from its environment."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import yaml
from jupyterhub.objects import Hub

from centre.people import (
    PersonRules,
    UnixAccount,
    account_of,
    enrolment_refusal,
    job_refusal,
)
from centre.site import parse_site, public_site
from spawners.spawner import CorehourSpawner
from tests.unit.conftest import EXAMPLE_SITE

RULES = PersonRules.of(admin_users=["hpcadmin"], allowed_groups=["corehour"])
PORTAL = frozenset({"corehour", "users"})


@pytest.mark.parametrize(
    ("account", "refusal"),
    [
        (UnixAccount("alice", 1001, PORTAL), None),
        (UnixAccount("root", 0, frozenset({"root", "corehour"})), "reserved name"),
        (UnixAccount("nobody", 65534, PORTAL), "reserved name"),
        (UnixAccount("slurm", 64030, PORTAL), "reserved name"),
        (UnixAccount("hpcadmin", 1002, PORTAL), "portal's admins"),
        (UnixAccount("backupper", 34, PORTAL), "system account (uid 34)"),
        (UnixAccount("bob", 1003, frozenset({"users"})), "not in the portal's group (corehour)"),
        (UnixAccount("ghost", None), "no Unix account named 'ghost'"),
    ],
)
def test_jobs_run_only_as_portal_people(account, refusal):
    found = job_refusal(account, RULES)
    if refusal is None:
        assert found is None
    else:
        assert refusal in found, found


def test_a_site_may_raise_min_uid_and_drop_the_group_rule():
    rules = PersonRules.of(min_uid=5000)
    assert "uid 4999" in job_refusal(UnixAccount("carol", 4999, frozenset()), rules)
    assert job_refusal(UnixAccount("carol", 5000, frozenset()), rules) is None


@pytest.mark.parametrize(
    ("account", "by_admin", "refusal"),
    [
        (UnixAccount("newbie", None), False, None),  # the course makes it
        (UnixAccount("alice", 1001, PORTAL), False, None),  # already a portal person
        (UnixAccount("root", 0, frozenset({"root"})), True, "reserved name"),
        (UnixAccount("hpcadmin", None), False, "portal's admins"),
        (UnixAccount("admin", None), True, "reserved name"),
        (UnixAccount("dbus2", 105, frozenset()), True, "system account (uid 105)"),
        # Someone's own account outside the portal: an instructor may not bring it in.
        (UnixAccount("jsmith", 1500, frozenset({"staff"})), False, "only an admin"),
        (UnixAccount("jsmith", 1500, frozenset({"staff"})), True, None),
    ],
)
def test_enrolment_hands_out_no_system_admin_or_stranger_account(account, by_admin, refusal):
    found = enrolment_refusal(account, RULES, by_admin)
    if refusal is None:
        assert found is None
    else:
        assert refusal in found, found


def test_root_is_read_from_the_real_passwd():
    root = account_of("root")
    assert root.uid == 0 and "root" in root.groups
    assert job_refusal(root, PersonRules.of(reserved_names=())) is not None
    assert account_of("no-such-person-here").uid is None


def site_with_a_password() -> dict:
    data = yaml.safe_load(EXAMPLE_SITE.read_text())
    data["billing"]["database_url"] = "postgresql://corehour:s3cret-pw@db.example/ledger"
    data["hub"]["admin_users"] = ["hpcadmin"]
    return parse_site(data).model_dump(mode="json")


def test_a_job_cannot_read_the_ledger_password_from_its_environment():
    spawner = CorehourSpawner(
        site=site_with_a_password(),
        user=SimpleNamespace(
            name="chtest1", url="/user/chtest1/", id=1, escaped_name="chtest1", settings={}
        ),
        hub=Hub(),
    )
    spawner.api_token = "the-person-s-own-token"
    env = spawner.get_env()
    everything = "\n".join(f"{k}={v}" for k, v in env.items())
    assert "s3cret-pw" not in everything
    assert "db.example" not in everything and "hpcadmin" not in everything
    # What apps need is still there, and parses as a site.
    public = parse_site(json.loads(env["COREHOUR_SITE_JSON"]))
    assert set(public.clusters) == {"alpha", "beta"} and public.billing.rates


def test_the_public_site_keeps_prices_and_rules_and_drops_urls():
    site = parse_site(site_with_a_password())
    data = public_site(site)
    assert set(data) == {"clusters", "images", "profiles", "default_profile", "hub", "billing"}
    assert set(data["hub"]) == {"min_uid", "reserved_names", "allowed_groups"}
    assert "database_url" not in data["billing"] and "service_url" not in data["billing"]
    assert parse_site(data).hub.person_rules().min_uid == 1000


def test_an_app_running_as_root_submits_nothing(tmp_path, monkeypatch):
    from voila_apps.kit import slurm

    site = parse_site(site_with_a_password())
    called = tmp_path / "sbatch-called"
    fake = tmp_path / "sbatch"
    fake.write_text(f"#!/bin/sh\ntouch {called}\necho 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(slurm.SlurmError, match="No job was submitted: 'root' is a reserved name"):
        slurm.submit(site, "alpha", "#!/bin/sh\ntrue\n")  # these tests run as root
    assert not called.exists()
