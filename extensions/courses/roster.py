"""A class list from a CSV file, checked whole before any of it is applied.

The file has a header row naming its columns: ``username`` and ``role`` are required,
``name`` and ``email`` are optional (kept for the roster's display, never used as logins).
Every bad row is reported with its line number and the field at fault; if there is any,
the roster is refused as a whole, so an enrolment never half-happens.

Anyone can send a file, so every check is linear in the file's size and the work stops at
the limits below (the file's bytes, lines, columns and rows): no regular expression here can
backtrack, and nothing compares every column or row with every other.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from centre.names import UNIX_NAME

ROLES = ("student", "ta", "instructor")
REQUIRED = ("username", "role")
OPTIONAL = ("name", "email")
MAX_ROWS = 2000
MAX_BYTES = 1024 * 1024
MAX_LINES = 10_000  # the rows and the blank lines between them
MAX_COLUMNS = 100
MAX_FIELDS = 10  # of one person in a JSON list: the four above, and a few to name as unknown
# One side of an address: one character class under one quantifier, so a failed match gives
# back one character at a time and never tries two ways to split the same text.
_EMAIL_PART = re.compile(r"[^@\s,;<>]+")


@dataclass(frozen=True)
class Enrolment:
    line: int
    username: str
    role: str
    name: str = ""
    email: str = ""


@dataclass(frozen=True)
class Problem:
    line: int  # 1 is the header; for a JSON list, the item's number from 1
    field: str
    message: str
    unit: str = "line"

    def __str__(self) -> str:
        return f"{self.unit} {self.line}, {self.field}: {self.message}"


class RosterError(ValueError):
    """The file cannot be enrolled; ``problems`` lists every bad line, not only the first."""

    def __init__(self, problems: Sequence[Problem]):
        self.problems = tuple(problems)
        shown = "; ".join(str(p) for p in self.problems[:20])
        more = len(self.problems) - 20
        super().__init__(
            f"Nothing was enrolled: {shown}" + (f"; and {more} more" if more > 0 else "")
        )


def parse_roster(data: bytes | str) -> list[Enrolment]:
    """Every row of the file, or RosterError naming every bad one."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise RosterError([Problem(0, "file", f"at most {MAX_BYTES // 1024} KB")])
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise RosterError([Problem(0, "file", f"is not UTF-8 text ({e.reason})")]) from None
    if "\x00" in data:
        raise RosterError([Problem(0, "file", "is not a text file")])
    reader = csv.reader(io.StringIO(data, newline=""))
    try:
        header = _header(next(reader))
    except StopIteration:
        raise RosterError([Problem(1, "header", "the file is empty")]) from None
    except csv.Error as e:
        raise RosterError([Problem(1, "header", f"not CSV ({e})")]) from None
    _check_header(header)
    rows, problems, seen, counted = [], [], {}, 0
    try:
        for row in reader:
            line = reader.line_num
            if line > MAX_LINES:
                problems.append(Problem(line, "file", f"at most {MAX_LINES} lines per file"))
                break
            if not any(cell.strip() for cell in row):
                continue  # blank lines are harmless
            if counted >= MAX_ROWS:  # bad rows count too: each one is work and a problem
                problems.append(Problem(line, "file", f"at most {MAX_ROWS} students per file"))
                break
            counted += 1
            enrolment, row_problems = _row(line, header, row)
            problems.extend(row_problems)
            if enrolment is None:
                continue
            if enrolment.username in seen:
                problems.append(
                    Problem(
                        line,
                        "username",
                        f"'{enrolment.username}' is already on line {seen[enrolment.username]}",
                    )
                )
                continue
            seen[enrolment.username] = line
            rows.append(enrolment)
    except csv.Error as e:
        problems.append(Problem(reader.line_num, "file", f"not CSV ({e})"))
    if problems:
        raise RosterError(problems)
    if not rows:
        raise RosterError([Problem(2, "file", "no students: add one row per person")])
    return rows


def _header(cells: list[str]) -> list[str]:
    if len(cells) > MAX_COLUMNS:
        allowed = ", ".join(REQUIRED + OPTIONAL)
        raise RosterError([Problem(1, "header", f"has {len(cells)} columns; use {allowed}")])
    return [h.strip().lower() for h in cells]


def _check_header(header: list[str]) -> None:
    problems = [
        Problem(1, "header", f"needs a '{column}' column")
        for column in REQUIRED
        if column not in header
    ]
    for column in header:
        if column not in REQUIRED + OPTIONAL:
            allowed = ", ".join(REQUIRED + OPTIONAL)
            problems.append(Problem(1, "header", f"unknown column '{column[:40]}'; use {allowed}"))
    duplicated = {c for c, times in Counter(header).items() if times > 1}
    problems.extend(Problem(1, "header", f"'{c}' appears twice") for c in sorted(duplicated))
    if problems:
        raise RosterError(problems)


def _row(line: int, header: list[str], row: list[str]) -> tuple[Enrolment | None, list[Problem]]:
    if len(row) != len(header):
        return None, [Problem(line, "row", f"has {len(row)} fields; the header has {len(header)}")]
    values = {column: cell.strip() for column, cell in zip(header, row, strict=True)}
    problems = []
    username = values["username"]
    if not UNIX_NAME.fullmatch(username):
        problems.append(
            Problem(
                line,
                "username",
                f"{username[:40]!r} is not a login name: 1–32 lower-case letters, digits, "
                "'_' or '-', starting with a letter or '_'",
            )
        )
    role = values["role"].lower()
    if role not in ROLES:
        problems.append(
            Problem(line, "role", f"{values['role'][:20]!r} is not a role; use {', '.join(ROLES)}")
        )
    name, email = values.get("name", ""), values.get("email", "")
    if len(name) > 200 or any(ord(c) < 32 for c in name):
        problems.append(Problem(line, "name", "at most 200 printable characters"))
    if email and not is_email(email):
        problems.append(Problem(line, "email", f"{email[:60]!r} is not an e-mail address"))
    if problems:
        return None, problems
    return Enrolment(line, username, role, name, email), []


def is_email(text: str) -> bool:
    """``local@domain.tld``: one '@', no spaces or ``,;<>``, a dot inside the domain.

    The same addresses as the pattern ``[^@\\s,;<>]+@[^@\\s,;<>]+\\.[^@\\s,;<>]+``, whose
    overlapping runs around the dot backtracked quadratically (a long run of dots took
    hours); here each side is matched once, and the dot is looked up.
    """
    local, _, domain = text.partition("@")
    return bool(
        _EMAIL_PART.fullmatch(local) and _EMAIL_PART.fullmatch(domain) and "." in domain[1:-1]
    )


def parse_people(items: object) -> list[Enrolment]:
    """The same checks for a JSON list of ``{"username", "role", "name"?, "email"?}``."""
    if not isinstance(items, list) or not items:
        raise RosterError([Problem(0, "people", "send a non-empty list of people", "item")])
    if len(items) > MAX_ROWS:
        raise RosterError([Problem(0, "people", f"at most {MAX_ROWS} people at once", "item")])
    columns = list(REQUIRED + OPTIONAL)
    rows, problems, seen = [], [], {}
    for number, item in enumerate(items, start=1):
        item_problems = _item_problems(number, item)
        if item_problems:
            problems.extend(item_problems)
            continue
        enrolment, row_problems = _row(number, columns, [item.get(c, "") for c in columns])
        problems.extend(replace(p, unit="item") for p in row_problems)
        if enrolment is None:
            continue
        if enrolment.username in seen:
            message = f"'{enrolment.username}' is already item {seen[enrolment.username]}"
            problems.append(Problem(number, "username", message, "item"))
            continue
        seen[enrolment.username] = number
        rows.append(enrolment)
    if problems:
        raise RosterError(problems)
    return rows


def _item_problems(number: int, item: object) -> list[Problem]:
    if not isinstance(item, dict):
        return [Problem(number, "person", "must be an object", "item")]
    if len(item) > MAX_FIELDS:
        allowed = ", ".join(REQUIRED + OPTIONAL)
        return [Problem(number, "person", f"has {len(item)} fields; use {allowed}", "item")]
    problems = []
    for key, value in item.items():
        if key not in REQUIRED + OPTIONAL:
            problems.append(Problem(number, str(key)[:40], "unknown field", "item"))
        elif not isinstance(value, str):
            problems.append(Problem(number, key, "must be text", "item"))
    problems.extend(
        Problem(number, key, "is required", "item") for key in REQUIRED if key not in item
    )
    return problems
