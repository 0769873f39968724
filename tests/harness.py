"""A real portal for the integration, browser and benchmark tiers.

Starts configurable-http-proxy and JupyterHub as subprocesses on test ports,
with a site file derived from ``deploy/site.example.yaml``, against the real
local Slurm clusters.  Nothing here is mocked.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

import requests
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
HUB_BIN = Path("/opt/corehour/hub/bin")
SLURM_CONF = {c: f"/etc/corehour/slurm/{c}/slurm.conf" for c in ("alpha", "beta")}

TEST_USERS = ("chtest1", "chtest2", "chtest3")
TEST_CORE_HOUR, TEST_GPU_HOUR, TEST_GB_HOUR = "36", "72", "0.36"
TEST_PASSWORD = "corehour-test-pw"
# The tests' own admin: never the demo's hpcadmin, whose password UP hands out.
TEST_ADMIN = "chadmin"
# The REST reads the tests poll with; in a failure's log tail they would hide the rest.
_OWN_POLLING = re.compile(r" 200 GET /hub/api/users/\S+ \(corehour-tests@")


def slurm(cluster: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "SLURM_CONF": SLURM_CONF[cluster]}
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=check, timeout=60)


def squeue_jobs(cluster: str) -> list[dict]:
    return json.loads(slurm(cluster, "squeue", "--all", "--states=all", "--json").stdout)["jobs"]


def job_state(job: dict) -> str:
    state = job["job_state"]
    return state[0] if isinstance(state, list) else state


def alive_jobs(cluster: str, user: str | None = None) -> list[dict]:
    return [
        j
        for j in squeue_jobs(cluster)
        if job_state(j) in ("PENDING", "RUNNING", "CONFIGURING")
        and (user is None or j["user_name"] == user)
    ]


_NOT_ENDED = ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED")


def slurm_snapshot(user: str | None = None) -> str:
    """Each node's state and reason, and jobs with their state and reason: ``user``'s latest,
    or every job not yet ended.  What a failed start needs explained, in the assertion."""
    lines = []
    for cluster in SLURM_CONF:
        try:
            nodes = slurm(cluster, "sinfo", "-N", "-h", "-o", "%N %T %E %C", check=False).stdout
            jobs = [
                j
                for j in squeue_jobs(cluster)
                if j["user_name"] == user or (user is None and job_state(j) in _NOT_ENDED)
            ]
        except (OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
            lines.append(f"{cluster}: Slurm unreadable ({e})")
            continue
        node_states = " | ".join(dict.fromkeys(nodes.splitlines()))  # one line per partition
        lines.append(f"{cluster} nodes (state reason cpus A/I/O/T): {node_states}")
        for job in jobs[-8:]:
            lines.append(
                f"  job {job['job_id']} {job['user_name']} {job_state(job)}"
                f" reason={job.get('state_reason')} name={job.get('name')}"
            )
    return "\n".join(lines)


UNKILLABLE_LOG = Path("/var/log/corehour/unkillable-steps.log")
# What deploy/slurm/unkillable-step writes when the step had no process left at all.
NOTHING_LEFT = "nothing of the job is left under the step manager"
# Entries from before this test session are not this session's to explain.
_unkillable_read = UNKILLABLE_LOG.stat().st_size if UNKILLABLE_LOG.exists() else 0


END_OF_ENTRY = "-- end of entry"


def new_unkillable_entries() -> list[str]:
    """The whole entries deploy/slurm/unkillable-step appended since the last call (one still
    being written is left for the next call)."""
    global _unkillable_read
    if not UNKILLABLE_LOG.exists():
        return []
    with UNKILLABLE_LOG.open() as log:
        log.seek(_unkillable_read)
        text = log.read()
    whole = text[: text.rfind(END_OF_ENTRY) + len(END_OF_ENTRY)] if END_OF_ENTRY in text else ""
    _unkillable_read += len(whole.encode())
    return [entry for entry in re.split(r"(?m)^(?=== )", whole) if entry.strip()]


def wait_for_completing_jobs(timeout: float = 100) -> str:
    """Wait until no job is still ending on any cluster, so the next test finds free nodes;
    the jobs still ending after ``timeout`` seconds, or "".

    The bound is UnkillableStepTimeout (deploy/slurm/*.conf.in, 60 s) and its program's run,
    with room: the longest Slurm holds a node for a job whose processes have all ended."""
    deadline = time.monotonic() + timeout
    while True:
        ending = [
            f"{c} job {j['job_id']} of {j['user_name']}"
            for c in SLURM_CONF
            for j in squeue_jobs(c)
            if job_state(j) == "COMPLETING"
        ]
        if not ending or time.monotonic() > deadline:
            return ", ".join(ending)
        time.sleep(1)


def drained_for_kill_failures() -> str:
    """Nodes that Slurm drained because a step would not die, resumed, with what was recorded.

    Empty when none was. A drained node refuses every later job of the session, so the test
    that left one fails with the explanation instead of every later test timing out.  A drain
    where the step had no process left is Slurm's own wait (see the clusters' config): the node
    is resumed and the test goes on, with a warning.
    """
    found = []
    for cluster in SLURM_CONF:
        nodes = slurm(cluster, "sinfo", "-N", "-h", "-o", "%N|%T|%E", check=False).stdout
        for line in dict.fromkeys(nodes.splitlines()):
            node, state, reason = [*line.split("|", 2), "", ""][:3]
            if "drain" in state and "kill task failed" in reason.lower():
                found.append(f"{cluster} node {node}: {state} ({reason})")
                slurm(
                    cluster, "scontrol", "update", f"nodename={node}", "state=resume", check=False
                )
    entries = new_unkillable_entries()
    if not found and not entries:
        return ""
    if entries and all(NOTHING_LEFT in entry for entry in entries):
        warnings.warn(
            "Slurm drained a node although the step had no process left (resumed):\n"
            + "\n".join([*found, *(entry.splitlines()[0] for entry in entries)]),
            stacklevel=2,
        )
        return ""
    recorded = "\n".join(entries)[-6000:] or "(nothing recorded)"
    return "\n".join([*found, f"{UNKILLABLE_LOG} (new entries):", recorded])


def ensure_users(*names: str, password: str = TEST_PASSWORD) -> None:
    subprocess.run([str(DEPLOY / "users.sh"), "ensure", *names], check=True, capture_output=True)
    for name in names:
        subprocess.run([str(DEPLOY / "users.sh"), "set-password", name, password], check=True)


def portal_site(
    base_port: int,
    workdir: Path,
    poll_interval: float = 3.0,
    meter_interval: float = 2.0,
    clusters: dict | None = None,
) -> dict:
    """The example site on these ports; ``clusters`` adds clusters (with the test rates)."""
    site = yaml.safe_load((DEPLOY / "site.example.yaml").read_text())
    site["clusters"].update(clusters or {})
    site["hub"].update(
        bind_url=f"http://127.0.0.1:{base_port}",
        hub_port=base_port + 81,
        proxy_api_url=f"http://127.0.0.1:{base_port + 1}",
        admin_users=[TEST_ADMIN],
        poll_interval=poll_interval,
        start_timeout=90,
        named_server_limit_per_user=2,
    )
    site["billing"].update(
        service_url=f"http://127.0.0.1:{base_port + 91}",
        database_url=f"sqlite:///{workdir / 'billing.sqlite'}",
        meter_interval=meter_interval,
        idle_check_seconds=5,
        idle_timeout_minutes={"default": 60, "gpu": 20, "quick-idle": 1},
        # Dear on purpose: a second of one core is 10 milli-credits, so costs move visibly.
        rates=[
            {
                "cluster": cluster,
                "partition": partition,
                "valid_from": "2026-01-01",
                "core_hour": TEST_CORE_HOUR,
                "gpu_hour": TEST_GPU_HOUR,
                "gb_mem_hour": TEST_GB_HOUR,
            }
            for cluster, spec in site["clusters"].items()
            for partition in spec["partitions"]
        ],
    )
    site["profiles"]["quick-idle"] = {
        **site["profiles"]["cpu"],
        "display_name": "Stops after a minute idle (tests only)",
        "clusters": ["alpha"],
    }
    site["images"]["broken"] = {
        "display_name": "An image that is declared but not installed",
        "prefix": "/opt/corehour/images/not-installed",
    }
    site["profiles"]["broken"] = {
        "display_name": "Broken (tests only)",
        "partition": "cpu",
        "clusters": ["alpha"],
        "cores": {"min": 1, "max": 1, "default": 1},
        "memory_gb": {"min": 1, "max": 1, "default": 1},
        "walltime_hours": {"max": 1, "default": 1},
        "images": ["broken"],
    }
    return site


class Portal:
    """A proxy and a hub on ``base_port`` (proxy), ``base_port+1`` (proxy API), ``base_port+81`` (hub)."""

    def __init__(
        self,
        workdir: Path,
        base_port: int = 27000,
        site: dict | None = None,
        extra_config: str = "",
    ):
        self.workdir = workdir
        self.base_port = base_port
        self.url = f"http://127.0.0.1:{base_port}"
        self.api = f"{self.url}/hub/api"
        self.site = site or portal_site(base_port, workdir)
        self.token = secrets.token_hex(24)
        self.proxy_token = secrets.token_hex(24)
        # Prometheus' token: the hub service "metrics", read:metrics only (roots/hub.py).
        self.metrics_token = secrets.token_hex(32)
        self.state = workdir / "state"
        self.state.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "jupyterhub.log"
        (workdir / "site.yaml").write_text(yaml.safe_dump(self.site))
        (workdir / "jupyterhub_config.py").write_text(
            f"load_subconfig({str(REPO / 'roots' / 'jupyterhub_config.py')!r})\n"
            f"c.JupyterHub.services.append({{'name': 'corehour-tests', 'api_token': {self.token!r}}})\n"
            "c.JupyterHub.load_roles.append({'name': 'corehour-tests', 'services': ['corehour-tests'],\n"
            "    'scopes': ['admin:users', 'admin:servers', 'tokens', 'access:servers', 'read:users',\n"
            "               'access:services']})\n" + extra_config
        )
        self.proxy: subprocess.Popen | None = None
        self.hub: subprocess.Popen | None = None
        # The production entry point; the stock baseline of the benchmarks sets "jupyterhub".
        self.hub_program = "corehour-hub"
        self._migrated = False

    # -- processes --------------------------------------------------------------

    def env(self) -> dict:
        return {
            "PATH": f"{HUB_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "COREHOUR_SITE": str(self.workdir / "site.yaml"),
            "COREHOUR_STATE_DIR": str(self.state),
            "CONFIGPROXY_AUTH_TOKEN": self.proxy_token,
            "COREHOUR_METRICS_TOKEN": self.metrics_token,
        }

    def start(self) -> Portal:
        self.start_proxy()
        self.start_hub()
        return self

    def start_proxy(self) -> None:
        chp = shutil.which("configurable-http-proxy")
        assert chp, "configurable-http-proxy is not installed; run ./corehour test"
        self.proxy = subprocess.Popen(
            [
                chp,
                "--ip=127.0.0.1",
                f"--port={self.base_port}",
                "--api-ip=127.0.0.1",
                f"--api-port={self.base_port + 1}",
                f"--default-target=http://127.0.0.1:{self.base_port + 81}",
                f"--error-target=http://127.0.0.1:{self.base_port + 81}/hub/error",
            ],
            env=self.env(),
            stdout=open(self.workdir / "proxy.log", "ab"),  # noqa: SIM115 (the child keeps it)
            stderr=subprocess.STDOUT,
        )

    def migrate(self) -> None:
        """The deploy step a hub needs before it starts (the hub only checks the ledger)."""
        done = subprocess.run(
            [
                str(HUB_BIN / "python"),
                "-m",
                "roots.ops",
                "migrate",
                "--site",
                self.env()["COREHOUR_SITE"],
            ],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"python -m roots.ops migrate failed:\n{done.stdout}{done.stderr}")
        self._migrated = True

    def start_hub(self) -> None:
        if not self._migrated:
            self.migrate()
        self.hub = subprocess.Popen(
            [str(HUB_BIN / self.hub_program), "-f", str(self.workdir / "jupyterhub_config.py")],
            cwd=self.state,
            env=self.env(),
            stdout=open(self.log_path, "ab"),  # noqa: SIM115 (the child keeps it)
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.hub.poll() is not None:
                raise RuntimeError(
                    f"JupyterHub exited with {self.hub.returncode}:\n{self.log_tail()}"
                )
            try:
                if requests.get(f"{self.url}/hub/health", timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"JupyterHub did not become healthy:\n{self.log_tail()}")

    def stop_hub(self) -> None:
        if self.hub and self.hub.poll() is None:
            self.hub.send_signal(signal.SIGTERM)
            try:
                self.hub.wait(20)
            except subprocess.TimeoutExpired:
                self.hub.kill()
                self.hub.wait()
        self._stop_leftover_services()

    def _stop_leftover_services(self) -> None:
        """The hub stops its services on exit, but one it restarted itself may outlive it."""
        pattern = f"(billing_hooks|roots)[.][a-z_.]+ --site {self.workdir / 'site.yaml'}"
        deadline = time.monotonic() + 10
        while subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0:
            if time.monotonic() > deadline:
                subprocess.run(["pkill", "-KILL", "-f", pattern], capture_output=True)
                break
            time.sleep(0.2)

    def register_slurm_mail(self) -> Path:
        """Have the clusters' MailProg hand job mails to this portal (docs/notifications.md)."""
        result = subprocess.run(
            [
                str(HUB_BIN / "python"),
                "-m",
                "roots.ops",
                "slurm-mail",
                "--name",
                self.slurm_mail_name,
            ],
            env={**self.env(), "COREHOUR_BILLING_DB": self.billing_db},
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        return Path(result.stdout.strip())

    def unregister_slurm_mail(self) -> None:
        (Path("/etc/corehour/slurm-mail.d") / f"{self.slurm_mail_name}.json").unlink(
            missing_ok=True
        )

    @property
    def slurm_mail_name(self) -> str:
        return f"tests-{self.base_port}"

    def restart_hub(self) -> None:
        self.stop_hub()
        self.start_hub()

    def stop(self) -> None:
        self.stop_hub()
        if self.proxy and self.proxy.poll() is None:
            self.proxy.terminate()
            self.proxy.wait(10)

    def log_tail(self, lines: int = 60) -> str:
        """The hub log's last lines, without the tests' own polling of the REST API."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no hub log)"
        kept = [line for line in text.splitlines() if not _OWN_POLLING.search(line)]
        return "\n".join(kept[-lines:])

    # -- REST -------------------------------------------------------------------

    def request(
        self, method: str, path: str, token: str | None = None, **kwargs
    ) -> requests.Response:
        headers = {"Authorization": f"token {token or self.token}"}
        return requests.request(method, f"{self.api}{path}", headers=headers, timeout=30, **kwargs)

    # -- billing ----------------------------------------------------------------

    @property
    def billing_url(self) -> str:
        return f"{self.url}/services/billing"

    @property
    def billing_db(self) -> str:
        return self.site["billing"]["database_url"]

    def billing(self, method: str, path: str, token: str, **kwargs) -> requests.Response:
        return requests.request(
            method,
            f"{self.billing_url}/{path.lstrip('/')}",
            headers={"Authorization": f"token {token}"},
            timeout=30,
            **kwargs,
        )

    def billing_service_pid(self) -> int:
        out = subprocess.run(
            ["pgrep", "-f", f"roots.billing --site {self.workdir / 'site.yaml'}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        assert out, "the billing service is not running"
        return int(out[0])

    def wait_billing(self, token: str, timeout: float = 60) -> dict:
        """/api/me once the billing service answers (it also makes the personal account)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = self.billing("GET", "api/me", token)
                if response.status_code == 200:
                    return response.json()
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the billing service did not answer:\n{self.log_tail()}")
            time.sleep(0.5)

    def login(self, name: str, password: str = TEST_PASSWORD) -> requests.Session:
        """A browser-like session logged in through the real PAM login form."""
        session = requests.Session()
        session.get(f"{self.url}/hub/login", timeout=30)
        response = session.post(
            f"{self.url}/hub/login",
            data={
                "username": name,
                "password": password,
                "_xsrf": session.cookies.get("_xsrf", ""),
            },
            timeout=30,
        )
        assert "jupyterhub-session-id" in session.cookies or response.ok, response.text[:300]
        return session

    def user_token(self, name: str) -> str:
        self.request("POST", "/users", json={"usernames": [name]})  # 201, or 409 if it exists
        response = self.request("POST", f"/users/{name}/tokens", json={"note": "corehour tests"})
        assert response.status_code == 201, response.text
        return response.json()["token"]

    def server_model(self, user: str, server: str = "") -> dict | None:
        model = self.request("GET", f"/users/{user}").json()
        return model.get("servers", {}).get(server)

    def start_server(self, user: str, token: str, server: str = "", **options) -> requests.Response:
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        return self.request("POST", path, token=token, json=options)

    def start_and_wait(self, servers, tokens, **options) -> None:
        """Start ``servers`` ((user, name) pairs) together and wait until all are ready."""
        for user, name in servers:
            response = self.start_server(user, tokens[user], name, **options)
            assert response.status_code in (201, 202), response.text
        for user, name in servers:
            self.wait_ready(user, name)

    def wait_ready(self, user: str, server: str = "", timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.server_model(user, server)
            if model is None:
                raise AssertionError(
                    f"server {user}/{server} vanished while starting:\n{self.log_tail()}"
                    f"\n{slurm_snapshot(user)}"
                )
            if model.get("ready"):
                return model
            time.sleep(0.1)
        raise AssertionError(
            f"server {user}/{server} not ready after {timeout} s:\n{self.log_tail()}"
            f"\n{slurm_snapshot(user)}"
        )

    def wait_gone(self, user: str, server: str = "", timeout: float = 30) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.server_model(user, server) is None:
                return time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(
            f"server {user}/{server} still listed after {timeout} s:\n{self.log_tail()}"
        )

    def stop_server(self, user: str, server: str = "") -> None:
        path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
        self.request("DELETE", path, json={"remove": bool(server)})

    def stop_all(self, users) -> None:
        """Stop every server of ``users`` and delete their named ones, stopped ones included."""
        for user in users:
            model = self.request("GET", f"/users/{user}?include_stopped_servers=1").json()
            for name in list(model.get("servers", {})):
                self.stop_server(user, name)
        for user in users:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.request("GET", f"/users/{user}").json().get(
                "servers"
            ):
                time.sleep(0.2)

    def progress_events(
        self, user: str, server: str = "", token: str | None = None, timeout: float = 60
    ):
        """Yield the spawn-progress events (server-sent events) as dicts."""
        path = (
            f"/users/{user}/servers/{server}/progress"
            if server
            else f"/users/{user}/server/progress"
        )
        headers = {"Authorization": f"token {token or self.token}"}
        with requests.get(
            f"{self.api}{path}", headers=headers, stream=True, timeout=timeout
        ) as response:
            for line in response.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    yield json.loads(line[len("data:") :])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
