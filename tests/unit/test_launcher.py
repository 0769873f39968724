"""The app tiles: grouped by category, with a launch link that carries the app's request."""

from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from extensions.launcher import launch_url, tiles

pytestmark = pytest.mark.unit

APP = {
    "title": "Job Composer",
    "description": "Submit batch jobs.",
    "category": "General",
    "icon": "terminal",
    "image": "base",
    "profile": "cpu",
    "resources": {"cores": 1, "memory_gb": 2},
    "notebook": "job_composer/app.ipynb",
    "help_url": "https://slurm.schedmd.com/sbatch.html",
}


def user(running=()):
    spawners = {name: SimpleNamespace(active=True) for name in running}
    spawners[""] = SimpleNamespace(active=False)
    return SimpleNamespace(name="alice", spawners=spawners)


def test_the_launch_link_spawns_the_named_server_with_the_apps_options():
    url = urlsplit(launch_url("alice", "job-composer", APP))
    assert url.path == "/hub/spawn/alice/app-job-composer"
    query = parse_qs(url.query)
    assert query["opt-profile"] == ["cpu"] and query["opt-image"] == ["base"]
    assert query["opt-cores"] == ["1"] and query["opt-memory_gb"] == ["2"]
    assert query["next"] == [
        "/user/alice/app-job-composer/voila/render/corehour-apps/job-composer/app.ipynb"
    ]


def test_tiles_are_grouped_and_show_price_and_state():
    result = tiles(user(), {"job-composer": APP}, prices=lambda _u, _a: "0.060 credits per hour")
    (tile,) = result["groups"]["General"]
    assert tile["price"] == "0.060 credits per hour" and not tile["running"]
    running = tiles(user(running=["app-job-composer"]), {"job-composer": APP})
    (running_tile,) = running["groups"]["General"]
    assert running_tile["running"]
    assert (
        running_tile["lab_url"]
        == "/user/alice/app-job-composer/lab/tree/corehour-apps/job-composer"
    )
    assert tiles(None, {"job-composer": APP}) is None


@pytest.mark.parametrize(
    ("kind", "where", "opens", "lab"),
    [
        ({}, "voila", "voila/render/corehour-apps/x-app/app.ipynb", "lab/tree/corehour-apps/x-app"),
        ({"kind": "lab", "folder": "x"}, "lab", "lab/tree/corehour-apps/x-app", "lab/tree/corehour-apps/x-app"),
        ({"kind": "proxy", "proxy_path": "desktop"}, "proxy", "desktop/", "lab"),
    ],
)  # fmt: skip
def test_each_kind_of_app_opens_its_own_page(kind, where, opens, lab):
    app = {**APP, "notebook": None, **kind} if kind else APP
    (tile,) = tiles(user(running=["app-x-app"]), {"x-app": app})["groups"]["General"]
    assert tile["kind"] == where
    assert tile["open_url"] == f"/user/alice/app-x-app/{opens}"
    assert tile["lab_url"] == f"/user/alice/app-x-app/{lab}"
    next_page = parse_qs(urlsplit(launch_url("alice", "x-app", app)).query)["next"]
    assert next_page == [f"/user/alice/app-x-app/{opens}"]
