"""The hub REST calls behind the course pages: group sync, and students' servers.

Made with the billing service's own token (its role in roots/hub.py).  A course
server is the named server ``course-<slug>``, so it never disturbs a student's own servers.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from billing_hooks.hub_client import HubClient

# Start requests sent to the hub at once; the spawner batches Slurm calls behind them.
PARALLEL_STARTS = 50


def server_name(slug: str) -> str:
    return f"course-{slug}"


@dataclass(frozen=True)
class ServerView:
    state: str  # "stopped", "starting", "running" or "stopping"
    url: str | None = None
    last_activity: str | None = None  # ISO time, as the hub gives it
    started: str | None = None


@dataclass(frozen=True)
class Outcome:
    username: str
    ok: bool
    message: str


def _server_path(username: str, slug: str) -> str:
    return f"/users/{quote(username, safe='')}/servers/{quote(server_name(slug), safe='')}"


def _error_message(error: HTTPClientError) -> str:
    body = getattr(error.response, "body", b"") or b""
    try:
        return json.loads(body).get("message") or str(error)
    except ValueError:
        return str(error)


class CourseHub:
    def __init__(self, hub: HubClient):
        self.hub = hub
        # Its own client: the shared one queues 10 requests at a time, and each start waits
        # for the hub's slow_spawn_timeout, so a class of 30 would time out in the queue.
        self._http = AsyncHTTPClient(force_instance=True, max_clients=PARALLEL_STARTS)

    async def _call(self, method: str, path: str, body: object = None) -> object:
        request = HTTPRequest(
            f"{self.hub.api_url}{path}",
            method=method,
            headers={
                "Authorization": f"token {self.hub.token}",
                "Content-Type": "application/json",
            },
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=120,
        )
        response = await self._http.fetch(request)
        return json.loads(response.body) if response.body else None

    async def sync_groups(self, slug: str, people: dict[str, str]) -> dict:
        return await self._call("PUT", f"/corehour/courses/{quote(slug)}", {"people": people})  # type: ignore[return-value]

    async def servers(self, slug: str, usernames: list[str]) -> dict[str, ServerView]:
        """The course server of each person, and when they were last active.

        One hub call whatever the size of the hub or the class: the hub's course API lists
        the members of the course's groups (extensions/courses/hub_api.py).  Someone who
        is enrolled but not yet in the groups has no course server, so shows as stopped.
        """
        page = await self._call("GET", f"/corehour/courses/{quote(slug)}")
        members = page.get("people", {}) if isinstance(page, dict) else {}
        views = {}
        for name in usernames:
            member = members.get(name) or {}
            views[name] = _view(member.get("server"), member.get("last_activity"))
        return views

    async def start(self, slug: str, options: dict, usernames: list[str]) -> list[Outcome]:
        gate = asyncio.Semaphore(PARALLEL_STARTS)

        async def one(name: str) -> Outcome:
            async with gate:
                try:
                    await self._call("POST", _server_path(name, slug), options)
                    return Outcome(name, True, "starting")
                except HTTPClientError as e:
                    if e.code == 400 and "already" in _error_message(e).lower():
                        return Outcome(name, True, "already running")
                    return Outcome(name, False, _error_message(e))

        return list(await asyncio.gather(*(one(n) for n in usernames)))

    async def stop(self, slug: str, usernames: list[str]) -> list[Outcome]:
        async def one(name: str) -> Outcome:
            try:
                await self._call("DELETE", _server_path(name, slug))
                return Outcome(name, True, "stopping")
            except HTTPClientError as e:
                if e.code in (400, 404):
                    return Outcome(name, True, "not running")
                return Outcome(name, False, _error_message(e))

        return list(await asyncio.gather(*(one(n) for n in usernames)))


def _view(server: dict | None, user_activity: str | None) -> ServerView:
    if not server:
        return ServerView("stopped", last_activity=user_activity)
    pending = server.get("pending")
    if pending == "spawn" or (not server.get("ready") and not pending):
        state = "starting"
    elif pending == "stop":
        state = "stopping"
    else:
        state = "running"
    return ServerView(
        state,
        url=server.get("url"),
        last_activity=server.get("last_activity") or user_activity,
        started=server.get("started"),
    )
