"""The billing service's login cookies outlive a restart (issue 12).

The service signs its cookies with a key it keeps, root-only, in the hub's state folder. A
key made anew at each start signs everyone out whenever the hub restarts the service; this
test holds a signed-in browser session across a restart and asks for a page without
following a redirect, so a silent new sign-in through the hub cannot hide a lost key.
"""

from __future__ import annotations

import stat

import pytest

pytestmark = pytest.mark.integration


def test_a_billing_login_outlives_a_restart_of_the_service(portal, users):
    user = "chtest2"
    token = portal.user_token(user)
    portal.wait_billing(token)
    browser = portal.login(user)
    usage = f"{portal.billing_url}/usage"
    assert browser.get(usage, timeout=30).status_code == 200  # signs in to the service
    assert browser.get(usage, timeout=30, allow_redirects=False).status_code == 200
    old_pid = portal.billing_service_pid()

    portal.restart_hub()  # the hub stops its services and starts them again
    portal.wait_billing(token)

    assert portal.billing_service_pid() != old_pid
    again = browser.get(usage, timeout=30, allow_redirects=False)
    assert again.status_code == 200, (again.status_code, again.headers.get("Location"))
    secret_file = portal.state / "billing_cookie_secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
