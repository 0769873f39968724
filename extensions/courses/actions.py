"""What the course pages and API do: each action checks who asks, then changes the ledger,
Slurm, Unix accounts and the hub's groups in that order, and says what happened.

The order matters: nothing is written to the ledger unless the input is valid and the person
may do it, and the hub's groups are synced last from the ledger, so repeating a failed
action repairs it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from billing_hooks.models import Account, Course
from billing_hooks.slurm_accounts import SacctmgrError, SlurmAccounts, Wanted
from centre.people import account_of, enrolment_refusal
from centre.pricing import format_credits
from centre.site import Site
from extensions.courses import roster, settings, store
from extensions.courses.access import (
    Action,
    CourseForbidden,
    CourseNotFound,
    Standing,
    require,
    standing,
)
from extensions.courses.hub import CourseHub, Outcome
from extensions.courses.terms import term_state
from extensions.courses.unix_accounts import ensure_accounts
from extensions.courses.views import RosterRow, burn_down, roster_rows


class CourseUnavailable(RuntimeError):
    """Slurm or the hub could not be told; the message says what to retry."""


@dataclass(frozen=True)
class Who:
    name: str
    admin: bool


@dataclass(frozen=True)
class EnrolResult:
    report: store.EnrolReport
    created_accounts: tuple[str, ...] = ()
    missing_accounts: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        parts = [
            f"{len(self.report.added)} enrolled",
            f"{len(self.report.changed)} updated",
            f"{self.report.unchanged} unchanged",
        ]
        if self.created_accounts:
            parts.append(f"{len(self.created_accounts)} Unix accounts created")
        if self.missing_accounts:
            parts.append(
                "no Unix account yet for "
                + ", ".join(self.missing_accounts[:10])
                + (" …" if len(self.missing_accounts) > 10 else "")
            )
        return "; ".join(parts) + "."


class Courses:
    def __init__(
        self, site: Site, sessions: sessionmaker[Session], hub: CourseHub, slurm: SlurmAccounts
    ):
        self.site = site
        self.sessions = sessions
        self.hub = hub
        self.slurm = slurm

    # -- who may ---------------------------------------------------------------

    def course_for(self, who: Who, slug: str, action: Action) -> tuple[Course, Standing]:
        with self.sessions() as session:
            course = store.find(session, slug) if isinstance(slug, str) else None
            if course is None:
                raise CourseNotFound(f"no course named '{str(slug)[:40]}'")
            role = store.role_in(session, course, who.name)
            return course, require(slug, standing(who.admin, role), action)

    def visible(self, who: Who) -> list[tuple[Course, str]]:
        with self.sessions() as session:
            if who.admin:
                return [(c, "admin") for c in store.all_courses(session)]
            return store.courses_of(session, who.name)

    # -- changes -----------------------------------------------------------------

    async def create(self, who: Who, data: object, budget_mc: int) -> Course:
        if not who.admin:
            raise CourseForbidden("only admins can create courses")
        spec = settings.parse_course(data, self.site)
        with self.sessions.begin() as session:
            course = store.create_course(session, spec, budget_mc, who.name)
        await self._sync_slurm(course, {})
        await self._sync_hub(course, {})
        return course

    async def enrol(
        self, who: Who, slug: str, rows: list[roster.Enrolment], source: str
    ) -> EnrolResult:
        course, _ = self.course_for(who, slug, Action.ENROL)
        self._refuse_unsafe_names(who, rows)
        names = [row.username for row in rows]
        accounts = await ensure_accounts(names, self.site.courses.create_unix_accounts)
        with self.sessions.begin() as session:
            course = store.find(session, slug)
            report = store.enrol(session, course, rows, source)
            people = store.people(session, course)
        await self._sync_slurm(course, people)
        await self._sync_hub(course, people)
        return EnrolResult(report, accounts.created, accounts.missing)

    def _refuse_unsafe_names(self, who: Who, rows: list[roster.Enrolment]) -> None:
        """No reserved, admin or system name, and no account outside the portal unless an
        admin enrols it (centre/people.py); every bad row is named, nothing is enrolled."""
        rules = self.site.hub.person_rules()
        problems = [
            roster.Problem(row.line, "username", refusal)
            for row in rows
            if (refusal := enrolment_refusal(account_of(row.username), rules, who.admin))
        ]
        if problems:
            raise roster.RosterError(problems)

    async def unenrol(self, who: Who, slug: str, username: str) -> None:
        course, _ = self.course_for(who, slug, Action.ENROL)
        await self.hub.stop(slug, [username])
        with self.sessions.begin() as session:
            if not store.unenrol(session, store.find(session, slug), username):
                raise CourseNotFound(f"'{username[:40]}' is not in course {slug}")
            people = store.people(session, store.find(session, slug))
        await self._sync_hub(course, people)
        await self._leave_slurm(course, [username])

    async def _leave_slurm(self, course: Course, usernames: list[str]) -> None:
        """A person out of the course can no longer spend its budget, not even with
        ``sbatch --account=course-<slug>`` from a terminal."""
        try:
            await self.slurm.remove_members(store.account_name(course.slug), usernames)
        except SacctmgrError as e:
            raise CourseUnavailable(
                f"{', '.join(usernames)} left course {course.slug}, but Slurm could not be told "
                f"({e}); repeat the removal in a minute."
            ) from None

    def set_cap(self, who: Who, slug: str, username: str, cap_mc: int | None) -> None:
        """Instructors set their students' caps; only admins set staff caps, so nobody raises
        their own or a colleague's share of the budget."""
        self.course_for(who, slug, Action.SET_CAPS)
        with self.sessions.begin() as session:
            course = store.find(session, slug)
            if store.role_in(session, course, username) in ("ta", "instructor") and not who.admin:
                raise CourseForbidden(f"only admins can change the cap of {slug}'s staff")
            store.set_cap(session, course, username, cap_mc)

    async def start(self, who: Who, slug: str, usernames: list[str] | None) -> list[Outcome]:
        course, usernames = self._targets(who, slug, usernames, Action.START_STOP)
        return await self.hub.start(course.slug, self.server_options(course), usernames)

    def server_options(self, course: Course) -> dict:
        """The default profile, with the first course image it offers, on the course's money."""
        offered = self.site.profiles[course.default_profile].images
        image = next((i for i in course.images if i in offered), offered[0])
        return {
            "profile": course.default_profile,
            "image": image,
            "account": store.account_name(course.slug),
        }

    async def stop(self, who: Who, slug: str, usernames: list[str] | None) -> list[Outcome]:
        course, usernames = self._targets(who, slug, usernames, Action.START_STOP)
        return await self.hub.stop(course.slug, usernames)

    def _targets(
        self, who: Who, slug: str, usernames: list[str] | None, action: Action
    ) -> tuple[Course, list[str]]:
        """The students to act on: all of them, or the named ones; a student only themself."""
        course, where = self.course_for(who, slug, Action.SEE_COURSE)
        with self.sessions() as session:
            students = sorted(n for n, r in store.people(session, course).items() if r == "student")
        if where is Standing.STUDENT:
            if usernames != [who.name]:
                require(slug, where, action)
            return course, [who.name]
        require(slug, where, action)
        if usernames is None:
            return course, students
        strangers = [n for n in usernames if n not in students]
        if strangers:
            raise settings.CourseError(
                "usernames", f"not students of {slug}: {', '.join(s[:40] for s in strangers[:10])}"
            )
        return course, usernames

    async def _sync_slurm(self, course: Course, people: dict[str, str]) -> None:
        account = store.account_name(course.slug)
        try:
            await self.slurm.sync(
                [Wanted(account, f"corehour course {course.slug}", tuple(sorted(people)))], {}
            )
        except SacctmgrError as e:
            raise CourseUnavailable(
                f"Slurm could not be told about course {course.slug} ({e}); nothing is lost, "
                "repeat the enrolment in a minute."
            ) from None

    async def _sync_hub(self, course: Course, people: dict[str, str]) -> None:
        try:
            await self.hub.sync_groups(course.slug, people)
        except Exception as e:  # the hub may be restarting
            raise CourseUnavailable(
                f"The hub could not update the groups of course {course.slug} ({e}); the "
                "enrolment is saved, repeat it in a minute to finish."
            ) from None

    # -- reading -------------------------------------------------------------------

    async def usage_rows(self, who: Who, slug: str) -> tuple[Course, list[RosterRow]]:
        self.course_for(who, slug, Action.READ_ROSTER)
        return await self._rows(slug, everyone=True, who=who)

    async def _rows(self, slug: str, everyone: bool, who: Who) -> tuple[Course, list[RosterRow]]:
        with self.sessions() as session:
            course = store.find(session, slug)
            enrolments = [e for e in course.enrolments if everyone or e.username == who.name]
            spent = store.spent_by_person(session, course)
        servers = await self.hub.servers(slug, [e.username for e in enrolments])
        return course, roster_rows(course, enrolments, spent, servers)

    async def summary(self, who: Who, slug: str) -> dict:
        """The course's term and money for everyone in it, and their own server and spend."""
        course, _where = self.course_for(who, slug, Action.SEE_COURSE)
        data = self._money(course)
        _course, rows = await self._rows(slug, everyone=False, who=who)
        data["you"] = rows[0].as_json() if rows else None
        return data

    async def dashboard(self, who: Who, slug: str) -> dict:
        """For the course's staff: the money, the burn-down and the whole roster."""
        course, _where = self.course_for(who, slug, Action.READ_ROSTER)
        data = self._money(course)
        with self.sessions() as session:
            daily = store.daily_spend(session, course)
        end = min(self.today(), course.term_end)
        points = burn_down(data["budget_mc"], daily, course.term_start, end)
        data["burn_down"] = [{"day": d.isoformat(), "left_mc": mc} for d, mc in points]
        _course, rows = await self._rows(slug, everyone=True, who=who)
        data["roster"] = [row.as_json() for row in rows]
        return data

    def _money(self, course: Course) -> dict:
        with self.sessions() as session:
            budget = store.budget_mc(session, course)
            left = session.get(Account, course.account_id).balance_mc
        return {
            "term": term_state(course.term_start, course.term_end, self.today()),
            "budget": format_credits(budget),
            "budget_mc": budget,
            "spent": format_credits(budget - left),
            "left": format_credits(left),
            "left_mc": left,
        }

    def today(self) -> dt.date:
        return dt.datetime.now(dt.UTC).date()
