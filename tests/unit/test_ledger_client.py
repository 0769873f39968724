"""The hub's client of the billing service's hub-reads, against a small local HTTP server."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from billing_hooks.gate import AccountChoice
from billing_hooks.ledger_calls import LedgerUnavailable
from billing_hooks.ledger_client import LedgerClient
from tests.harness import free_port

ALICE = AccountChoice("u-alice", "u-alice", "personal", 5000, 4000, 1000, Decimal("1.5"), "active")


class Service(BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, object]] = {}
    seen: list[tuple[str, str, dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.seen.append((self.path, self.headers["Authorization"], body))
        status, reply = self.answers[self.path]
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def serve(port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def service():
    Service.answers, Service.seen = {}, []
    server = serve(free_port())
    yield server
    server.shutdown()
    server.server_close()


def client(port: int, **kwargs) -> LedgerClient:
    return LedgerClient(f"http://127.0.0.1:{port}", "/services/billing/", "s3cret", **kwargs)


def test_accounts_arrive_as_the_gate_uses_them_with_the_hubs_token(service):
    Service.answers["/services/billing/hub-reads/accounts"] = (200, {"answer": [ALICE.to_json()]})
    accounts = client(service.server_port).accounts_for("alice")
    assert accounts == [ALICE]
    assert Service.seen == [
        ("/services/billing/hub-reads/accounts", "token s3cret", {"username": "alice"})
    ]


def test_nothing_found_is_a_lookup_error_and_a_failed_ledger_is_unavailable(service):
    Service.answers["/services/billing/hub-reads/accounts"] = (404, {"message": "no such"})
    Service.answers["/services/billing/hub-reads/page"] = (503, {"message": "ledger down"})
    ledger = client(service.server_port)
    with pytest.raises(LookupError, match="no such"):
        ledger.accounts_for("alice")
    with pytest.raises(LedgerUnavailable, match="cannot be reached"):
        ledger.page_values("alice")


def test_a_start_waits_for_a_service_that_is_still_starting():
    port = free_port()
    Service.answers = {"/services/billing/hub-reads/page": (200, {"answer": {"accounts": []}})}
    started = []
    timer = threading.Timer(0.5, lambda: started.append(serve(port)))
    timer.start()
    try:
        assert client(port, start_wait_s=5).page_values("alice") == {"accounts": []}
    finally:
        timer.join()
        for server in started:
            server.shutdown()
            server.server_close()


def test_a_service_that_never_listens_is_unavailable_after_the_wait():
    began = time.monotonic()
    with pytest.raises(LedgerUnavailable):
        client(free_port(), start_wait_s=0.3).page_values("alice")
    assert time.monotonic() - began < 5  # it gave up; it did not wait for ever


def test_a_service_url_that_is_not_http_is_refused_naming_the_key():
    with pytest.raises(ValueError, match=r"billing\.service_url"):
        LedgerClient("unix:/run/billing.sock", "/services/billing/", "s3cret")
