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

It runs in the image's Python, from the app code that deploy/envs.sh installs, and imports
nothing from corehour.  The server then runs in this same process (as batchspawner's wrapper
does), so Slurm's job step is the server itself.  A failure exits non-zero with the reason
on stderr, which is the job log the spawner shows the person.
"""

import json
import os
import runpy
import socket
import sys
import urllib.error
import urllib.request
from urllib.parse import urlparse, urlunparse


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
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


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: launch.py SERVER-COMMAND [ARGS...]")
    port = free_port()
    try:
        report_port(port)
    except (OSError, urllib.error.URLError, KeyError) as e:
        sys.exit(f"corehour: could not tell the hub this server's port: {e}")
    os.environ["JUPYTERHUB_SERVICE_URL"] = with_port(os.environ["JUPYTERHUB_SERVICE_URL"], port)
    skip_yarn_config()
    sys.argv = argv
    # As if the server had been started directly: its own folder first on the path, not this
    # one (whose modules must not shadow anything the server imports).
    sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
    runpy.run_path(argv[0], run_name="__main__")


def skip_yarn_config() -> None:
    try:
        import jupyterlab.commands as lab  # the server imports it anyway
    except ImportError:  # an image without JupyterLab
        return
    if hasattr(lab, "_yarn_config"):
        lab._yarn_config = lambda logger: {"yarn config": {}, "npm config": {}}


if __name__ == "__main__":
    main(sys.argv[1:])
