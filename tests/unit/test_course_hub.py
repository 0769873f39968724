"""A course page's view of its students' servers costs one hub call, whatever the hub holds.

The hub is stood in for by a local HTTP server that answers the course API
(extensions/courses/hub_api.py) and records every request it gets.
"""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from billing_hooks.hub_client import HubClient
from extensions.courses.hub import CourseHub, ServerView

pytestmark = pytest.mark.unit

MEMBERS = {
    "ann": {
        "last_activity": "2026-11-02T10:00:00Z",
        "server": {
            "pending": None,
            "ready": True,
            "url": "/user/ann/course-c1/",
            "started": "2026-11-02T09:00:00Z",
            "last_activity": "2026-11-02T10:05:00Z",
        },
    },
    "bob": {"last_activity": "2026-11-01T08:00:00Z", "server": None},
    "cy": {
        "last_activity": None,
        "server": {"pending": "spawn", "ready": False, "url": "/user/cy/course-c1/"},
    },
}


class FakeHub(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):
        FakeHub.seen.append(self.path)
        body = json.dumps({"course": "c1", "people": MEMBERS}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_course_page_asks_the_hub_once_for_everyone_and_reads_each_state():
    hub = HTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    FakeHub.seen.clear()

    async def ask():
        client = HubClient(f"http://127.0.0.1:{hub.server_address[1]}/hub/api", "secret")
        return await CourseHub(client).servers("c1", ["ann", "bob", "cy", "dee"])

    try:
        views = asyncio.run(ask())
    finally:
        hub.shutdown()
    assert FakeHub.seen == ["/hub/api/corehour/courses/c1"]
    assert views == {
        "ann": ServerView(
            "running", "/user/ann/course-c1/", "2026-11-02T10:05:00Z", "2026-11-02T09:00:00Z"
        ),
        "bob": ServerView("stopped", last_activity="2026-11-01T08:00:00Z"),
        "cy": ServerView("starting", "/user/cy/course-c1/"),
        # Enrolled, but not in the hub's course groups yet: no course server.
        "dee": ServerView("stopped"),
    }
