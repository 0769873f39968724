"""The billing service's Prometheus metrics, read the way a scraper reads them: with a hub
token that holds read:metrics and nothing else."""

import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import TEST_ADMIN


def metrics_token(portal) -> str:
    portal.wait_billing(portal.user_token(TEST_ADMIN))  # the service is up; the admin exists
    reply = portal.request(
        "POST", f"/users/{TEST_ADMIN}/tokens", json={"note": "scraper", "scopes": ["read:metrics"]}
    )
    assert reply.status_code == 201, reply.text
    return reply.json()["token"]


def scrape(portal, token: str) -> requests.Response:
    return requests.get(
        f"{portal.url}/services/billing/metrics",
        headers={"Authorization": f"token {token}"},
        timeout=30,
        allow_redirects=False,
    )


def series(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_scraper_token_reads_the_meters_cycles_and_they_advance(portal):
    token = metrics_token(portal)
    first = scrape(portal, token)
    assert first.status_code == 200, first.text[:300]
    assert first.headers["Content-Type"].startswith("text/plain")
    before = series(first.text)
    cycles = before["corehour_meter_cycles_total", (("outcome", "ok"),)]
    # The test portal meters every 2 s.
    deadline = time.monotonic() + 30
    while True:
        now = series(scrape(portal, token).text)
        if now["corehour_meter_cycles_total", (("outcome", "ok"),)] > cycles:
            break
        assert time.monotonic() < deadline, "the meter's cycle count did not move in 30 s"
        time.sleep(1)
    assert now["corehour_meter_cycle_seconds_count", ()] >= cycles + 1
    assert now["corehour_meter_last_cycle_timestamp_seconds", ()] > time.time() - 60
    assert ("corehour_enforcement_actions_total", (("action", "stopped"),)) in now


def test_people_and_tokens_without_read_metrics_get_403(portal, tokens):
    portal.wait_billing(tokens["chtest1"])
    person = scrape(portal, tokens["chtest1"])
    assert person.status_code == 403, person.text[:300]
    assert "read:metrics" in person.text
    nobody = requests.get(
        f"{portal.url}/services/billing/metrics", timeout=30, allow_redirects=False
    )
    assert nobody.status_code == 403
