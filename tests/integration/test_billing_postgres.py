"""The PostgreSQL tier: the whole portal with its ledger on PostgreSQL, against real Slurm."""

import pytest
from sqlalchemy import create_engine

from tests.billing_checks import expected_mc, ledger_job, sacct_job, sbatch_as, wait_finished
from tests.harness import Portal, portal_site
from tests.ledger_db import drop_postgres, postgres_url

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_portal(tmp_path_factory, users):
    url = postgres_url()
    workdir = tmp_path_factory.mktemp("pg-portal")
    site = portal_site(27400, workdir)
    site["billing"]["database_url"] = url
    portal = Portal(workdir, 27400, site=site).start()
    yield portal
    portal.stop_all(users)
    portal.stop()
    drop_postgres(url)


def test_a_server_and_a_batch_job_are_charged_exactly_on_postgresql(pg_portal):
    portal = pg_portal
    user = "chtest3"
    token = portal.user_token(user)
    account = portal.wait_billing(token)["accounts"][0]["name"]
    engine = create_engine(portal.billing_db)
    try:
        portal.start_and_wait([(user, "")], {user: token}, profile="cpu", cluster="beta")
        server_job = str(portal.server_model(user)["state"]["job_id"])
        batch = sbatch_as(user, "alpha", f"--account={account}", "-c", "3", "--wrap", "sleep 3")
        wait_finished(engine, "alpha", batch)
        portal.stop_all([user])
        wait_finished(engine, "beta", server_job)
        for cluster, job_id in (("alpha", batch), ("beta", server_job)):
            amount, _cpu, _rows = ledger_job(engine, cluster, job_id)
            assert amount == expected_mc(sacct_job(cluster, job_id)), (cluster, job_id)
        bills = portal.billing("GET", f"api/accounts/{account}/charges", token).json()["jobs"]
        assert {(b["cluster"], b["job_id"]) for b in bills} >= {
            ("alpha", batch),
            ("beta", server_job),
        }
    finally:
        engine.dispose()
