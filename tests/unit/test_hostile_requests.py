"""Attacks on the billing service's request handling: the real API and page handlers, served
by tornado in this process, with the hub's login and the course store stood in for.

Who may act is checked before a body is parsed, a body over its route's size is refused
before it is read, and JSON is bounded in size and depth.  "Parsed" is seen by standing in
for the class-list parsers (the stand-in keeps what it was given and refuses it, so a
handler that parses first gets no hour-long parse out of it) and by wrapping the JSON
body's; "before it is read" by answering a request whose body was never sent.
"""

import json
from types import SimpleNamespace
from unittest import mock

import pytest
from tornado import web
from tornado.httpclient import HTTPRequest
from tornado.tcpclient import TCPClient
from tornado.testing import AsyncHTTPTestCase, gen_test

from billing_hooks.service.app import API_ROUTES, _pattern
from billing_hooks.service.base import ApiHandler, BaseHandler
from extensions.courses import pages as course_pages
from extensions.courses import roster
from extensions.courses.access import require, standing
from extensions.courses.service_plugin import CoursesPlugin

pytestmark = pytest.mark.unit

ROLES = {"teacher": "instructor", "helper": "ta", "stu": "student"}
MIB = 1024 * 1024
HOSTILE_ROSTER = ("username,role,email\nann,student,a@" + "." * 130_000 + "@\n").encode()


class Hub:
    async def is_admin(self, name: str) -> bool:
        return name == "boss"


class Courses:
    """Course c1 with ROLES, and nothing else: every test stops before a change."""

    def course_for(self, who, slug, action):
        role = ROLES.get(who.name) if slug == "c1" else None
        return SimpleNamespace(slug=slug), require(slug, standing(who.admin, role), action)

    async def enrol(self, who, slug, rows, source):
        raise AssertionError("the stand-in parser refuses every body")

    create = start = stop = enrol


class NoAccounts:
    """A ledger with no accounts: every account lookup is 'not found'."""

    def __call__(self):
        return self

    def __enter__(self):
        return SimpleNamespace(scalar=lambda *a, **k: None)

    def __exit__(self, *exc):
        return False


def log_in(handler):
    name = handler.request.headers.get("X-Test-User")
    return {"name": name} if name else None


class HostileRequests(AsyncHTTPTestCase):
    def setUp(self):
        self.parsed, self.given = [], []
        self.courses = Courses()
        spies = [
            mock.patch.object(BaseHandler, "get_current_user", log_in),
            mock.patch.object(roster, "parse_roster", self.stand_in("roster")),
            mock.patch.object(roster, "parse_people", self.stand_in("people")),
            mock.patch.object(ApiHandler, "body", self.spy("body", ApiHandler.body)),
        ]
        for spy in spies:
            spy.start()
            self.addCleanup(spy.stop)
        super().setUp()

    def stand_in(self, name):
        def parse(data):
            self.parsed.append(name)
            self.given.append(data)
            raise roster.RosterError([roster.Problem(0, "file", "refused by the stand-in")])

        return parse

    def spy(self, name, parse):
        def parsing(*args, **kwargs):
            self.parsed.append(name)
            return parse(*args, **kwargs)

        return parsing

    def get_app(self):
        ctx = SimpleNamespace(hub=Hub(), prefix="/", sessions=NoAccounts())
        args = {"ctx": ctx, "courses": self.courses}
        routes = [
            (
                f"/api/{_pattern(path)}",
                handler,
                args if path.startswith("courses") else {"ctx": ctx},
            )
            for path, handler in {**API_ROUTES, **CoursesPlugin.API_ROUTES}.items()
        ]
        routes.append(
            (
                rf"/courses/([a-z][a-z0-9-]{{1,30}})/({'|'.join(course_pages.ACTIONS)})",
                course_pages.CourseAction,
                args,
            )
        )
        return web.Application(routes)

    def get_httpserver_options(self):
        return {"max_body_size": MIB}  # as the billing service listens

    def call(self, method, path, who, body=b"", content_type="application/json", **kwargs):
        headers = {"X-Test-User": who, "Authorization": "token t", "Content-Type": content_type}
        return self.fetch(
            path, method=method, headers=headers, body=body, raise_error=False, **kwargs
        )

    # -- the permission check comes before any parsing ------------------------------

    def test_a_student_posting_a_hostile_roster_is_refused_before_it_is_parsed(self):
        reply = self.call("POST", "/api/courses/c1/enrolments", "stu", HOSTILE_ROSTER, "text/csv")
        assert reply.code == 403, reply.body
        assert "can enrol people" in json.loads(reply.body)["message"]
        assert self.parsed == []

    def test_a_student_posting_a_hostile_people_list_is_refused_before_it_is_parsed(self):
        people = [{"username": "ann", "role": "student", "email": "a@" + "." * 500_000 + "@"}]
        body = json.dumps({"people": people}).encode()
        reply = self.call("POST", "/api/courses/c1/enrolments", "stu", body)
        assert reply.code == 403, reply.body
        assert self.parsed == []

    def test_a_stranger_to_the_course_cannot_make_it_parse_caps_or_server_lists(self):
        deep = b'{"cap": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        reply = self.call("PATCH", "/api/courses/c1/enrolments/ann", "stu", deep)
        assert reply.code == 403, reply.body
        reply = self.call("POST", "/api/courses/c1/servers", "nobody", deep)
        assert reply.code == 403, reply.body
        assert self.parsed == []

    def test_only_admins_have_a_new_course_body_parsed(self):
        reply = self.call("POST", "/api/courses", "teacher", b"[" * 5000 + b"]" * 5000)
        assert reply.code == 403, reply.body
        assert json.loads(reply.body)["message"] == "only admins can create courses"
        assert self.parsed == []

    def test_a_stranger_to_an_account_cannot_make_it_parse_a_member(self):
        reply = self.call("POST", "/api/accounts/proj-x/members", "stu", b"[" * 5000)
        assert reply.code == 404, reply.body
        assert json.loads(reply.body)["message"] == "no account named 'proj-x'"
        assert self.parsed == []

    def test_a_student_uploading_a_hostile_roster_on_the_page_is_refused_before_parsing(self):
        boundary = "hostile"
        form = (
            (
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="roster"; filename="class.csv"\r\n'
                "Content-Type: text/csv\r\n\r\n"
            ).encode()
            + HOSTILE_ROSTER
            + f"\r\n--{boundary}--\r\n".encode()
        )
        reply = self.call(
            "POST",
            "/courses/c1/enrol",
            "stu",
            form,
            f"multipart/form-data; boundary={boundary}",
            follow_redirects=False,
        )
        assert reply.code == 302, reply.body
        assert "can+enrol+people" in reply.headers["Location"]
        assert self.parsed == []

    def test_an_instructor_has_the_whole_body_parsed_from_csv_and_json(self):
        csv_body = b"username,role\n" + b"ann,student\n" * 60_000  # many chunks of the stream
        reply = self.call("POST", "/api/courses/c1/enrolments", "teacher", csv_body, "text/csv")
        assert reply.code == 400 and b"refused by the stand-in" in reply.body, reply.body
        people = [{"username": "bob", "role": "student"}]
        body = json.dumps({"people": people}).encode()
        reply = self.call("POST", "/api/courses/c1/enrolments", "teacher", body)
        assert reply.code == 400, reply.body
        assert self.parsed == ["roster", "body", "people"]
        assert self.given == [csv_body, people]

    # -- sizes and depths ------------------------------------------------------------

    def test_a_json_body_over_its_route_limit_gets_413_naming_the_limit(self):
        body = json.dumps({"title": "x" * 100_000}).encode()
        reply = self.call("POST", "/api/courses", "boss", body)
        assert reply.code == 413, reply.body
        answer = json.loads(reply.body)
        assert answer["field"] == "body"
        assert answer["message"] == (
            f"the request body is {len(body):,} bytes; this address takes at most 64 KiB "
            "(65,536 bytes)"
        )
        assert self.parsed == []

    @gen_test(timeout=10)
    async def test_a_chunked_body_over_its_route_limit_gets_413_before_it_is_parsed(self):
        async def produce(write):
            for _ in range(100):
                await write(b" " * 1024)

        request = HTTPRequest(
            self.get_url("/api/courses"),
            method="POST",
            headers={"X-Test-User": "boss", "Authorization": "token t"},
            body_producer=produce,
        )
        reply = await self.http_client.fetch(request, raise_error=False)
        assert reply.code == 413, reply.body
        assert "takes at most 64 KiB" in json.loads(reply.body)["message"]
        assert self.parsed == ["body"]  # asked for, and refused on its size alone

    @gen_test(timeout=10)
    async def test_a_body_declared_too_big_is_refused_before_it_is_sent(self):
        # Headers only: an answer can come only from a service that does not wait to read.
        stream = await TCPClient().connect("127.0.0.1", self.get_http_port())
        await stream.write(
            b"POST /api/courses/c1/enrolments HTTP/1.1\r\nHost: test\r\n"
            b"X-Test-User: teacher\r\nAuthorization: token t\r\nContent-Type: text/csv\r\n"
            b"Content-Length: %d\r\n\r\n" % (MIB + 1)
        )
        head = await stream.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), head
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        answer = json.loads(await stream.read_bytes(length))
        assert answer["message"].endswith("takes at most 1 MiB (1,048,576 bytes)")
        stream.close()

    def test_deep_json_is_a_400_with_a_reason_not_a_crash(self):
        for depth in (17, 4000):  # the second would overflow the JSON parser's stack
            deep = b'{"title": ' + b"[" * depth + b"]" * depth + b"}"
            reply = self.call("POST", "/api/courses", "boss", deep)
            assert reply.code == 400, reply.body
            assert json.loads(reply.body)["message"] == (
                "the body nests objects and lists deeper than 16 levels"
            )
        assert self.parsed == ["body", "body"]

    def test_a_people_list_of_a_million_brackets_is_refused_before_json_loads(self):
        body = b'{"people": [' + b"[]," * 340_000 + b"[]]}"
        reply = self.call("POST", "/api/courses/c1/enrolments", "teacher", body)
        assert reply.code == 400, reply.body
        assert json.loads(reply.body)["message"] == (
            "the body holds more than 4096 objects and lists"
        )
        assert self.parsed == ["body"]

    def test_a_notice_id_of_a_thousand_digits_is_not_found(self):
        reply = self.call("POST", "/api/notices/" + "9" * 1000 + "/dismiss", "stu")
        assert reply.code == 404, reply.body
