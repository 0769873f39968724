"""Course materials: the command that brings them into a student's home, run for real."""

from __future__ import annotations

import subprocess

import pytest

from centre.materials import Materials, default_url, place_argv, target
from centre.site import load_site
from extensions.courses.settings import CourseError, parse_course
from tests.harness import DEPLOY

pytestmark = pytest.mark.unit


def test_a_folder_is_copied_without_overwriting_what_the_student_changed(tmp_path):
    source, home = tmp_path / "course", tmp_path / "home"
    (source / "week 1").mkdir(parents=True)
    (source / "intro.ipynb").write_text("instructor v1")
    (source / "week 1" / "lab's data.csv").write_text("1,2")
    materials = Materials("phys101", "folder", str(source))
    argv = place_argv(materials, str(home), "/opt/corehour/images/base")
    assert argv[:5] == ["env", "-C", str(home), "sh", "-c"]
    assert argv[-2:] == [str(source), str(home / "phys101")]
    home.mkdir()
    subprocess.run(argv, check=True)
    placed = home / "phys101"
    assert (placed / "intro.ipynb").read_text() == "instructor v1"
    assert (placed / "week 1" / "lab's data.csv").read_text() == "1,2"

    (placed / "intro.ipynb").write_text("my answers")
    (source / "intro.ipynb").write_text("instructor v2")
    (source / "week 2").mkdir()
    (source / "week 2" / "new.ipynb").write_text("new")
    subprocess.run(argv, check=True)
    assert (placed / "intro.ipynb").read_text() == "my answers"
    assert (placed / "week 2" / "new.ipynb").read_text() == "new"


def test_odd_names_in_the_settings_are_arguments_never_shell_text(tmp_path):
    materials = Materials("phys101", "folder", "/srv/x; touch /tmp/pwned")
    argv = place_argv(materials, str(tmp_path), "/img")
    assert argv[-2] == "/srv/x; touch /tmp/pwned"
    assert "pwned" not in argv[5]


def test_git_materials_are_pulled_by_nbgitpuller_from_the_image():
    materials = Materials("chem", "git", "https://git.example.org/chem.git", "term-2")
    assert place_argv(materials, "/home/ann", "/opt/img") == [
        "env",
        "-C",
        "/home/ann",
        "/opt/img/bin/gitpuller",
        "https://git.example.org/chem.git",
        "term-2",
        "/home/ann/chem",
    ]
    assert target("/home/ann", materials) == "/home/ann/chem"
    assert default_url(materials) == "/lab/tree/chem"
    assert Materials.from_settings("chem", None) is None
    assert Materials.from_settings("chem", {"kind": "git", "source": "/srv/git/chem.git"}) == (
        Materials("chem", "git", "/srv/git/chem.git", "main")
    )


def test_a_course_may_take_git_materials_from_the_shared_file_system():
    site = load_site(DEPLOY / "site.example.yaml")
    base = {
        "slug": "chem",
        "title": "Chemistry",
        "term_start": "2026-10-01",
        "term_end": "2027-02-01",
        "student_cap": "10",
        "default_profile": "cpu",
        "profiles": ["cpu"],
        "images": ["base"],
    }
    course = parse_course(
        {**base, "materials": {"kind": "git", "source": "/srv/git/chem.git"}}, site
    )
    assert course.materials.source == "/srv/git/chem.git"
    with pytest.raises(CourseError) as refused:
        parse_course({**base, "materials": {"kind": "git", "source": "/srv/../etc"}}, site)
    assert refused.value.field == "materials.source"
