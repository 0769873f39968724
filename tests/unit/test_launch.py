"""spawners/launch.py, the job's first step: it reports a free port, then becomes the server."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from spawners.launch import with_port

pytestmark = pytest.mark.unit

LAUNCH = Path(__file__).resolve().parents[2] / "spawners" / "launch.py"


class FakeHubRoute(BaseHTTPRequestHandler):
    """The hub's /hub/api/batchspawner route, recording what it was sent."""

    seen: list[tuple[str, str, dict]] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeHubRoute.seen.append((self.path, self.headers["Authorization"], body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


def launched(python: str, *server: str) -> subprocess.CompletedProcess:
    """launch.py run by ``python`` with a stand-in hub that takes the port."""
    hub = HTTPServer(("127.0.0.1", 0), FakeHubRoute)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    try:
        env = {
            "PATH": "/usr/bin:/bin",
            "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub.server_port}/hub/api",
            "JUPYTERHUB_API_TOKEN": "secret-token",
            "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/ann/",
        }
        return subprocess.run(
            [python, str(LAUNCH), *server], env=env, capture_output=True, text=True, timeout=30
        )
    finally:
        hub.shutdown()


def test_the_port_is_reported_and_the_server_gets_it_in_its_url():
    server = Path(tempfile.mkdtemp()) / "server.py"
    server.write_text(
        "import os, sys\n"
        "assert sys.path[0] == os.path.dirname(__file__), sys.path[0]\n"
        "print(os.environ['JUPYTERHUB_SERVICE_URL'], sys.argv[1:])\n"
    )
    done = launched(sys.executable, str(server), "--flag")
    assert done.returncode == 0, done.stderr
    (path, auth, body), *_ = FakeHubRoute.seen
    assert (path, auth) == ("/hub/api/batchspawner", "token secret-token")
    assert set(body) == {"port"} and 1024 < body["port"] < 65536
    # The same process ran the server, with the reported port in its URL.
    assert done.stdout.strip() == f"http://0.0.0.0:{body['port']}/user/ann/ ['--flag']"


def test_a_hub_that_cannot_be_reached_fails_the_job_with_the_reason():
    env = {
        "PATH": "/usr/bin:/bin",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
        "JUPYTERHUB_API_TOKEN": "t",
        "JUPYTERHUB_SERVICE_URL": "http://0.0.0.0:8888/user/ann/",
    }
    done = subprocess.run(
        [sys.executable, str(LAUNCH), "/bin/true"], env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "could not tell the hub this server's port" in done.stderr


def test_only_the_port_of_the_url_changes():
    assert with_port("http://node7:8888/user/ann/srv/", 41234) == "http://node7:41234/user/ann/srv/"


@pytest.mark.parametrize("skipped", [True, False])
def test_jupyterlab_does_not_start_node_to_ask_yarn_for_a_registry(tmp_path, skipped):
    # A "node" that leaves a mark when JupyterLab runs it.
    mark = tmp_path / "node-ran"
    node = tmp_path / "node"
    node.write_text(f"#!/bin/sh\ntouch {mark}\nexit 1\n")
    node.chmod(0o755)
    skip = "launch.skip_yarn_config(); " if skipped else ""
    check = (
        f"import sys; sys.path.insert(0, sys.argv[1]); import launch; {skip}"
        "from jupyterlab.commands import AppOptions; print(AppOptions().registry)"
    )
    # In the notebook image's Python: the hub's environment has no JupyterLab.
    done = subprocess.run(
        ["/opt/corehour/images/base/bin/python", "-c", check, str(LAUNCH.parent)],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "https://registry.yarnpkg.com"
    assert mark.exists() is not skipped


def test_the_server_does_not_load_the_hubs_database_layer_yet_can_when_asked():
    check = (
        "import sys; sys.path.insert(0, sys.argv[1]); import launch;"
        "launch.skip_hub_database_layer();"
        "import jupyterhub.singleuser.extension, jupyterhub.log;"
        "loaded = lambda m: m in sys.modules and type(sys.modules[m]).__name__ != '_LazyModule';"
        "print(sorted(m for m in ('alembic', 'jupyterhub.orm', 'jupyterhub.roles',"
        " 'jupyterhub.handlers', 'jupyterhub.handlers.base') if loaded(m)));"
        "print(jupyterhub.log.HealthCheckHandler.__name__);"
        "from jupyterhub.handlers.pages import HealthCheckHandler;"
        "import jupyterhub.orm;"
        "print(HealthCheckHandler.__module__, jupyterhub.orm.User.__tablename__)"
    )
    # In the notebook image's Python, which is what a server's job runs.
    done = subprocess.run(
        ["/opt/corehour/images/base/bin/python", "-c", check, str(LAUNCH.parent)],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    not_loaded, log_matches, on_request = done.stdout.strip().splitlines()
    assert not_loaded == "[]"
    # The request log recognises no hub health check (a server never serves one) ...
    assert log_matches == "HubHealthCheckHandler"
    # ... and the real modules are still there for anything that asks for them.
    assert on_request == "jupyterhub.handlers.pages users"


def test_a_servers_port_is_below_the_ephemeral_range_and_set_by_its_job():
    """The flaw: a port chosen by bind(0) is an ephemeral one, which any outgoing connection on
    the node may take before the server binds it (a class of 30 lost a server that way)."""
    from spawners.launch import ephemeral_range, free_port

    low, _ = ephemeral_range()
    ports = [free_port(str(job)) for job in (1000, 1001, 1002)]
    assert all(20000 <= port < low for port in ports), ports
    assert len(set(ports)) == 3  # servers starting together on a node try different ports
    assert free_port("1000") == ports[0]  # the same job, the same first choice


def test_a_taken_port_is_skipped():
    import socket

    from spawners.launch import free_port

    first = free_port("7")
    with socket.socket() as taken:
        taken.bind(("", first))
        taken.listen()
        assert free_port("7") == first + 1


def test_a_server_runs_in_the_build_its_images_link_points_to(tmp_path):
    # An image as deploy/envs.sh lays it out: a build folder, and the image's name a link to it.
    build = tmp_path / "base.0123abcd"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(build)], check=True)
    (tmp_path / "base").symlink_to(build.name)
    server = build / "bin" / "server.py"
    server.write_text("import sys\nprint(sys.prefix, __file__)\n")
    link = tmp_path / "base" / "bin"
    done = launched(str(link / "python"), str(link / "server.py"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(build), str(server)]
