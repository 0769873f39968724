"""The admins' cluster overview over real Slurm: admins see it, anyone else gets 403."""

from tests.harness import TEST_ADMIN


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
