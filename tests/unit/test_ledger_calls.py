"""The hub's ledger calls: a ledger that hangs or fails is given up on, and pages get the
last values they had at once.  Fetches are stood in for by functions that wait on events,
so nothing here depends on how fast the machine is."""

import asyncio
import threading
import time
from types import SimpleNamespace

import pytest
from sqlalchemy.exc import OperationalError

from billing_hooks import hub_pages, ledger_calls
from billing_hooks.ledger_calls import Health, Latest, LedgerUnavailable

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Ledger:
    """A fetch that answers, hangs until released, or fails, as the test says."""

    def __init__(self):
        self.calls = 0
        self.mode = "answer"
        self.release = threading.Event()

    def __call__(self, key: str) -> dict:
        self.calls += 1
        if self.mode == "hang":
            self.release.wait(30)
        if self.mode == "fail":
            raise OperationalError("SELECT 1", {}, Exception("connection timed out"))
        return {"who": key, "call": self.calls}


def settle(latest: Latest) -> None:
    """Wait until the fetches started so far have finished, their callbacks included."""
    for _ in range(3000):
        if not latest._pending:
            return
        time.sleep(0.01)
    raise AssertionError("a released fetch never finished")


def test_a_ledger_that_answers_gives_current_values():
    ledger = Ledger()
    latest = Latest(ledger, wait=30, ledger=Health(15, Clock()))
    assert latest.get("ann") == ({"who": "ann", "call": 1}, True)
    assert latest.get("ann") == ({"who": "ann", "call": 2}, True)  # every page asks again


def test_a_hanging_ledger_is_not_waited_for_again_until_the_quiet_time_ends():
    ledger, clock = Ledger(), Clock()
    latest = Latest(ledger, wait=0.05, ledger=Health(15, clock))
    assert latest.get("ann")[1] is True
    ledger.mode = "hang"
    assert latest.get("ann") == ({"who": "ann", "call": 1}, False)  # the last good values
    assert latest.get("bob") == (None, False)  # nobody waits, nothing new is started
    assert ledger.calls == 2
    clock.now += 16
    assert latest.get("bob") == (None, False)  # one new check after the quiet time
    assert ledger.calls == 3
    ledger.mode = "answer"
    ledger.release.set()
    settle(latest)
    # A fetch that got through ends the quiet time: pages wait for fresh values again.
    assert latest.get("bob")[1] is True


def test_a_failing_ledger_gives_the_last_values_and_goes_quiet():
    ledger, clock = Ledger(), Clock()
    latest = Latest(ledger, wait=30, ledger=Health(15, clock))
    latest.get("ann")
    ledger.mode = "fail"
    assert latest.get("ann") == ({"who": "ann", "call": 1}, False)
    latest.get("ann")
    assert ledger.calls == 2  # quiet: the failed ledger is not asked again at once


def test_one_fetch_per_person_at_a_time():
    ledger = Ledger()
    ledger.mode = "hang"
    latest = Latest(ledger, wait=0.01, ledger=Health(0, Clock()))
    for _ in range(5):
        latest.get("ann")
    assert ledger.calls == 1
    ledger.release.set()
    settle(latest)


def test_a_call_past_its_deadline_or_failing_on_the_database_is_unavailable():
    release = threading.Event()

    def hangs():
        release.wait(30)

    def fails():
        raise OperationalError("SELECT 1", {}, Exception("could not connect"))

    def refuses():
        raise LookupError("not your account")

    try:
        with pytest.raises(LedgerUnavailable, match="cannot be reached"):
            asyncio.run(ledger_calls.call(hangs, deadline=0.05))
    finally:
        release.set()
    with pytest.raises(LedgerUnavailable, match="try again"):
        asyncio.run(ledger_calls.call(fails))
    with pytest.raises(LookupError):  # not the ledger's fault: passed on as it is
        asyncio.run(ledger_calls.call(refuses))
    assert asyncio.run(ledger_calls.call(lambda a, b: a + b, 2, 3)) == 5


class Stub:
    def __init__(self, values, current):
        self.answer = (values, current)

    def get(self, _key):
        return self.answer


def page(latest) -> dict | None:
    user = SimpleNamespace(name="ann")
    return hub_pages.page_values(user, latest, "/services/billing/", "credits")


def test_the_hub_pages_say_when_balances_are_missing_or_old():
    values = {
        "in_courses": True,
        "accounts": [{"label": "ann", "available": "5"}],
        "notices": [{"level": "info", "message": "topped up"}],
    }
    assert page(Stub(values, True))["notices"] == values["notices"]
    old = page(Stub(values, False))
    assert old["accounts"] == values["accounts"] and old["in_courses"]
    assert [n["message"] for n in old["notices"]] == [hub_pages.STALE, "topped up"]
    missing = page(Stub(None, False))
    assert missing["accounts"] == [] and not missing["in_courses"]
    assert [n["message"] for n in missing["notices"]] == [hub_pages.UNAVAILABLE]
    assert hub_pages.page_values(None, Stub(None, False), "/", "credits") is None


def test_the_form_does_not_wait_on_a_ledger_that_failed_lately_but_a_spawn_asks_again():
    ran = []

    def accounts():
        ran.append("asked")
        return ["u-ann"]

    ledger_calls.health.failed()
    try:
        with pytest.raises(LedgerUnavailable):
            asyncio.run(ledger_calls.call(accounts, wait_when_quiet=False))
        assert ran == []
        assert asyncio.run(ledger_calls.call(accounts)) == ["u-ann"]  # a spawn asks anyway
        assert ran == ["asked"]
        assert not ledger_calls.health.quiet()  # and its answer ends the quiet time
    finally:
        ledger_calls.health.answered()
