"""The course pages: Courses (the list, and the form that creates one) and a course's own
page, the instructor dashboard for staff and a student's own view for students.

Forms post to ``courses/<slug>/<action>`` and come back with what happened; the numbers
come from the same :class:`~extensions.courses.actions.Courses` as the API.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import quote, urlencode

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from tornado import web

from billing_hooks.ledger import LedgerError
from billing_hooks.service import pages as billing_pages
from billing_hooks.service.api import amount_from
from billing_hooks.service.base import Refused
from centre.pricing import format_credits
from extensions.courses import roster
from extensions.courses.access import ALLOWED, Action, Standing
from extensions.courses.api import CourseRequest, refused
from extensions.courses.chart import burn_down_figure
from extensions.courses.hub import server_name

TEMPLATES = Environment(
    loader=ChoiceLoader(
        [
            FileSystemLoader(Path(__file__).with_name("templates")),
            FileSystemLoader(Path(billing_pages.__file__).with_name("templates")),
        ]
    ),
    autoescape=select_autoescape(["html"]),
)
# What each form needs of the person, checked before the form's fields are read (tornado has
# only split the body, in linear time and within the server's 1 MiB); start and stop go on
# to check which servers, since a student may start their own.
NEEDS = {
    "enrol": Action.ENROL,
    "start": Action.SEE_COURSE,
    "stop": Action.SEE_COURSE,
    "cap": Action.SET_CAPS,
    "unenrol": Action.ENROL,
}
ACTIONS = tuple(NEEDS)


class CoursePageHandler(CourseRequest, billing_pages.PageHandler):
    templates = TEMPLATES

    def render_page(self, name: str, **values) -> None:
        super().render_page(name, page="courses", **values)


class CoursesPage(CoursePageHandler):
    @web.authenticated
    def get(self) -> None:
        today = self.courses.today()
        self.render_page(
            "courses.html",
            courses=self.courses.visible(self.who),
            today=today,
            profiles=self.ctx.site.profiles,
            images=self.ctx.site.images,
            default_start=today.isoformat(),
            default_end=(today + dt.timedelta(days=120)).isoformat(),
        )

    @web.authenticated
    async def post(self) -> None:
        if not self.who.admin:
            return self.redirect(
                f"{self.ctx.prefix}courses?{urlencode({'error': 'only admins can create courses'})}"
            )
        form = self.request.body_arguments
        one = {k: self.get_body_argument(k, "").strip() for k in form}
        data: dict = {
            key: one.get(key, "")
            for key in ("slug", "title", "term_start", "term_end", "student_cap", "default_profile")
        }
        data["profiles"] = self.get_body_arguments("profiles")
        data["images"] = self.get_body_arguments("images")
        if one.get("materials_source"):
            data["materials"] = {
                "kind": one.get("materials_kind", "git"),
                "source": one["materials_source"],
                "branch": one.get("materials_branch") or "main",
            }
        try:
            budget = amount_from(one.get("budget") or "0", "budget")
            if budget < 0:
                raise LedgerError("budget", "must be 0 or more")
            course = await self.courses.create(self.who, data, budget)
        except Exception as e:
            error = refused(e)
            query = urlencode({"error": _message(error)})
            return self.redirect(f"{self.ctx.prefix}courses?{query}")
        done = f"Created course {course.slug} with a budget of {format_credits(budget)}."
        self.redirect(f"{self.ctx.prefix}courses/{course.slug}?{urlencode({'done': done})}")


class CoursePage(CoursePageHandler):
    """A student's view of their course; its staff go on to the dashboard."""

    @web.authenticated
    async def get(self, slug: str) -> None:
        try:
            course, standing = self.courses.course_for(self.who, slug, Action.SEE_COURSE)
            if standing is not Standing.STUDENT:
                query = f"?{self.request.query}" if self.request.query else ""
                return self.redirect(f"{self.ctx.prefix}courses/{quote(slug)}/dashboard{query}")
            summary = await self.courses.summary(self.who, slug)
        except Exception as e:
            raise refused(e) from None
        self.render_page("course.html", course=course, standing=standing.value, summary=summary)


class DashboardPage(CoursePageHandler):
    """The instructor dashboard: roster, warm-up, caps, enrolment, budget."""

    @web.authenticated
    async def get(self, slug: str) -> None:
        try:
            course, standing = self.courses.course_for(self.who, slug, Action.READ_ROSTER)
            summary = await self.courses.dashboard(self.who, slug)
        except Exception as e:
            raise refused(e) from None
        points = [(dt.date.fromisoformat(p["day"]), p["left_mc"]) for p in summary["burn_down"]]
        self.render_page(
            "dashboard.html",
            course=course,
            standing=standing.value,
            may={a.name.lower() for a in ALLOWED[standing]},
            summary=summary,
            server=server_name(slug),
            chart_json=burn_down_figure(
                points, summary["budget_mc"], course.term_end, self.ctx.billing.currency
            ),
            api=f"{self.ctx.prefix}api/courses/{quote(slug)}",
            user_base=self.ctx.hub_prefix.removesuffix("hub/") + "user/",
        )


class CourseAction(CoursePageHandler):
    @web.authenticated
    async def post(self, slug: str, action: str) -> None:
        try:
            done = await self._do(slug, action)
        except Exception as e:
            error = refused(e)
            return self._back(slug, error=_message(error))
        self._back(slug, done=done)

    def _back(self, slug: str, **message: str) -> None:
        self.redirect(f"{self.ctx.prefix}courses/{quote(slug)}?{urlencode(message)}")

    async def _do(self, slug: str, action: str) -> str:
        who = self.who
        if action not in NEEDS:
            raise Refused(404, f"no action '{action[:20]}'")
        self.courses.course_for(who, slug, NEEDS[action])  # before any field is read
        names = self.get_body_arguments("username") or None
        if action == "enrol":
            files = self.request.files.get("roster")
            if not files:
                raise Refused(400, "choose a CSV file to upload", "roster")
            result = await self.courses.enrol(who, slug, roster.parse_roster(files[0].body), "csv")
            return result.summary()
        if action in ("start", "stop"):
            outcomes = await (self.courses.start if action == "start" else self.courses.stop)(
                who, slug, names
            )
            failed = [f"{o.username}: {o.message}" for o in outcomes if not o.ok]
            verb = "Starting" if action == "start" else "Stopping"
            text = f"{verb} {len(outcomes) - len(failed)} of {len(outcomes)} servers."
            if failed:
                raise Refused(409, text + " Not done: " + "; ".join(failed[:10]))
            return text
        if action == "cap":
            username = self.get_body_argument("username", "")
            cap = self.get_body_argument("cap", "").strip()
            cap_mc = amount_from(cap, "cap") if cap else None
            self.courses.set_cap(who, slug, username, cap_mc)
            shown = format_credits(cap_mc) if cap_mc is not None else "the course's cap"
            return f"The cap of {username} is now {shown}."
        username = self.get_body_argument("username", "")
        await self.courses.unenrol(who, slug, username)
        return f"{username} is no longer in {slug}; what they spent stays on the bills."


def _message(error: Refused) -> str:
    return (
        f"{error.field}: {error.message}"
        if error.field and error.field not in error.message
        else error.message
    )
