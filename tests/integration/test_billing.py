"""Metering against real Slurm accounting: exact totals, restarts, exhaustion, access."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from billing_hooks import reconcile
from billing_hooks.models import Account, Charge, MeteredJob, Transaction
from tests.billing_checks import (
    expected_mc,
    ledger_job,
    sacct_job,
    sbatch_as,
    wait_finished,
    wait_until,
)
from tests.harness import (
    SLURM_CONF,
    TEST_ADMIN,
    alive_jobs,
    ensure_users,
    slurm,
)

pytestmark = pytest.mark.integration

BILLING_USERS = ("chtest4", "chtest5")


@pytest.fixture(scope="module")
def billing_users(portal):
    ensure_users(*BILLING_USERS)
    return BILLING_USERS


@pytest.fixture(scope="module")
def admin_token(portal):
    return portal.user_token(TEST_ADMIN)


@pytest.fixture(scope="module")
def ledger(portal):
    engine = create_engine(portal.billing_db)
    yield engine
    engine.dispose()


def test_cpu_and_gpu_jobs_cost_exactly_tres_times_elapsed_times_rate(portal, tokens, ledger):
    token = tokens["chtest1"]
    account = portal.wait_billing(token)["accounts"][0]["name"]
    jobs = [
        (
            "alpha",
            sbatch_as(
                "chtest1",
                "alpha",
                f"--account={account}",
                "-p",
                "cpu",
                "-c",
                "2",
                "--wrap",
                "sleep 4",
            ),
        ),
        (
            "alpha",
            sbatch_as(
                "chtest1",
                "alpha",
                f"--account={account}",
                "-p",
                "gpu",
                "--gres=gpu:1",
                "--wrap",
                "sleep 3",
            ),
        ),
        (
            "beta",
            sbatch_as(
                "chtest1",
                "beta",
                f"--account={account}",
                "-p",
                "bigmem",
                "--mem=20G",
                "--wrap",
                "sleep 3",
            ),
        ),
    ]
    for cluster, job_id in jobs:
        wait_finished(ledger, cluster, job_id)
        sacct = sacct_job(cluster, job_id)
        amount, cpu_seconds, _rows = ledger_job(ledger, cluster, job_id)
        assert sacct["time"]["elapsed"] > 0
        assert amount == expected_mc(sacct), (cluster, job_id, sacct["tres"]["allocated"])
        cpus = next(t["count"] for t in sacct["tres"]["allocated"] if t["type"] == "cpu")
        assert cpu_seconds == cpus * sacct["time"]["elapsed"]

    bills = portal.billing("GET", f"api/accounts/{account}/charges", token).json()["jobs"]
    by_id = {(b["cluster"], b["job_id"]): b for b in bills}
    gpu_bill = by_id[jobs[1]]
    assert gpu_bill["gpus"] == 1 and gpu_bill["partition"] == "gpu"
    assert Decimal(gpu_bill["gpu_hours"]) > 0

    # The reconcile command agrees, job by job, for everything finished today.
    today = time.strftime("%Y-%m-%d", time.gmtime())
    checked, differences = reconcile.reconcile(
        _site_model(portal), portal.billing_db, *_day_bounds(today)
    )
    assert differences == []
    assert checked >= 3


def _site_model(portal):
    from centre.site import parse_site

    return parse_site(portal.site)


def _day_bounds(day: str) -> tuple[int, int]:
    import calendar

    start = calendar.timegm(time.strptime(day, "%Y-%m-%d"))
    return start, start + 86400


def test_a_meter_killed_mid_job_neither_loses_nor_doubles_a_second(portal, tokens, ledger):
    token = tokens["chtest2"]
    account = portal.wait_billing(token)["accounts"][0]["name"]
    job_id = sbatch_as("chtest2", "alpha", f"--account={account}", "-c", "1", "--wrap", "sleep 300")
    wait_until(
        lambda: ledger_job_or_none(ledger, "alpha", job_id), 30, "the running job was never charged"
    )
    before = portal.billing_service_pid()
    os.kill(before, signal.SIGKILL)
    # The hub notices its service exited and starts it again.
    wait_until(
        lambda: _other_pid(portal, before), 60, "the hub did not restart the billing service"
    )
    assert any(str(j["job_id"]) == job_id for j in alive_jobs("alpha", "chtest2"))
    time.sleep(3)  # at least one cycle of the new meter while the job still runs
    slurm("alpha", "scancel", job_id)

    wait_finished(ledger, "alpha", job_id)
    amount, _cpu, rows = ledger_job(ledger, "alpha", job_id)
    assert amount == expected_mc(sacct_job("alpha", job_id))
    assert rows <= 2  # one row per hour bucket, however many cycles and restarts


def test_a_requeued_jobs_first_run_is_billed_up_to_the_requeue(portal, tokens, ledger):
    """A job that Slurm requeues (node failure, preemption, ``scontrol requeue``) ran and was
    allocated before it went back to the queue: that run is settled at its own end, not left
    open and unbilled after the last cycle that saw it."""
    user = "chtest3"
    account = portal.wait_billing(tokens[user])["accounts"][0]["name"]
    job_id = sbatch_as(
        user, "alpha", f"--account={account}", "-c", "1", "--requeue", "--wrap", "sleep 300"
    )
    try:
        wait_until(
            lambda: ledger_job_or_none(ledger, "alpha", job_id), 30, "the job was never charged"
        )
        time.sleep(2)
        slurm("alpha", "scontrol", "requeue", job_id)
        runs = json.loads(slurm("alpha", "sacct", "--json", "-D", "-j", job_id).stdout)["jobs"]
        first = next(r for r in runs if r["state"]["current"] == "REQUEUED")

        def first_run_settled():
            with Session(ledger) as session:
                return session.scalar(
                    select(MeteredJob.finished).where(
                        MeteredJob.cluster == "alpha",
                        MeteredJob.job_id == job_id,
                        MeteredJob.job_start == first["time"]["start"],
                    )
                )

        wait_until(first_run_settled, 30, "the first run of the requeued job was never settled")
        with Session(ledger) as session:
            billed = session.scalar(
                select(func.sum(Charge.amount_mc)).where(
                    Charge.cluster == "alpha",
                    Charge.job_id == job_id,
                    Charge.job_start == first["time"]["start"],
                )
            )
        assert billed == expected_mc(first)
    finally:
        slurm("alpha", "scancel", job_id)


def ledger_job_or_none(ledger, cluster, job_id):
    with Session(ledger) as session:
        return session.scalar(
            select(func.count())
            .select_from(Charge)
            .where(Charge.cluster == cluster, Charge.job_id == job_id)
        )


def _other_pid(portal, old: int) -> bool:
    try:
        return portal.billing_service_pid() != old
    except AssertionError:
        return False


def available_mc(portal, token, account) -> int:
    return portal.billing("GET", f"api/accounts/{account}", token).json()["available_mc"]


def test_an_account_that_runs_out_is_stopped_and_a_top_up_unblocks_it(
    portal, billing_users, admin_token, ledger
):
    user = "chtest4"
    token = portal.user_token(user)
    account = portal.wait_billing(token)["accounts"][0]["name"]
    portal.start_and_wait(
        [(user, "")], {user: token}, profile="cpu", cluster="alpha", cores=1, memory_gb=1
    )
    batch = sbatch_as(
        user, "alpha", f"--account={account}", "-c", "1", "--mem=1G", "--wrap", "sleep 300"
    )
    wait_until(
        lambda: ledger_job_or_none(ledger, "alpha", batch), 30, "the batch job was never charged"
    )

    # Leave about 15 s of credit for the two jobs (each about 10.1 mc/s).
    left = 300
    response = portal.billing(
        "POST",
        f"api/accounts/{account}/transactions",
        admin_token,
        json={
            "kind": "adjustment",
            "amount": str(Decimal(left - available_mc(portal, admin_token, account)) / 1000),
            "reason": "test: leave a little credit",
        },
    )
    assert response.status_code == 201, response.text
    adjusted_at = time.monotonic()

    wait_until(lambda: portal.server_model(user) is None, 60, "the server was not stopped")
    wait_until(lambda: not alive_jobs("alpha", user), 30, "the batch job was not cancelled")
    # 300 mc at about 20 mc/s lasts 15 s; then one cycle (2 s) plus a margin for stopping.
    assert time.monotonic() - adjusted_at < 15 + 2 + 20

    with Session(ledger) as session:
        jobs = session.execute(
            select(MeteredJob.cluster, MeteredJob.job_id).where(MeteredJob.username == user)
        ).all()
    for cluster, job_id in jobs:
        wait_finished(ledger, cluster, job_id)
    # Overdraft: at most the cost of one cycle and the time Slurm took to stop both jobs.
    assert available_mc(portal, admin_token, account) >= -2 * 10.1 * (2 + 6)

    notices = portal.billing("GET", "api/me", token).json()["notices"]
    assert any("ran out of credits" in n["message"] for n in notices), notices

    refused = portal.start_server(user, token, profile="cpu", cluster="alpha")
    assert refused.status_code == 402, refused.text
    message = refused.json()["message"]
    assert "Not enough credits" in message and "per hour" in message and "top it up" in message

    # Slurm itself refuses the account's jobs, also those submitted outside the portal, and
    # the attack of naming the account every user is associated with, which no ledger
    # account pays for, is refused too.
    for escape in (account, "corehour"):
        held = subprocess.run(
            [
                "sudo",
                "-u",
                user,
                "env",
                f"SLURM_CONF={SLURM_CONF['alpha']}",
                "sbatch",
                f"--account={escape}",
                "--wrap",
                "true",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert held.returncode != 0, (escape, held.stdout)

    response = portal.billing(
        "POST",
        f"api/accounts/{account}/transactions",
        admin_token,
        json={"kind": "topup", "amount": "50", "reason": "test: top-up"},
    )
    assert response.status_code == 201, response.text
    # Released by the top-up itself: a terminal job right after it runs, without waiting
    # for the next metering cycle.
    assert _held(ledger, account) is False
    assert sbatch_as(user, "alpha", f"--account={account}", "--wrap", "true")
    response = portal.start_server(user, token, profile="cpu", cluster="alpha")
    assert response.status_code in (201, 202), response.text
    try:
        portal.wait_ready(user)
    finally:
        portal.stop_all([user])


def _held(ledger, account: str) -> bool:
    with Session(ledger) as session:
        return session.scalar(select(Account.held_in_slurm).where(Account.name == account))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "topup", "amount": "-5", "reason": "x"}, "amount"),
        ({"kind": "topup", "amount": "0", "reason": "x"}, "amount"),
        ({"kind": "topup", "amount": "NaN", "reason": "x"}, "amount"),
        ({"kind": "topup", "amount": "1e9", "reason": "x"}, "amount"),
        ({"kind": "topup", "amount": True, "reason": "x"}, "amount"),
        ({"kind": "topup", "amount": "0.0001", "reason": "x"}, "amount"),
        ({"kind": "topup", "amount": "5", "reason": ""}, "reason"),
        ({"kind": "gift", "amount": "5", "reason": "x"}, "kind"),
    ],
)
def test_bad_top_ups_are_refused_and_write_nothing(
    portal, tokens, admin_token, ledger, body, field
):
    account = portal.wait_billing(tokens["chtest3"])["accounts"][0]["name"]
    before = _money_rows(ledger, account)
    response = portal.billing(
        "POST", f"api/accounts/{account}/transactions", admin_token, json=body
    )
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert _money_rows(ledger, account) == before


def test_a_top_up_for_an_unknown_account_or_with_a_nan_literal_is_refused(
    portal, admin_token, ledger
):
    response = portal.billing(
        "POST",
        "api/accounts/no-such-account/transactions",
        admin_token,
        json={"kind": "topup", "amount": "5", "reason": "x"},
    )
    assert response.status_code == 400
    assert response.json()["field"] == "account"
    raw = portal.billing(
        "POST",
        "api/accounts/u-chtest3/transactions",
        admin_token,
        data='{"kind": "topup", "amount": NaN, "reason": "x"}',
    )
    assert raw.status_code == 400
    with Session(ledger) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(Transaction)
                .where(Transaction.actor == TEST_ADMIN, Transaction.reason == "x")
            )
            == 0
        )


def _money_rows(ledger, account: str):
    with Session(ledger) as session:
        balance = session.scalar(select(Account.balance_mc).where(Account.name == account))
        count = session.scalar(select(func.count()).select_from(Transaction))
    return balance, count


def test_only_admins_top_up(portal, tokens):
    response = portal.billing(
        "POST",
        "api/accounts/u-chtest1/transactions",
        tokens["chtest1"],
        json={"kind": "topup", "amount": "1000", "reason": "free money"},
    )
    assert response.status_code == 403


def test_a_person_cannot_read_another_persons_bills(portal, tokens):
    portal.wait_billing(tokens["chtest1"])
    portal.wait_billing(tokens["chtest2"])
    for path in (
        "api/accounts/u-chtest1",
        "api/accounts/u-chtest1/charges",
        "api/accounts/u-chtest1/members",
        "api/accounts/u-chtest1/transactions",
        "usage?account=u-chtest1",
        "usage/statement.csv?account=u-chtest1",
        "usage/statement.pdf?account=u-chtest1",
        "admin",
        "api/usage",
    ):
        response = portal.billing("GET", path, tokens["chtest2"], allow_redirects=False)
        assert response.status_code == 403, (path, response.status_code, response.text[:200])
    own = portal.billing("GET", "api/accounts/u-chtest2/charges", tokens["chtest2"])
    assert own.status_code == 200
    listed = portal.billing("GET", "api/accounts", tokens["chtest2"]).json()["accounts"]
    assert [a["name"] for a in listed] == ["u-chtest2"]


def test_the_refusal_names_price_balance_and_how_to_top_up(portal, tokens):
    token = tokens["chtest3"]
    portal.wait_billing(token)
    # 4 GPUs and 8 cores: (4 × 72 + 8 × 36 + 16 × 0.36) credits per hour; 15 minutes of that
    # is more than the 100 credits a new account opens with.
    response = portal.start_server(
        "chtest3", token, profile="gpu", cluster="alpha", gpus=4, cores=8, memory_gb=16
    )
    assert response.status_code == 402, response.text
    message = response.json()["message"]
    assert "581.760 credits per hour" in message
    assert "minimum run of 15 minutes" in message
    balance = portal.billing("GET", "api/accounts/u-chtest3", token).json()["balance"]
    assert f"balance {balance}" in message
    assert "top it up" in message and "/services/billing/usage" in message
    assert not alive_jobs("alpha", "chtest3")


def test_the_spawn_form_and_hub_pages_show_price_balance_and_links(portal, tokens):
    portal.wait_billing(tokens["chtest3"])
    browser = portal.login("chtest3")
    page = browser.get(f"{portal.url}/hub/spawn/chtest3", timeout=30)
    assert page.status_code == 200
    assert 'name="account"' in page.text
    assert "u-chtest3" in page.text
    assert '"core_hour": "36"' in page.text
    assert 'id="ch-price-per-hour"' in page.text
    home = browser.get(f"{portal.url}/hub/home", timeout=30).text
    assert 'id="nav-usage"' in home and "/services/billing/usage" in home
    assert 'id="corehour-balance"' in home


def test_an_idle_server_is_stopped_by_its_profiles_timeout_and_the_person_is_told(portal, tokens):
    user = "chtest2"
    token = tokens[user]
    portal.wait_billing(token)
    portal.start_and_wait([(user, "")], tokens, profile="quick-idle", cluster="alpha")
    started = time.monotonic()
    # The profile's timeout is 1 minute, checked every 5 s; nothing touches the server.
    wait_until(lambda: portal.server_model(user) is None, 120, "the idle server was not stopped")
    assert time.monotonic() - started >= 50
    wait_until(lambda: not alive_jobs("alpha", user), 30, "the idle server's job is still running")
    notices = portal.billing("GET", "api/me", token).json()["notices"]
    assert any("after 1 minute without activity" in n["message"] for n in notices), notices


def test_warnings_at_20_and_5_percent_left_appear_on_the_hub_pages(
    portal, billing_users, admin_token
):
    user = "chtest5"
    token = portal.user_token(user)
    account = portal.wait_billing(token)["accounts"][0]["name"]

    def leave(credits_left: str) -> None:
        now = Decimal(available_mc(portal, admin_token, account)) / 1000
        response = portal.billing(
            "POST",
            f"api/accounts/{account}/transactions",
            admin_token,
            json={
                "kind": "adjustment",
                "amount": str(Decimal(credits_left) - now),
                "reason": "test: spend",
            },
        )
        assert response.status_code == 201, response.text

    def warned(percent: str):
        notices = portal.billing("GET", "api/me", token).json()["notices"]
        return [n for n in notices if f"has {percent}% of its credits left" in n["message"]]

    leave("15")  # of the 100 credits the account opened with
    wait_until(lambda: warned("15"), 30, "no warning at 20 %")
    home = portal.login(user).get(f"{portal.url}/hub/home", timeout=30).text
    assert "15% of its credits left" in home

    leave("4")
    wait_until(lambda: warned("4"), 30, "no warning at 5 %")
    assert len(warned("15")) == 1  # each threshold warns once per top-up


def test_a_project_account_is_shared_by_its_members_and_charged_through_slurm(
    portal, tokens, admin_token, ledger
):
    for user in ("chtest1", "chtest2", "chtest3"):
        portal.wait_billing(tokens[user])
    created = portal.billing(
        "POST",
        "api/accounts",
        admin_token,
        json={"name": "proj-astro", "kind": "project", "owner": "chtest1", "display_name": "Astro"},
    )
    assert created.status_code == 201, created.text
    topped = portal.billing(
        "POST",
        "api/accounts/proj-astro/transactions",
        admin_token,
        json={"kind": "topup", "amount": "50", "reason": "test: project grant"},
    )
    assert topped.status_code == 201, topped.text

    # The owner manages it: adds a member, who then reads it but not its member list.
    added = portal.billing(
        "POST", "api/accounts/proj-astro/members", tokens["chtest1"], json={"username": "chtest2"}
    )
    assert added.status_code == 201, added.text
    listed = portal.billing("GET", "api/accounts", tokens["chtest2"]).json()["accounts"]
    assert {a["name"]: a["role"] for a in listed}["proj-astro"] == "member"
    assert (
        portal.billing("GET", "api/accounts/proj-astro/members", tokens["chtest2"]).status_code
        == 403
    )
    members = portal.billing("GET", "api/accounts/proj-astro/members", tokens["chtest1"]).json()
    assert {m["username"] for m in members["members"]} == {"chtest1", "chtest2"}

    # A personal account is not shared, and a member cannot add members.
    shared = portal.billing(
        "POST", "api/accounts/u-chtest1/members", tokens["chtest1"], json={"username": "chtest2"}
    )
    assert shared.status_code == 400 and shared.json()["field"] == "account"
    assert (
        portal.billing(
            "POST",
            "api/accounts/proj-astro/members",
            tokens["chtest2"],
            json={"username": "chtest3"},
        ).status_code
        == 403
    )

    # Someone outside the project cannot charge it.
    outsider = portal.start_server(
        "chtest3", tokens["chtest3"], profile="cpu", account="proj-astro"
    )
    assert outsider.status_code == 400 and "proj-astro" in outsider.json()["message"]
    assert not alive_jobs("alpha", "chtest3") and not alive_jobs("beta", "chtest3")

    # The member's server runs under the project's Slurm account and is charged to it.
    portal.start_and_wait(
        [("chtest2", "")], tokens, profile="cpu", cluster="alpha", account="proj-astro"
    )
    (job,) = alive_jobs("alpha", "chtest2")
    assert job["account"] == "proj-astro"
    job_id = str(job["job_id"])
    wait_until(
        lambda: ledger_job_or_none(ledger, "alpha", job_id), 30, "the project job was never charged"
    )
    with Session(ledger) as session:
        charged_to = session.scalar(
            select(Account.name)
            .join(Charge, Charge.account_id == Account.id)
            .where(Charge.job_id == job_id, Charge.cluster == "alpha")
        )
    assert charged_to == "proj-astro"
