"""The course REST API, served by the billing service under ``api/courses`` (openapi.yaml).

Every handler asks :class:`~extensions.courses.actions.Courses`, which checks the person's
standing in the course, so the API and the pages refuse the same things.  A handler that
reads a body checks that standing first: a person who may not act never has their body
parsed, and a body is never larger than the route's ``max_body``.
"""

from __future__ import annotations

from billing_hooks.ledger import LedgerError
from billing_hooks.models import Course
from billing_hooks.service.api import amount_from
from billing_hooks.service.base import ApiHandler, Refused
from billing_hooks.service.bodies import KIB
from centre.pricing import format_credits
from extensions.courses import roster, settings
from extensions.courses.access import Action, CourseForbidden, CourseNotFound
from extensions.courses.actions import Courses, CourseUnavailable, Who
from extensions.courses.views import usage_csv

MAX_USERNAMES = 2000


def course_json(course: Course, standing: str) -> dict:
    return {
        "slug": course.slug,
        "title": course.title,
        "your_role": standing,
        "term_start": course.term_start.isoformat(),
        "term_end": course.term_end.isoformat(),
        "student_cap": format_credits(course.student_cap_mc),
        "default_profile": course.default_profile,
        "profiles": list(course.profiles),
        "images": list(course.images),
        "materials": course.materials,
        "account": f"course-{course.slug}",
    }


def refused(error: Exception) -> Refused:
    """A course error as the HTTP answer people read."""
    if isinstance(error, roster.RosterError):
        refusal = Refused(400, str(error), "people")
        refusal.problems = [
            {"line": p.line, "field": p.field, "message": p.message} for p in error.problems
        ]
        return refusal
    if isinstance(error, settings.CourseError):
        return Refused(400, str(error), error.field)
    if isinstance(error, LedgerError):
        return Refused(400, error.message, error.field)
    if isinstance(error, CourseForbidden):
        return Refused(403, str(error))
    if isinstance(error, CourseNotFound):
        return Refused(404, str(error))
    if isinstance(error, CourseUnavailable):
        return Refused(503, str(error))
    raise error


class CourseRequest:
    """What the course API and pages handlers share: the courses, and who is asking."""

    courses: Courses

    def initialize(self, ctx, courses: Courses) -> None:
        super().initialize(ctx)
        self.courses = courses

    @property
    def who(self) -> Who:
        return Who(self.viewer.name, self.viewer.admin)


class CourseApiHandler(CourseRequest, ApiHandler):
    def write_error(self, status_code: int, **kwargs) -> None:
        error = kwargs.get("exc_info", (None, None))[1]
        problems = getattr(error, "problems", None)
        if problems is None:
            return super().write_error(status_code, **kwargs)
        self.send(
            {
                "status": status_code,
                "message": error.message,
                "field": "people",
                "problems": problems,
            },
            status_code,
        )

    def usernames(self, data: dict) -> list[str] | None:
        """``usernames`` from a body: absent means everyone."""
        if "usernames" not in data:
            return None
        names = data["usernames"]
        if (
            not isinstance(names, list)
            or not 0 < len(names) <= MAX_USERNAMES
            or not all(isinstance(n, str) for n in names)
        ):
            raise Refused(
                400, "give a list of 1 to 2000 usernames, or leave it out for all", "usernames"
            )
        return names


class CoursesHandler(CourseApiHandler):
    def get(self) -> None:
        self.send({"courses": [course_json(c, r) for c, r in self.courses.visible(self.who)]})

    async def post(self) -> None:
        if not self.who.admin:
            raise Refused(403, "only admins can create courses")
        data = self.body()
        try:
            budget_mc = amount_from(data.pop("budget", "0"), "budget")
            if budget_mc < 0:
                raise LedgerError("budget", "must be 0 or more")
            course = await self.courses.create(self.who, data, budget_mc)
        except Exception as e:
            raise refused(e) from None
        self.send(course_json(course, "admin"), 201)


class CourseHandler(CourseApiHandler):
    async def get(self, slug: str) -> None:
        try:
            course, standing = self.courses.course_for(self.who, slug, Action.SEE_COURSE)
            body = course_json(course, standing.value)
            body.update(await self.courses.summary(self.who, slug))
        except Exception as e:
            raise refused(e) from None
        self.send(body)


class RosterHandler(CourseApiHandler):
    async def get(self, slug: str) -> None:
        try:
            body = await self.courses.dashboard(self.who, slug)
        except Exception as e:
            raise refused(e) from None
        self.send({"course": slug, **body})


class EnrolmentsHandler(CourseApiHandler):
    max_body = roster.MAX_BYTES  # a class list, as CSV or as JSON

    async def post(self, slug: str) -> None:
        try:
            self.courses.course_for(self.who, slug, Action.ENROL)
            if self.request.headers.get("Content-Type", "").startswith("text/csv"):
                rows, source = roster.parse_roster(self.raw_body()), "csv"
            else:
                rows, source = roster.parse_people(self.body().get("people")), "api"
            result = await self.courses.enrol(self.who, slug, rows, source)
        except Exception as e:
            raise refused(e) from None
        self.send(
            {
                "course": slug,
                "added": list(result.report.added),
                "changed": list(result.report.changed),
                "unchanged": result.report.unchanged,
                "unix_accounts_created": list(result.created_accounts),
                "unix_accounts_missing": list(result.missing_accounts),
                "message": result.summary(),
            }
        )


class EnrolmentHandler(CourseApiHandler):
    def patch(self, slug: str, username: str) -> None:
        try:
            self.courses.course_for(self.who, slug, Action.SET_CAPS)
        except Exception as e:
            raise refused(e) from None
        data = self.body()
        if set(data) != {"cap"}:
            raise Refused(400, 'send {"cap": credits}, or null for the course\'s cap', "cap")
        try:
            cap_mc = None if data["cap"] is None else amount_from(data["cap"], "cap")
            if cap_mc is not None and cap_mc < 0:
                raise LedgerError("cap", "must be 0 or more")
            self.courses.set_cap(self.who, slug, username, cap_mc)
        except Exception as e:
            raise refused(e) from None
        self.send({"course": slug, "username": username, "cap": data["cap"]})

    async def delete(self, slug: str, username: str) -> None:
        try:
            await self.courses.unenrol(self.who, slug, username)
        except Exception as e:
            raise refused(e) from None
        self.set_status(204)
        self.finish()


class ServersHandler(CourseApiHandler):
    max_body = 128 * KIB  # 2000 usernames of 32 letters

    async def post(self, slug: str) -> None:
        await self._act(slug, self.courses.start)

    async def delete(self, slug: str) -> None:
        await self._act(slug, self.courses.stop)

    async def _act(self, slug: str, action) -> None:
        try:
            # Who is in the course at all; which servers they may start is the action's check.
            self.courses.course_for(self.who, slug, Action.SEE_COURSE)
        except Exception as e:
            raise refused(e) from None
        names = self.usernames(self.body())
        try:
            outcomes = await action(self.who, slug, names)
        except Exception as e:
            raise refused(e) from None
        failed = [o for o in outcomes if not o.ok]
        self.send(
            {
                "course": slug,
                "requested": len(outcomes),
                "failed": len(failed),
                "results": [
                    {"username": o.username, "ok": o.ok, "message": o.message} for o in outcomes
                ],
            },
            200 if not failed else 207,
        )


class UsageCsvHandler(CourseApiHandler):
    async def get(self, slug: str) -> None:
        try:
            _course, rows = await self.courses.usage_rows(self.who, slug)
        except Exception as e:
            raise refused(e) from None
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{slug}-usage.csv"')
        self.finish(usage_csv(rows))
