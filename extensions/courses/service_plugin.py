"""Courses as a plugin of the billing service: its pages, its API and its cap step.

The billing service's composition root (``roots/billing.py``) adds it; the URLs are the
service's (``/services/billing/courses...``), and course data lives in the ledger's database
under the ledger's one Alembic history.
"""

from __future__ import annotations

from typing import ClassVar

from billing_hooks.service.context import Context
from billing_hooks.service.hub_reads import read_route
from billing_hooks.service.plugin import PluginParts
from extensions.courses import api, pages
from extensions.courses.actions import Courses
from extensions.courses.caps import CapEnforcer
from extensions.courses.hub import CourseHub
from extensions.courses.spawn_reads import course_read

SLUG = r"([a-z][a-z0-9-]{1,30})"


class CoursesPlugin:
    API_ROUTES: ClassVar[dict[str, type]] = {
        "courses": api.CoursesHandler,
        "courses/{slug}": api.CourseHandler,
        "courses/{slug}/roster": api.RosterHandler,
        "courses/{slug}/enrolments": api.EnrolmentsHandler,
        "courses/{slug}/enrolments/{username}": api.EnrolmentHandler,
        "courses/{slug}/servers": api.ServersHandler,
        "courses/{slug}/usage.csv": api.UsageCsvHandler,
    }

    def setup(self, ctx: Context) -> PluginParts:
        arguments = {
            "ctx": ctx,
            "courses": Courses(ctx.site, ctx.sessions, CourseHub(ctx.hub), ctx.slurm),
        }
        caps = CapEnforcer(ctx.site, ctx.sessions, ctx.hub, f"{ctx.prefix}courses")
        return PluginParts(
            pages=[
                ("courses", pages.CoursesPage, arguments),
                (f"courses/{SLUG}", pages.CoursePage, arguments),
                (f"courses/{SLUG}/dashboard", pages.DashboardPage, arguments),
                (f"courses/{SLUG}/({'|'.join(pages.ACTIONS)})", pages.CourseAction, arguments),
                # The hub's course step asks here (spawn_rules.py).
                read_route("course", ctx.hub_reads_token, course_read(ctx.read_sessions)),
            ],
            api_arguments=arguments,
            cycle=[caps.run],
        )
