"""Enrolment from CSV: every bad row named with its line, and nothing applied if any is bad;
the rule from an identity provider's username to a Unix account, and its collisions."""

import pytest

from extensions.courses.identity import IdentityError, claim_name, unix_name
from extensions.courses.roster import MAX_ROWS, Enrolment, RosterError, parse_roster

pytestmark = pytest.mark.unit


def test_a_good_roster_keeps_every_row_with_its_line():
    text = "username,role,name\nann,student,Ann Lee\n\nbob,TA,Bob\ncarol,instructor,\n"
    assert parse_roster(text.encode()) == [
        Enrolment(2, "ann", "student", "Ann Lee"),
        Enrolment(4, "bob", "ta", "Bob"),
        Enrolment(5, "carol", "instructor", ""),
    ]


def test_a_byte_order_mark_and_header_case_are_fine():
    assert parse_roster("\ufeffUsername,Role\nann,student\n".encode())[0].username == "ann"


def test_every_bad_row_is_listed_and_nothing_is_returned():
    text = (
        "username,role,email\n"
        "ann,student,ann@uni.example\n"
        "Bob Smith,student,\n"  # line 3: not a login name
        "carol,professor,\n"  # line 4: unknown role
        "ann,ta,\n"  # line 5: duplicate of line 2
        "dave,student,not-an-address\n"  # line 6: bad e-mail
        "erin,student\n"  # line 7: too few fields
    )
    with pytest.raises(RosterError) as refused:
        parse_roster(text)
    found = [(p.line, p.field) for p in refused.value.problems]
    assert found == [(3, "username"), (4, "role"), (5, "username"), (6, "email"), (7, "row")]
    message = str(refused.value)
    assert message.startswith("Nothing was enrolled: line 3, username:")
    assert "'ann' is already on line 2" in message and "use student, ta, instructor" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "line 1, header: the file is empty"),
        ("user,role\nann,student\n", "needs a 'username' column"),
        ("username,role,shell\nann,student,/bin/sh\n", "unknown column 'shell'"),
        ("username,role,role\nann,student,ta\n", "'role' appears twice"),
        ("username,role\n", "no students"),
        ("username,role\nroot;rm -rf /,student\n", "is not a login name"),
        ("username,role\n../etc,student\n", "is not a login name"),
        ("username,role\nann,student\x00\n", "not a text file"),
    ],
)
def test_broken_files_are_refused_with_a_reason(text, expected):
    with pytest.raises(RosterError) as refused:
        parse_roster(text)
    assert expected in str(refused.value)


def test_files_that_are_not_utf8_or_too_big_are_refused():
    with pytest.raises(RosterError, match="not UTF-8"):
        parse_roster(b"username,role\n\xff\xfe,student\n")
    with pytest.raises(RosterError, match="at most 1024 KB"):
        parse_roster(b"username,role\n" + b"a" * (1024 * 1024))
    rows = "".join(f"s{i},student\n" for i in range(MAX_ROWS + 1))
    with pytest.raises(RosterError, match=f"at most {MAX_ROWS} students"):
        parse_roster("username,role\n" + rows)


@pytest.mark.parametrize(
    ("claim", "name"),
    [
        ("ann", "ann"),
        ("Anna.Mueller@uni.example", "anna-mueller"),
        ("Jürgen Groß", "jurgen-gross"),
        ("o'brien--x@uni.example", "o-brien-x"),
        ("2024student", "u2024student"),
        ("_svc", "_svc"),
    ],
)
def test_the_username_rule(claim, name):
    assert unix_name(claim) == name


@pytest.mark.parametrize("claim", ["", "   ", "@uni.example", "株式会社", "x" * 33, None, 42])
def test_claims_that_make_no_account_name_are_refused(claim):
    with pytest.raises(IdentityError):
        unix_name(claim)


def test_a_second_person_with_the_same_name_is_refused_and_a_known_one_keeps_theirs():
    owners = {"anna-mueller": "sub-1"}
    held = {"sub-1": "anna-mueller"}
    assert claim_name("sub-1", "anna.mueller@a.example", owners, held) == "anna-mueller"
    with pytest.raises(IdentityError, match="already belongs to someone else"):
        claim_name("sub-2", "Anna.Mueller@b.example", owners, held)
    # A changed e-mail address does not make a new account for the same person.
    assert claim_name("sub-1", "a.mueller@new.example", owners, held) == "anna-mueller"
    assert claim_name("sub-3", "bob@a.example", owners, held) == "bob"
