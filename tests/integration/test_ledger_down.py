"""The attack: the ledger's PostgreSQL stops answering while people use the portal.

The hub reaches its ledger through a relay (tests/blackhole.py) that is then blackholed:
connections hang instead of failing, as when a firewall drops the database host's packets.
The hub must go on serving its pages, refuse a spawn with a message that says why, submit
nothing to Slurm, and come back by itself once the database answers again.

``ANSWERS_WITHIN`` tells "answers" from "hangs"; it is a bound, not a timing.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.billing_checks import wait_until
from tests.blackhole import Relay
from tests.harness import Portal, alive_jobs, portal_site
from tests.ledger_db import PG_PORT, drop_postgres, postgres_url

pytestmark = pytest.mark.integration

PORT = 28400
ANSWERS_WITHIN = 15  # seconds; a hub that waits on the ledger hangs for minutes
USER = "chtest1"


@pytest.fixture(scope="module")
def dark_portal(tmp_path_factory, users):
    url = postgres_url()
    relay = Relay(PG_PORT).start()
    workdir = tmp_path_factory.mktemp("ledger-down")
    site = portal_site(PORT, workdir)
    site["billing"]["database_url"] = url.replace(f":{PG_PORT}/", f":{relay.port}/")
    portal = Portal(workdir, PORT, site=site)
    try:
        portal.start()
        yield portal, relay
    finally:
        relay.close()  # frees every call still waiting on the ledger, so the hub can stop
        if portal.hub and portal.hub.poll() is None:
            portal.stop_all(users)
        portal.stop()
        drop_postgres(url)


def test_a_blackholed_ledger_stops_no_page_and_a_spawn_is_refused_with_nothing_submitted(
    dark_portal,
):
    portal, relay = dark_portal
    token = portal.user_token(USER)
    portal.wait_billing(token)  # the billing service has made the personal account
    browser = portal.login(USER)
    assert 'id="corehour-balance"' in browser.get(f"{portal.url}/hub/home", timeout=30).text
    assert 'name="account"' in browser.get(f"{portal.url}/hub/spawn", timeout=30).text

    relay.blackhole()

    health = requests.get(f"{portal.url}/hub/health", timeout=ANSWERS_WITHIN)
    assert health.status_code == 200
    home = browser.get(f"{portal.url}/hub/home", timeout=ANSWERS_WITHIN)
    assert home.status_code == 200
    assert "billing ledger does not answer" in home.text
    form = browser.get(f"{portal.url}/hub/spawn", timeout=ANSWERS_WITHIN)
    assert form.status_code == 200 and 'id="corehour-spawn-form"' in form.text
    assert "Prices and balances cannot be shown right now" in form.text
    assert 'name="account"' not in form.text

    # While a spawn waits for the ledger, the hub answers everyone else.
    asked = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        spawn = pool.submit(portal.start_server, USER, token, profile="cpu", cluster="alpha")
        for _ in range(3):
            assert requests.get(f"{portal.url}/hub/health", timeout=ANSWERS_WITHIN).ok
            assert browser.get(f"{portal.url}/hub/home", timeout=ANSWERS_WITHIN).ok
        refused = spawn.result(60)
    print(f"\nthe spawn was refused {time.monotonic() - asked:.1f} s after it was asked for")
    assert refused.status_code == 503, refused.text
    message = refused.json()["message"]
    assert "billing ledger cannot be reached" in message and "try again" in message
    wait_until(lambda: portal.server_model(USER) is None, 30, "the refused server is still listed")
    assert not [j for c in ("alpha", "beta") for j in alive_jobs(c, USER)]

    relay.restore()
    # Back by itself: prices and balances return without a restart.
    wait_until(
        lambda: 'name="account"' in browser.get(f"{portal.url}/hub/spawn", timeout=30).text,
        60,
        "the spawn form did not show prices again after the ledger came back",
    )
    wait_until(
        lambda: "does not answer" not in browser.get(f"{portal.url}/hub/home", timeout=30).text,
        60,
        "the home page still says the ledger does not answer",
    )
