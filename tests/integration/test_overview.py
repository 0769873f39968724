"""The admins' cluster overview over real Slurm: admins see it, anyone else gets 403."""

from tests.billing_checks import sbatch_as, wait_until
from tests.harness import TEST_ADMIN, slurm


def test_an_admin_sees_every_cluster_and_a_person_gets_403(portal):
    admin = portal.login(TEST_ADMIN)
    page = admin.get(f"{portal.url}/hub/corehour/overview", timeout=60)
    assert page.status_code == 200, page.text[:300]
    for cluster in ("alpha", "beta", "all-clusters"):
        assert f'id="ch-overview-{cluster}"' in page.text, cluster
    alpha = page.text.split('id="ch-overview-alpha"')[1].split("</tr>")[0]
    # The test bed's alpha: one node of 32 CPUs, in the cpu and gpu partitions.
    assert "of 32 (" in alpha, alpha
    assert "not answering" not in alpha
    assert 'id="nav-overview"' in page.text

    person = portal.login("chtest1")
    refused = person.get(f"{portal.url}/hub/corehour/overview", timeout=60)
    assert refused.status_code == 403
    home = person.get(f"{portal.url}/hub/home", timeout=60)
    assert 'id="nav-overview"' not in home.text


def test_the_last_day_shows_use_and_the_accounts_that_spent(portal, tokens):
    account = portal.wait_billing(tokens["chtest1"])["accounts"][0]["name"]
    job_id = sbatch_as("chtest1", "alpha", f"--account={account}", "--wrap", "sleep 2")
    wait_until(
        lambda: (
            "COMPLETED" in slurm("alpha", "sacct", "-j", job_id, "-X", "-n", "-o", "State").stdout
        ),
        60,
        f"job {job_id} did not complete",
    )
    admin = portal.login(TEST_ADMIN)
    page = admin.get(f"{portal.url}/hub/corehour/overview?fresh=1", timeout=60)
    assert page.status_code == 200, page.text[:300]
    alpha = page.text.split('id="ch-overview-day-alpha"')[1].split("</tr>")[0]
    assert "not answering" not in alpha, alpha
    assert " %" in alpha
    spenders = alpha.split('class="mb-0 ps-3 ch-top-spend"')[1].split("</ol>")[0]
    assert f'data-account="{account}"' in spenders or spenders.count("<li") == 5, spenders
