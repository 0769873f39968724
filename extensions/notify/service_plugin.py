"""Notifications as a plugin of the billing service: the Slurm events' inbox and the sender,
which each meter cycle starts beside the meter, after it has settled what ended."""

from __future__ import annotations

import os
from typing import ClassVar

from billing_hooks.service.context import Context
from billing_hooks.service.plugin import PluginParts

from .sender import NotificationSender
from .slurm_events import SlurmEventHandler
from .token import SLURM_EVENTS_TOKEN_ENV


class NotifyPlugin:
    API_ROUTES: ClassVar[dict[str, type]] = {}

    def setup(self, ctx: Context) -> PluginParts:
        inbox = {
            "token": os.environ.get(SLURM_EVENTS_TOKEN_ENV, ""),
            "site": ctx.site,
            "sessions": ctx.sessions,
        }
        # A mail's link must work outside the portal's pages: the portal's own address.
        usage_url = ctx.site.hub.bind_url.rstrip("/") + ctx.usage_url
        sender = NotificationSender(ctx.site, ctx.sessions, usage_url)
        return PluginParts(pages=[("slurm-events", SlurmEventHandler, inbox)], cycle=[sender.kick])
