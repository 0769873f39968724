"""Attacks on the class-list parser, each at the size limit the billing service accepts.

The parser runs on the billing service's event loop, so a body that takes it seconds stops
the pages, the meter and enforcement for everyone.  A backtracking parse is told apart by a
watchdog in a fresh interpreter: linear work at 1 MiB ends within a fraction of a second,
the old quadratic regex and header check ran for minutes to hours.  The watchdog's 20 s is
the line between those two, not a benchmark (bench/hostile_parse.py measures).
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from billing_hooks.ledger import LedgerError
from billing_hooks.service.api import amount_from
from extensions.courses.roster import MAX_BYTES, MAX_ROWS, RosterError, parse_people, parse_roster

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
WATCHDOG_S = 20
CSV_FIELD = 131_000  # under the csv module's 131,072-character field limit


def refusal_under_watchdog(program: str) -> str:
    """The RosterError that ``program`` (which sets ``parse``) ends in, run in a fresh
    interpreter; a failure if it is still parsing when the watchdog ends it."""
    code = textwrap.dedent(program) + textwrap.dedent("""
        from extensions.courses.roster import RosterError
        try:
            parse()
            print("accepted")
        except RosterError as e:
            print(e)
    """)
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=WATCHDOG_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the parse was still running after {WATCHDOG_S} s: it is not linear")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_roster_email_regex_attack_is_linear():
    # 'a@', 131,000 dots and '@': the old pattern tried every split of the dots around its
    # '\.'. Eight such rows fill the 1 MiB a roster may have.
    said = refusal_under_watchdog(f"""
        from extensions.courses.roster import MAX_BYTES, parse_roster
        email = "a@" + "." * {CSV_FIELD - 3} + "@"
        rows = "".join(f"s{{i}},student,{{email}}\\n" for i in range(8))
        body = ("username,role,email\\n" + rows).encode()
        assert len(body) <= MAX_BYTES
        parse = lambda: parse_roster(body)
    """)
    assert said.startswith("Nothing was enrolled: line 2, email: 'a@....")
    assert said.count("is not an e-mail address") == 8


def test_people_email_regex_attack_is_linear():
    # One address as long as the whole 1 MiB body of a JSON enrolment.
    said = refusal_under_watchdog(f"""
        from extensions.courses.roster import parse_people
        email = "a@" + "." * {MAX_BYTES - 100} + "@"
        parse = lambda: parse_people([{{"username": "ann", "role": "student", "email": email}}])
    """)
    assert said.startswith("Nothing was enrolled: item 1, email: 'a@....")
    assert said.endswith("is not an e-mail address")


def test_roster_header_of_a_third_of_a_million_columns_is_refused_at_once():
    # The old header check counted each column against every other: 10¹¹ comparisons.
    header = "username,role," + "ab," * ((MAX_BYTES - 40) // 3)
    said = refusal_under_watchdog(f"""
        from extensions.courses.roster import parse_roster
        body = ("username,role," + "ab," * {(MAX_BYTES - 40) // 3} + "\\nann,student\\n").encode()
        parse = lambda: parse_roster(body)
    """)
    columns = len(header.split(","))
    assert said == (
        f"Nothing was enrolled: line 1, header: has {columns} columns; "
        "use username, role, name, email"
    )


def test_the_regex_free_email_check_keeps_every_answer():
    good = ["ann@uni.example", "a.b-c+d@x.y.z", "o'brien@uni.example", "é@ü.example"]
    bad = [
        "not-an-address", "a@b", "a@.b", "a@b.", "@b.c", "a@@b.c", "a@b@c.d", "a b@c.d",
        "a@b,c.d", "<a@b.c>", "a@b.c;", "a@b\u00a0.c", "a@b.\u2003",
    ]  # fmt: skip
    people = [
        {"username": f"p{i}", "role": "student", "email": email}
        for i, email in enumerate(good + bad)
    ]
    with pytest.raises(RosterError) as refused:
        parse_people(people)
    assert [p.line for p in refused.value.problems] == list(range(len(good) + 1, len(people) + 1))
    assert {p.field for p in refused.value.problems} == {"email"}
    assert len(parse_people(people[: len(good)])) == len(good)


def test_roster_of_endless_bad_rows_stops_at_the_row_limit():
    # 262,000 short bad rows used to make 262,000 problems (and as many dicts in the answer).
    body = ("username,role\n" + "x,y\n" * ((MAX_BYTES - 20) // 4)).encode()
    with pytest.raises(RosterError) as refused:
        parse_roster(body)
    problems = refused.value.problems
    assert problems[-1].message == f"at most {MAX_ROWS} students per file"
    assert problems[-1].line == MAX_ROWS + 2
    assert len(problems) == MAX_ROWS + 1


def test_roster_of_endless_blank_lines_stops_at_the_line_limit():
    body = ("username,role\n" + "\n" * (MAX_BYTES - 40) + "ann,student\n").encode()
    with pytest.raises(RosterError, match="at most 10000 lines per file"):
        parse_roster(body)


def test_a_person_with_endless_unknown_fields_is_one_problem():
    person = {"username": "ann", "role": "student", **{f"k{i}": "" for i in range(100_000)}}
    with pytest.raises(RosterError) as refused:
        parse_people([person])
    assert [str(p) for p in refused.value.problems] == [
        "item 1, person: has 100002 fields; use username, role, name, email"
    ]


def test_a_cap_of_a_million_digits_is_refused_before_it_is_built():
    # Decimal('1e999990') is short text, but turning it into milli-credits built an integer
    # of a million digits, quadratically (seconds of a stopped event loop per request).
    with pytest.raises(LedgerError) as refused:
        amount_from("1e999990", "cap")
    assert refused.value.field == "cap"
    assert "is too large: at most 15 digits before the point" in refused.value.message
    assert amount_from("999999999999999.999", "cap") == 999_999_999_999_999_999
