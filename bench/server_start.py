"""Notebook server start-up: an image as built against a baseline, in one run.

    /usr/bin/python3 -m bench.server_start [--image /opt/corehour/images/base]
        [--baseline PREFIX] [--runs 7]

Measures, as user nobody (who cannot write bytecode into the image), with a warm page cache:

- ready: from exec of `jupyterhub-singleuser` until its /api answers, with every server
  extension loaded; a stub hub answers the server's start-up call to the hub API;
- help: `jupyterhub-singleuser --help`;
- import: `python -c 'import jupyter_server.serverapp, jupyterlab'`.

The baseline is another build of the image (--baseline, e.g. an older /opt/corehour/images/
base.<hash>) or, by default, the same image with images/base/etc/jupyter settings undone
through a user-level config (what stock Jupyter would load). Runs alternate between the two.
Writes bench/results/server_start.json. Needs root (to switch to nobody) and a built image.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.report import write_result

AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
# Undoes images/base/etc/jupyter/jupyter_server_config.json from a user-level
# config dir, which Jupyter reads after the image's own.
STOCK_SETTINGS = {
    "ServerApp": {"jpserver_extensions": {"jupyter_lsp": True}},
    "LabApp": {
        "extension_manager": "pypi",
        "news_url": "https://jupyterlab.github.io/assets/feed.xml",
        "check_for_updates_class": "jupyterlab.handlers.announcements.CheckForUpdate",
    },
}


class StubHub(BaseHTTPRequestHandler):
    """Answers every request the way the hub's API root does."""

    def do_GET(self):
        body = b'{"version": "6.1.1"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-JupyterHub-Version", "6.1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def server_ready_seconds(prefix: str, hub_port: int, config_dir: str | None) -> float:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="corehour-bench-") as home:
        os.chown(home, *nobody_ids())
        env = {
            "PATH": f"{prefix}/bin:/usr/local/bin:/usr/bin:/bin",
            "HOME": home,
            "JUPYTERHUB_API_TOKEN": "bench",
            "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub_port}/hub/api",
            "JUPYTERHUB_BASE_URL": "/",
            "JUPYTERHUB_CLIENT_ID": "jupyterhub-user-bench",
            "JUPYTERHUB_OAUTH_CALLBACK_URL": "/user/bench/oauth_callback",
            "JUPYTERHUB_SERVICE_PREFIX": "/user/bench/",
            "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}/user/bench/",
            "JUPYTERHUB_USER": "bench",
        }
        if config_dir:
            env["JUPYTER_CONFIG_DIR"] = config_dir
        started = time.monotonic()
        server = subprocess.Popen(
            [*AS_NOBODY, f"{prefix}/bin/jupyterhub-singleuser"],
            cwd=home,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while not answers(f"http://127.0.0.1:{port}/user/bench/api"):
                if server.poll() is not None or time.monotonic() - started > 60:
                    raise RuntimeError(f"{prefix}: the server did not come up")
                time.sleep(0.01)
            return time.monotonic() - started
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def command_seconds(argv: list[str]) -> float:
    started = time.monotonic()
    subprocess.run([*AS_NOBODY, *argv], cwd="/", check=True, capture_output=True)
    return time.monotonic() - started


def nobody_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def measure(prefix: str, hub_port: int, config_dir: str | None) -> dict[str, float]:
    return {
        "ready": server_ready_seconds(prefix, hub_port, config_dir),
        "help": command_seconds([f"{prefix}/bin/jupyterhub-singleuser", "--help"]),
        "import": command_seconds(
            [f"{prefix}/bin/python", "-c", "import jupyter_server.serverapp, jupyterlab"]
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="/opt/corehour/images/base")
    parser.add_argument("--baseline", help="another build of the image to compare against")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    hub = ThreadingHTTPServer(("127.0.0.1", 0), StubHub)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    hub_port = hub.server_address[1]

    with tempfile.TemporaryDirectory(prefix="corehour-bench-config-") as stock:
        os.chmod(stock, 0o755)
        Path(stock, "jupyter_server_config.json").write_text(json.dumps(STOCK_SETTINGS))
        os.chmod(Path(stock, "jupyter_server_config.json"), 0o644)
        baseline = (args.baseline, None) if args.baseline else (args.image, stock)
        candidate = (args.image, None)
        for side in (baseline, candidate):  # warm the page cache
            measure(side[0], hub_port, side[1])
        samples: dict[str, list[dict[str, float]]] = {"baseline": [], "candidate": []}
        for _ in range(args.runs):
            samples["baseline"].append(measure(baseline[0], hub_port, baseline[1]))
            samples["candidate"].append(measure(candidate[0], hub_port, candidate[1]))
    hub.shutdown()

    medians = {
        side: {
            m: statistics.median(s[m] for s in samples[side]) for m in ("ready", "help", "import")
        }
        for side in ("baseline", "candidate")
    }
    for metric in ("ready", "help", "import"):
        base, cand = medians["baseline"][metric], medians["candidate"][metric]
        print(
            f"{metric:7} baseline {base:6.3f} s   candidate {cand:6.3f} s   ratio {cand / base:4.2f}"
        )
    write_result(
        "server_start",
        "median time from launching jupyterhub-singleuser to /api answering, as nobody",
        "s",
        medians["candidate"]["ready"],
        medians["baseline"]["ready"],
        image=args.image,
        baseline_is=args.baseline or f"{args.image} with stock Jupyter settings",
        runs=args.runs,
        help_seconds={k: round(v["help"], 3) for k, v in medians.items()},
        import_seconds={k: round(v["import"], 3) for k, v in medians.items()},
    )


if __name__ == "__main__":
    main()
