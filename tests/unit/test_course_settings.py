"""A course's settings: checked against the site, every refusal naming the setting."""

import datetime as dt
from decimal import Decimal

import pytest

from extensions.courses.settings import CourseError, parse_course

pytestmark = pytest.mark.unit


def course(**changes):
    data = {
        "slug": "phys101",
        "title": "Computational physics",
        "term_start": "2027-02-01",
        "term_end": "2027-06-30",
        "student_cap": "25.5",
        "default_profile": "cpu",
        "profiles": ["cpu", "gpu"],
        "images": ["base", "gpu"],
        "materials": {"kind": "git", "source": "https://git.example.org/phys/101.git"},
    }
    data.update(changes)
    return data


def test_a_good_course_with_its_group_and_term(site):
    parsed = parse_course(course(), site)
    assert parsed.group == "course-phys101" and parsed.student_cap == Decimal("25.5")
    assert parsed.materials.branch == "main"
    assert parsed.term(dt.date(2027, 1, 31)) == "before"
    assert parsed.term(dt.date(2027, 6, 30)) == "open"
    assert parsed.term(dt.date(2027, 7, 1)) == "ended"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"slug": "Phys 101"}, "slug"),
        ({"slug": "x"}, "slug"),
        ({"title": ""}, "title"),
        ({"term_start": "next monday"}, "term_start"),
        ({"term_end": "2027-01-01"}, "term_end"),
        ({"term_end": "2029-01-01"}, "term_end"),
        ({"student_cap": "0"}, "student_cap"),
        ({"student_cap": "-5"}, "student_cap"),
        ({"student_cap": "NaN"}, "student_cap"),
        ({"student_cap": "1.2345"}, "student_cap"),
        ({"profiles": []}, "profiles"),
        ({"profiles": ["cpu", "root"]}, "profiles"),
        ({"default_profile": "bigmem"}, "default_profile"),
        ({"images": ["base", "broken"]}, "images"),
        ({"profiles": ["bigmem"], "default_profile": "bigmem"}, "images"),  # bigmem: base only
        ({"materials": {"kind": "git", "source": "git@evil:x.git"}}, "materials.source"),
        (
            {"materials": {"kind": "git", "source": "http://plain.example/x.git"}},
            "materials.source",
        ),
        ({"materials": {"kind": "folder", "source": "/srv/../etc"}}, "materials.source"),
        ({"materials": {"kind": "folder", "source": "relative/x"}}, "materials.source"),
        (
            {"materials": {"kind": "git", "source": "https://g.example/x", "branch": "a;b"}},
            "materials.branch",
        ),
        ({"materials": {"kind": "ftp", "source": "/x"}}, "materials.kind"),
        ({"budget": 100}, "budget"),
    ],
)
def test_bad_settings_are_refused_by_name(site, changes, field):
    with pytest.raises(CourseError) as refused:
        parse_course(course(**changes), site)
    assert refused.value.field == field, str(refused.value)


def test_a_course_must_be_an_object(site):
    with pytest.raises(CourseError, match="send a JSON object"):
        parse_course(["phys101"], site)
