"""The app catalogue: entries checked against the site, bad ones named by slug and key."""

from pathlib import Path

import pytest

from voila_apps.catalogue import CatalogueError, parse_catalogue

pytestmark = pytest.mark.unit


def entry(**changes):
    app = {
        "slug": "lammps-melt",
        "title": "Molecular dynamics",
        "description": "A Lennard-Jones melt with LAMMPS.",
        "category": "Chemistry and materials",
        "icon": "atom",
        "image": "base",
        "profile": "cpu",
        "resources": {"cores": 4, "memory_gb": 4, "walltime_hours": 1},
        "notebook": "lammps_melt/app.ipynb",
        "help_url": "https://docs.lammps.org/",
    }
    app.update(changes)
    return app


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for folder in ("lammps_melt", "torch_digits"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "app.ipynb").write_text("{}")
    return tmp_path


def refused(data, site, root) -> str:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(data, site, "catalogue.yaml", root)
    return str(caught.value)


def test_a_good_catalogue_groups_apps_and_builds_their_spawn_requests(site, root):
    gpu = entry(
        slug="torch-digits",
        category="AI",
        icon="brain",
        image="gpu",
        profile="gpu",
        resources={"gpus": 1},
        notebook="torch_digits/app.ipynb",
    )
    catalogue = parse_catalogue({"apps": [entry(), gpu]}, site, "catalogue.yaml", root)
    assert [a.slug for a in catalogue.apps] == ["lammps-melt", "torch-digits"]
    assert list(catalogue.categories()) == ["Chemistry and materials", "AI"]
    app = catalogue.by_slug("lammps-melt")
    assert app.server_name == "app-lammps-melt"
    assert app.user_options() == {
        "profile": "cpu",
        "image": "base",
        "cores": 4,
        "memory_gb": 4,
        "walltime_hours": 1.0,
    }


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"profile": "huge"}, "apps.lammps-melt.profile: no profile 'huge'"),
        (
            {"image": "gpu", "profile": "bigmem", "resources": {"memory_gb": 32}},
            "apps.lammps-melt.image: 'gpu' is not offered",
        ),
        (
            {"resources": {"cores": 64}},
            "apps.lammps-melt.resources.cores: profile 'CPU notebook' allows 1 to 8 cores",
        ),
        ({"resources": {"gpus": 1}}, "apps.lammps-melt.resources.gpus"),
        (
            {"notebook": "missing/app.ipynb"},
            "apps.lammps-melt.notebook: missing/app.ipynb does not exist",
        ),
        ({"notebook": "../../etc/passwd.ipynb"}, "apps.lammps-melt.notebook"),
        ({"icon": "skull"}, "apps.lammps-melt.icon: 'skull' is not one of"),
        ({"help_url": "javascript:alert(1)"}, "apps.lammps-melt.help_url"),
        ({"slug": "Bad Slug"}, "apps.Bad Slug.slug"),
        ({"colour": "red"}, "apps.lammps-melt.colour: unknown key"),
        ({"kind": "shell"}, "apps.lammps-melt.kind: Input should be 'voila', 'lab' or 'proxy'"),
        ({"kind": "lab"}, "a lab app needs 'folder'"),
        ({"kind": "lab", "folder": "lammps_melt"}, "a lab app has no 'notebook'; it uses 'folder'"),
        ({"kind": "proxy"}, "a proxy app needs 'proxy_path'"),
        ({"kind": "voila", "notebook": None}, "a voila app needs 'notebook'"),
        (
            {"kind": "lab", "folder": "missing", "notebook": None},
            "apps.lammps-melt.folder: missing is no folder",
        ),
        ({"kind": "lab", "folder": "../../etc", "notebook": None}, "apps.lammps-melt.folder"),
        (
            {"kind": "proxy", "proxy_path": "../hub", "notebook": None},
            "apps.lammps-melt.proxy_path",
        ),
        ({"proxy_path": "desktop"}, "a voila app has no 'proxy_path'; it uses 'notebook'"),
    ],
)
def test_bad_entries_are_named(site, root, changes, named):
    assert named in refused({"apps": [entry(**changes)]}, site, root)


def test_a_slug_listed_twice_is_refused(site, root):
    assert "apps.lammps-melt.slug: 'lammps-melt' is listed twice" in refused(
        {"apps": [entry(), entry()]}, site, root
    )


def test_the_catalogue_must_be_a_mapping_of_apps(site, root):
    assert "must be a YAML mapping" in refused(["lammps"], site, root)
    assert "apps" in refused({}, site, root)


def test_each_kind_names_what_it_opens(site, root):
    lab = entry(slug="course-lab", kind="lab", folder="lammps_melt", notebook=None)
    desktop = entry(slug="desktop", kind="proxy", proxy_path="desktop", notebook=None)
    catalogue = parse_catalogue({"apps": [entry(), lab, desktop]}, site, "catalogue.yaml", root)
    kinds = {
        app.slug: (app.kind, app.notebook, app.folder, app.proxy_path) for app in catalogue.apps
    }
    assert kinds == {
        "lammps-melt": ("voila", "lammps_melt/app.ipynb", None, None),
        "course-lab": ("lab", None, "lammps_melt", None),
        "desktop": ("proxy", None, None, "desktop"),
    }
