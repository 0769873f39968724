"""The attack: a person asks the billing service's hub-reads routes for another person's
accounts, or has it open an account in another person's name.

The hub reads the ledger only through these routes (billing_hooks/service/hub_reads.py),
and they answer for anyone named in the body.  So only the hub's own token, which it keeps
root-only in its state folder and hands to the service alone, may call them: not a
person's API token, not their browser session, not a guess.  The last check shows the
routes do answer the hub, so the refusals above are the guard and not a broken route.
"""

from __future__ import annotations

import json
import stat

import pytest
import requests

from tests.harness import TEST_ADMIN

pytestmark = pytest.mark.integration

VICTIM, ATTACKER = "chtest1", "chtest2"


def reads(portal, name: str, body: dict, headers: dict | None = None, session=None):
    return (session or requests).post(
        f"{portal.billing_url}/hub-reads/{name}",
        data=json.dumps(body),
        headers=headers or {},
        timeout=30,
    )


def hub_token(portal) -> str:
    path = portal.state / "hub-reads.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return path.read_text().strip()


def test_no_one_but_the_hub_reads_a_persons_accounts_through_hub_reads(portal, users):
    token = portal.user_token(ATTACKER)
    portal.wait_billing(token)
    guesses = [
        {},
        {"Authorization": f"token {token}"},
        {"Authorization": f"Bearer {token}"},
        {"Authorization": "token " + "0" * 64},
        {"Authorization": "token "},
    ]
    for name, body in [
        ("accounts", {"username": VICTIM}),
        ("page", {"username": VICTIM}),
        ("course", {"account": f"u-{VICTIM}", "username": VICTIM}),
        # Would open an account in a name nobody has used yet.
        ("accounts", {"username": "chnobody"}),
    ]:
        for headers in guesses:
            refused = reads(portal, name, body, headers)
            assert refused.status_code == 403, (name, headers, refused.status_code)
            assert f"u-{VICTIM}" not in refused.text and "available" not in refused.text

    browser = portal.login(ATTACKER)
    browser.get(f"{portal.billing_url}/usage", timeout=30)  # signed in to the service
    # The service's own _xsrf cookie (the hub sets one for its paths too).
    xsrf = next(c.value for c in browser.cookies if c.name == "_xsrf" and "billing" in c.path)
    refused = reads(portal, "accounts", {"username": VICTIM}, {"X-XSRFToken": xsrf}, browser)
    assert refused.status_code == 403

    hub = {"Authorization": f"token {hub_token(portal)}"}
    admin = portal.user_token(TEST_ADMIN)
    nobody = portal.billing("GET", "api/accounts/u-chnobody", admin)
    assert nobody.status_code == 404, nobody.text  # the refused calls opened no account

    answered = reads(portal, "accounts", {"username": VICTIM}, hub)
    assert answered.status_code == 200, answered.text
    assert answered.json()["answer"][0]["name"] == f"u-{VICTIM}"


def test_a_read_with_a_bad_body_is_refused_with_the_field_named(portal, users):
    portal.wait_billing(portal.user_token(VICTIM))
    hub = {"Authorization": f"token {hub_token(portal)}"}
    bad = reads(portal, "accounts", {"username": "../etc/passwd"}, hub)
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("username: expected a name matching")
    bad = reads(portal, "course", {"account": "u-chtest1; DROP", "username": VICTIM}, hub)
    assert bad.status_code == 400
    assert bad.json()["message"].startswith("account: expected a name matching")
    too_big = reads(portal, "accounts", {"username": VICTIM, "pad": "x" * 2000}, hub)
    assert too_big.status_code == 413
