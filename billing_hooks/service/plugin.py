"""What a plugin of the billing service adds to it: pages, API routes, and a step in every
meter cycle.

The service names no plugin; its composition root (``roots/billing.py``) passes the list.
Courses is one (``extensions/courses/service_plugin.py``).  A plugin's API paths sit under
``api/`` beside the service's own and are documented in the same ``openapi.yaml``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from tornado import web

from billing_hooks.service.context import Context


@dataclass
class PluginParts:
    # (pattern below the service's prefix, handler, its keyword arguments)
    pages: list[tuple[str, type[web.RequestHandler], dict]] = field(default_factory=list)
    # The keyword arguments of every handler in the plugin's API_ROUTES.
    api_arguments: dict = field(default_factory=dict)
    # Run in each meter cycle, after the meter and the service's own enforcement.
    cycle: list[Callable[[], Awaitable[object]]] = field(default_factory=list)


class ServicePlugin(Protocol):
    # Paths below api/, as openapi.yaml names them, and their handlers.
    API_ROUTES: dict[str, type[web.RequestHandler]]

    def setup(self, ctx: Context) -> PluginParts: ...
