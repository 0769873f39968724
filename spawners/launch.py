"""The first thing a server's Slurm job runs: tell the hub the port, then become the server.

    IMAGE/bin/python /opt/corehour/apps/spawners/launch.py IMAGE/bin/jupyterhub-singleuser ARGS...

It replaces batchspawner's wrapper (``batchspawner-singleuser``), which sends the port the
same way, so that the server can start with less work: every server start costs CPU on a
shared node, and when a class of thirty starts together, the last student waits for all of
it.  What is saved:

* JupyterLab, when imported, runs Node's yarn (a 2 MB script) to learn the npm registry, a
  Node process and 0.3 s of CPU per server, for extension installs that these servers never
  do (the images' extension manager is read-only).  Here that question gets an empty answer.
* batchspawner's package and ``requests``, imported only to send one number.
* The hub's own machinery: its request handlers, database layer and Alembic migrations,
  which the server imports only by name (0.3 s of CPU per server).

It runs in the image's Python, from the app code that deploy/envs.sh installs, and imports
nothing from corehour.  The server then runs in this same process (as batchspawner's wrapper
does), so Slurm's job step is the server itself.  A failure exits non-zero with the reason
on stderr, which is the job log the spawner shows the person.
"""

import importlib.abc
import importlib.util
import json
import os
import runpy
import socket
import sys
import types
import urllib.error
import urllib.request
from urllib.parse import urlparse, urlunparse

# The folder deploy/envs.sh installs the app code into: this file is its spawners/launch.py.
APP_CODE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Servers listen below the kernel's ephemeral range.  Between choosing a port and the server
# binding it (a few seconds of imports), any outgoing connection on the node could take a port
# of that range as its source port, and the server then fails to start: thirty servers of a
# class starting together, each talking to the hub, did exactly that.
PORT_FLOOR = 20000


def ephemeral_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    try:
        with open(path) as f:
            low, high = (int(word) for word in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(job_id: str = "", floor: int = PORT_FLOOR, ceiling: int | None = None) -> int:
    """A port that binds now, below the ephemeral range, tried from a place set by the job's
    number, so servers starting together on one node try different ports."""
    ceiling = ephemeral_range()[0] - 1 if ceiling is None else ceiling
    span = ceiling - floor + 1
    if span < 100:  # a node whose ephemeral range starts low: the kernel's choice, as before
        return _bind_probe(0)
    start = int(job_id) % span if job_id.isdigit() else int.from_bytes(os.urandom(2), "big") % span
    for step in range(span):
        port = floor + (start + step) % span
        try:
            return _bind_probe(port)
        except OSError:
            continue
    return _bind_probe(0)


def _bind_probe(port: int) -> int:
    with socket.socket() as probe:
        probe.bind(("", port))
        return probe.getsockname()[1]


def report_port(port: int) -> None:
    """POST the port to the hub's /batchspawner route (spawners/port_api.py checks it)."""
    request = urllib.request.Request(
        os.environ["JUPYTERHUB_API_URL"].rstrip("/") + "/batchspawner",
        data=json.dumps({"port": port}).encode(),
        headers={
            "Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"],
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        answer.read()


def with_port(service_url: str, port: int) -> str:
    url = urlparse(service_url)
    return urlunparse(url._replace(netloc=f"{url.hostname}:{port}"))


def on_its_build(argv: list[str]) -> None:
    """Go on in the image build that the image's link points to now, not through the link.

    deploy/envs.sh installs each build of an image in a folder of its own and points the
    image's prefix at it with a symlink.  Through the link, a rebuild would swap the code under
    a running server; and the paths a package computes from its own files (through the link)
    differ from the ones tornado resolves (the build), so jupyter_server refuses to serve a
    package's static files ("is not a subdirectory", a 500 for the desktop's page).
    """
    prefix, build = sys.prefix, os.path.realpath(sys.prefix)
    if build == prefix:
        return
    python = os.path.join(build, "bin", "python")
    server = [
        build + arg[len(prefix) :] if arg.startswith(prefix + os.sep) else arg for arg in argv
    ]
    os.execv(python, [python, os.path.abspath(__file__), *server])


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: launch.py SERVER-COMMAND [ARGS...]")
    on_its_build(argv)
    port = free_port(os.environ.get("SLURM_JOB_ID", ""))
    try:
        report_port(port)
    except (OSError, urllib.error.URLError, KeyError) as e:
        sys.exit(f"corehour: could not tell the hub this server's port: {e}")
    os.environ["JUPYTERHUB_SERVICE_URL"] = with_port(os.environ["JUPYTERHUB_SERVICE_URL"], port)
    skip_yarn_config()
    skip_hub_database_layer()
    sys.argv = argv
    # As if the server had been started directly: its own folder first on the path, not this
    # one (whose modules must not shadow anything the server imports).
    sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
    # Last on the server's path (never the kernels'), so the image's server config can load
    # corehour's server extensions (voila_apps/kit/usage_server.py) from the installed app code.
    sys.path.append(APP_CODE_ROOT)
    runpy.run_path(argv[0], run_name="__main__")


def skip_yarn_config() -> None:
    try:
        import jupyterlab.commands as lab  # the server imports it anyway
    except ImportError:  # an image without JupyterLab
        return
    if hasattr(lab, "_yarn_config"):
        lab._yarn_config = lambda logger: {"yarn config": {}, "npm config": {}}


# The hub's database layer (SQLAlchemy models and Alembic migrations), imported by the server
# only as names inside functions that a single-user server never calls.
HUB_ONLY_MODULES = ("jupyterhub.orm", "jupyterhub.roles")


class LoadOnFirstUse(importlib.abc.MetaPathFinder):
    """Import the named modules lazily: the module runs when one of its names is first used."""

    def __init__(self, names: tuple[str, ...]):
        self.names = frozenset(names)

    def find_spec(self, name, path, target=None):
        if name not in self.names:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


def skip_hub_database_layer() -> None:
    """Keep the hub's own machinery out of the server: 0.3 s of CPU per server start.

    jupyterhub.log imports the hub's page handlers only to recognise the hub's health check,
    and with them the whole hub (database layer, spawners, users).  A single-user server never
    sees that handler, so jupyterhub.log is imported once against a stand-in class, which the
    server's request log then never matches, as it never would.  The stand-in is removed at
    once, so anything else that asks for jupyterhub.handlers gets the real one.  jupyterhub.orm
    and jupyterhub.roles, which jupyterhub.scopes names but uses only inside hub functions,
    load on first use.
    """
    try:
        import jupyterhub
    except ImportError:  # not a JupyterHub server
        return
    sys.meta_path.insert(0, LoadOnFirstUse(HUB_ONLY_MODULES))
    names = ("jupyterhub.handlers", "jupyterhub.handlers.pages")
    if any(name in sys.modules for name in ("jupyterhub.log", *names)):
        return
    handlers, pages = types.ModuleType(names[0]), types.ModuleType(names[1])
    handlers.__path__ = []
    pages.HealthCheckHandler = type("HubHealthCheckHandler", (), {})
    sys.modules.update(zip(names, (handlers, pages), strict=True))
    try:
        import jupyterhub.log  # stays in sys.modules, for the server
    finally:
        for name in names:
            del sys.modules[name]
        if getattr(jupyterhub, "handlers", None) is handlers:
            del jupyterhub.handlers


if __name__ == "__main__":
    main(sys.argv[1:])
