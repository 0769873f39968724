"""The few JupyterHub REST calls the billing service makes, with its own service token."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

log = logging.getLogger("corehour.hub")

JobKey = tuple[str, str]  # (cluster, job id)
ServerKey = tuple[str, str]  # (username, server name; "" is the default server)


class HubClient:
    def __init__(self, api_url: str, token: str, timeout: float = 30.0, cache_seconds: float = 60):
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._admins: dict[str, tuple[float, bool]] = {}

    async def _call(self, method: str, path: str, body: object = None) -> object:
        request = HTTPRequest(
            f"{self.api_url}{path}",
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
            body=None if body is None else json.dumps(body),
            allow_nonstandard_methods=True,
            request_timeout=self.timeout,
        )
        response = await AsyncHTTPClient().fetch(request)
        return json.loads(response.body) if response.body else None

    async def is_admin(self, username: str) -> bool:
        """The hub's admin flag, cached briefly so pages stay fast."""
        cached = self._admins.get(username)
        if cached and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        try:
            model = await self._call("GET", f"/users/{quote(username, safe='')}")
            admin = bool(model.get("admin"))  # type: ignore[union-attr]
        except HTTPClientError as e:
            if e.code != 404:
                raise
            admin = False
        self._admins[username] = (time.monotonic(), admin)
        return admin

    async def running_servers(self) -> dict[JobKey, ServerKey]:
        """Every active server's Slurm job, from the spawner state the hub keeps."""
        users = await self._call("GET", "/users?state=active")
        servers: dict[JobKey, ServerKey] = {}
        for user in users or ():  # type: ignore[union-attr]
            for name, server in (user.get("servers") or {}).items():
                state = server.get("state") or {}
                if state.get("job_id") and state.get("cluster"):
                    servers[(state["cluster"], str(state["job_id"]))] = (user["name"], name)
        return servers

    async def stop_servers_running(self, jobs: Iterable[JobKey]) -> list[tuple[JobKey, ServerKey]]:
        """Stop the servers whose jobs are in ``jobs``; returns the ones asked to stop."""
        wanted = set(jobs)
        if not wanted:
            return []
        stopped = []
        for job, (username, server) in (await self.running_servers()).items():
            if job not in wanted:
                continue
            path = f"/users/{quote(username, safe='')}/server"
            if server:
                path = f"/users/{quote(username, safe='')}/servers/{quote(server, safe='')}"
            try:
                await self._call("DELETE", path)
                stopped.append((job, (username, server)))
            except HTTPClientError as e:
                log.error("could not stop %s/%s: %s", username, server, e)
        return stopped
