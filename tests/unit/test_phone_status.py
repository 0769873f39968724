"""The phone view's jobs and balances, from the shared squeue answer (extensions/phone/status.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from centre.pricing import RateBook
from centre.site import parse_site
from centre.slurm_json import JobInfo
from extensions.phone.status import Account, Server, account_rows, job_rows

pytestmark = pytest.mark.unit

NOW = 1_800_000_000


def info(job_id, state, user="ann", start=None, account="u-ann", tres="", name="job", priority=1):
    return JobInfo(
        job_id, state, "Priority" if state == "PENDING" else "None", user, "cpu", "",
        start, NOW - 1000 + int(job_id), priority, tres, name=name, account=account,
    )  # fmt: skip


@pytest.fixture
def rates(site):
    return RateBook.from_site(site.billing)


def test_the_person_sees_their_own_server_and_batch_job_with_costs_and_queue_place(site, rates):
    queue = {
        "11": info(
            "11", "RUNNING", start=NOW - 1800, tres="cpu=2,mem=4G,node=1", name="jupyterhub"
        ),
        "12": info("12", "RUNNING", start=NOW - 3600, tres="cpu=1,mem=1G,node=1", name="fit"),
        "13": info("13", "PENDING", user="bob", priority=9),
        "14": info("14", "PENDING", start=NOW + 600),
        "15": info("15", "COMPLETED", start=NOW - 100),
    }
    accounts = {"u-ann": Account("u-ann", "Ann", 5000, Decimal(2))}
    rows = job_rows(
        "ann", {"alpha": queue}, [Server("", "alpha", "11", "/user/ann/")], accounts, rates, NOW
    )
    # Running, then queued, then just ended; newest first in each.
    assert [(r["job_id"], r["phase"], r["kind"]) for r in rows] == [
        ("12", "running", "batch"),
        ("11", "running", "server"),
        ("14", "queued", "batch"),
        ("15", "ended", "batch"),
    ]
    batch, server, queued = rows[0], rows[1], rows[2]
    assert server["url"] == "/user/ann/" and server["elapsed_s"] == 1800
    # Twice the standard rate: the account's multiplier; an hour of it is its hourly price.
    standard = job_rows("ann", {"alpha": queue}, [], {}, rates, NOW)[0]
    assert batch["per_hour_mc"] == 2 * standard["per_hour_mc"] > 0
    assert batch["cost_so_far"] == batch["per_hour"]
    # bob's job is ahead in the queue, and not shown.
    assert queued["queue_position"] == 2 and queued["expected_start"] == NOW + 600
    assert all(r["job_id"] != "13" for r in rows)


def test_the_balance_runs_out_when_the_running_jobs_have_spent_it(site, rates):
    queue = {"12": info("12", "RUNNING", start=NOW - 60, tres="cpu=1,mem=1G,node=1")}
    account = Account("u-ann", "Ann", 0, Decimal(1))
    jobs = job_rows("ann", {"alpha": queue}, [], {"u-ann": account}, rates, NOW)
    burn = jobs[0]["per_hour_mc"]
    two_hours = Account("u-ann", "Ann", 2 * burn, Decimal(1))
    (row,) = account_rows([two_hours], jobs, NOW)
    assert row["runs_out_at"] == NOW + 7200
    idle = Account("u-other", "Project", 100, Decimal(1))
    (quiet,) = account_rows([idle], jobs, NOW)
    assert quiet["runs_out_at"] is None and quiet["burn_per_hour"] == "0.000"


def test_without_billing_jobs_show_without_prices(site):
    free = parse_site({**site.model_dump(mode="json"), "billing": None}, "free")
    assert free.billing is None
    queue = {"12": info("12", "RUNNING", start=NOW - 60, tres="cpu=1")}
    (row,) = job_rows("ann", {"alpha": queue}, [], {}, None, NOW)
    assert row["per_hour"] is None and row["cost_so_far"] is None and row["elapsed_s"] == 60
