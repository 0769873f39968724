"""CorehourSpawner: notebook servers as Slurm jobs on any cluster of the site.

Built on batchspawner's SlurmSpawner (its user environment handling and the
port report, now sent by ``spawners/launch.py``), with the parts that matter
replaced:

* ``user_options`` from the form and the REST API are validated against the
  site's allow-list before anything runs (HTTP 400 otherwise);
* the batch script is rendered by a pure function from checked values only;
* commands run as argv lists, never through a shell;
* job state comes from a shared ``squeue --json`` per cluster per cycle;
* a job that dies before its server reports in fails the spawn at once, with
  the tail of the job's log, instead of waiting out ``start_timeout``.

It never falls back to running a server on the hub host.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import os
import pwd
import string
import time
from dataclasses import replace
from datetime import datetime
from functools import partial

from batchspawner import SlurmSpawner
from jupyterhub.spawner import SpawnException
from jupyterhub.utils import url_path_join
from tornado import web
from traitlets import Any, Bool, Callable, Dict, Float, Integer, List, Unicode, default, observe

from centre.admission import Admission, AdmissionRefused, admit
from centre.batch_script import JobSpec, job_environment, render_batch_script, request_fields
from centre.job_samples import KEY_VARIABLE as USAGE_KEY_VARIABLE
from centre.job_samples import KEYS_VARIABLE as USAGE_KEYS_VARIABLE
from centre.materials import default_url, place_argv
from centre.options import AUTO, OptionError, SpawnRequest, options_from_form, validate_user_options
from centre.people import account_of, job_refusal
from centre.pricing import NoRateError, RateBook, Tres, hourly_price_mc
from centre.site import Site, parse_site, public_site
from centre.slurm_cli import CommandResult, cluster_argv, failure_reason, run_command
from centre.slurm_json import parse_test_only, queue_position

from . import port_api
from .apps import AppFiles, app_files
from .form import render_options_form
from .routing import NoClusterAvailable, RecentAnswers, choose_cluster, start_estimates
from .status_board import StatusBoard

port_api.install()

_JOB_NAME_CHARS = frozenset(string.ascii_lowercase + string.digits + "-")
_sites: dict[str, Site] = {}
_boards: dict[str, StatusBoard] = {}


def status_boards() -> list[StatusBoard]:
    """The hub's status boards (one per site), for its metrics."""
    return list(_boards.values())


_public_sites: dict[str, str] = {}


def shared_board(
    site_config: dict, slurm_timeout: float = 30.0, site_key: str | None = None
) -> StatusBoard:
    """The status board of a site (``c.CorehourSpawner.site``): one per site in the hub, shared
    by every spawner and by whoever else asks whether a job runs, so Slurm is asked once."""
    key = site_key or json.dumps(site_config, sort_keys=True)
    if key not in _boards:
        if key not in _sites:
            _sites[key] = parse_site(site_config, "c.CorehourSpawner.site")
        site = _sites[key]
        _boards[key] = StatusBoard(
            partial(_fetch_slurm, site, slurm_timeout, QUEUE_QUERY),
            fetch_nodes=partial(_fetch_slurm, site, slurm_timeout, NODES_QUERY),
        )
    return _boards[key]


# --test-only answers, shared by every spawner of this hub (spawners/routing.py).
_recent_answers = RecentAnswers()


def spawn_failed(message: str, reason: str, status_code: int = 500) -> SpawnException:
    """A spawn that cannot succeed; JupyterHub shows ``message`` to the person as it is."""
    error = SpawnException(message, reason=reason, status_code=status_code)
    # Without this JupyterHub prefixes the class name and status to what the person reads.
    error.jupyterhub_message = message
    error.jupyterhub_html_message = f"<pre>{html.escape(message)}</pre>"
    return error


def person_refusal(spawner: CorehourSpawner) -> str | None:
    """Why no server may run as this person, or None: never a system account, a reserved or
    admin name, or someone outside the portal group (centre/people.py)."""
    refusal = job_refusal(account_of(spawner.user.name), spawner.site_model.hub.person_rules())
    if refusal is None:
        return None
    return (
        f"No server can start for {spawner.user.name!r}: {refusal}. "
        "If you think this is wrong, ask the centre's support."
    )


def checked_request(spawner: CorehourSpawner, user_options: dict) -> SpawnRequest:
    """``user_options`` through the allow-list, for a person who may run jobs at all; else
    the HTTP refusal a start would give (403 for the person, 400 naming the field)."""
    refusal = person_refusal(spawner)
    if refusal is not None:
        raise web.HTTPError(403, refusal)
    try:
        return validate_user_options(user_options, spawner.site_model)
    except OptionError as e:
        raise web.HTTPError(400, str(e)) from None


async def _apply_options(spawner: CorehourSpawner, user_options: dict) -> None:
    request = checked_request(spawner, user_options)
    try:
        admission = await admit(spawner.admission, Admission(spawner.user.name, request))
    except AdmissionRefused as e:
        raise web.HTTPError(e.status, str(e)) from None
    spawner.account = admission.account
    spawner.course_materials = admission.materials
    # Admission may narrow auto's clusters (to those where Slurm knows the account).
    spawner.request = admission.request


class CorehourSpawner(SlurmSpawner):
    site = Dict(
        help="""The validated site file (clusters, partitions, profiles, images) as plain data.

        Set by the hub's composition root (roots/hub.py) from the site YAML; do not edit by hand.
        """,
    ).tag(config=True)

    user_prefix = List(
        Unicode(),
        default_value=["sudo", "-n", "-u", "{username}"],
        help="""argv prefix that runs a Slurm command as the person, with {username} filled in.

        No -E: sudo resets the environment, and the rule deploy/sudo.sh installs keeps only
        what the server's job needs (JUPYTERHUB_*, COREHOUR_SITE_JSON, SLURM_CONF).  -n makes
        a missing rule an error at once instead of a password prompt nobody answers.
        """,
    ).tag(config=True)

    log_subdir = Unicode(
        ".corehour/logs",
        help="Folder under the person's home where each server job writes its log.",
    ).tag(config=True)

    start_poll_interval = Float(
        0.25,
        help="""Seconds between job-state checks while a server starts.

        Checks are shared: many servers starting at once still cost one squeue
        per cluster per interval.  Keeps a dead job's failure under 2 seconds.
        """,
    ).tag(config=True)

    log_tail_lines = Integer(
        20, help="How many lines of a failed job's log to show the person."
    ).tag(config=True)

    slurm_timeout = Float(
        30.0, help="Seconds to wait for any one Slurm command before calling it failed."
    ).tag(config=True)

    admission = List(
        Callable(),
        help="""The steps a start passes before anything reaches Slurm, in order
        (centre/admission.py): each takes the Admission so far and returns it with its
        decision filled in (the account to charge, a course's materials), or raises
        AdmissionRefused with what the person must know.

        Set by the hub's composition root (roots/hub.py): on a site that bills, billing's
        choice of account, a course's rules, then billing's money check.  Empty: every
        valid request starts, charged to no account.
        """,
    ).tag(config=True)

    recent_use_path = Unicode(
        "",
        help="""Path, below the hub's base URL, of an API that lists the person's recent jobs with
        their efficiency (``{"jobs": [{"partition", "name", "cores", "efficiency":
        {"cpu_percent"}}]}``).  The spawn form then says how busy the person's last servers on
        the chosen profile were, and the smaller shape that would have served.  Empty: it says
        nothing.  Set by the hub's composition root to My jobs' API.""",
    ).tag(config=True)

    usage_report_key = Callable(
        None,
        allow_none=True,
        help="""(username, cluster) -> key: the key a server's job shows when it reports its
        use for the job history (``centre/job_samples.py``), passed to the job as
        ``COREHOUR_USAGE_KEY``, with the person's keys for every cluster in
        ``COREHOUR_USAGE_KEYS`` for the batch jobs its apps submit.  None: jobs keep no
        history.  Set by the hub's composition root to the monitoring feature's key.""",
    ).tag(config=True)

    form_billing = Callable(
        None,
        allow_none=True,
        help="""async (username) -> (billing, notice): the accounts and prices the spawn form
        shows for its live price, or (None, a notice for the person) when they cannot be
        read.  None: the form shows no prices.  Set by the hub's composition root.""",
    ).tag(config=True)

    apps = Dict(
        help="""The app catalogue as plain data: {slug: {"notebook": "folder/app.ipynb", ...}}.

        A named server "app-<slug>" gets that app's notebook copied into the person's home
        before its job starts.  Set by the hub's composition root from voila_apps/catalogue.yaml.
        """,
    ).tag(config=True)

    preheat_apps = Bool(
        True,
        help="""Start an app server with a kernel already running and the app's widget module
        imported, so Voila's first render skips both (voila_apps/kit/preheat.py).  Off only to
        measure the difference (bench/app_first_render.py).""",
    ).tag(config=True)
    apps_root = Unicode(
        "/opt/corehour/apps/voila_apps",
        help="Where the app notebooks are installed, readable by every user (deploy/envs.sh apps).",
    ).tag(config=True)

    launcher = Unicode(
        "/opt/corehour/apps/spawners/launch.py",
        help="""The script a server's job runs first, in the image's Python: it reports the
        port to the hub and then becomes jupyterhub-singleuser (spawners/launch.py, installed
        world-readable by deploy/envs.sh apps).  It replaces batchspawner-singleuser, which
        spends 0.7 s of CPU per server importing the hub's database layer.""",
    ).tag(config=True)

    cluster = Unicode(help="The cluster the current job runs on (kept in the hub's state).")
    account = Unicode(help="The ledger and Slurm account the current job is charged to.")

    course_materials = Any(
        None,
        allow_none=True,
        help="The course materials (centre.materials.Materials) of the current start, if any.",
    )

    materials_timeout = Float(
        120,
        help="""Seconds a course's materials may take to reach a student's home at start
        (a folder copy, or nbgitpuller fetching a repository) before the server starts
        without the update.""",
    ).tag(config=True)
    _submitted_at = 0.0
    request: SpawnRequest | None = None

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return _apply_options

    @default("options_form")
    def _default_options_form(self):
        return _options_form

    @default("options_from_form")
    def _default_options_from_form(self):
        return _form_to_options

    @default("ip")
    def _default_ip(self):
        # The server binds on every interface of its node; the hub reaches it by node name.
        return "0.0.0.0"

    @property
    def _site_key(self) -> str:
        # One model and one status board per site, found by content: the hub's site is a
        # SharedDict that carries its fingerprint, and a plain dict (a deep copy per
        # spawner, as traitlets makes them) is fingerprinted once per spawner.
        key = getattr(self.site, "fingerprint", None) or getattr(self, "_site_key_cache", None)
        if key is None:
            key = self._site_key_cache = json.dumps(self.site, sort_keys=True)
        return key

    @property
    def site_model(self) -> Site:
        key = self._site_key
        if key not in _sites:
            _sites[key] = parse_site(self.site, "c.CorehourSpawner.site")
        return _sites[key]

    @property
    def board(self) -> StatusBoard:
        return shared_board(self.site, self.slurm_timeout, self._site_key)

    def _as_user(self, cluster: str, argv: list[str]) -> list[str]:
        return cluster_argv(
            self.site_model.clusters[cluster],
            argv,
            username=self.user.name,
            user_prefix=self.user_prefix,
        )

    # -- state ------------------------------------------------------------------

    def get_state(self):
        state = super().get_state()
        if self.cluster:
            state["cluster"] = self.cluster
        if self.account:
            state["account"] = self.account
        return state

    def load_state(self, state):
        super().load_state(state)
        self.cluster = state.get("cluster", "")
        self.account = state.get("account", "")

    def clear_state(self):
        if self.cluster:
            self.board.unwatch(self.cluster, self)
        super().clear_state()
        self.cluster = ""
        self.account = ""

    # -- progress ---------------------------------------------------------------

    @observe("port")
    def _port_reported(self, change):
        if change.new:
            self._reported_at = self.board.clock()
            self._port_event().set()

    def _port_event(self) -> asyncio.Event:
        if getattr(self, "_port_set", None) is None:
            self._port_set = asyncio.Event()
        return self._port_set

    def _say(self, message: str, progress: int) -> None:
        self._messages.append({"message": message, "progress": progress})

    async def progress(self):
        seen, shown = 0, None
        while True:
            messages = getattr(self, "_messages", [])
            if messages is not shown:  # a new start() began a new list
                seen, shown = 0, messages
            while seen < len(messages):
                yield messages[seen]
                seen += 1
            await asyncio.sleep(0.25)

    # -- start ------------------------------------------------------------------

    async def start(self):
        self._messages = []
        self.port = 0
        self._port_set = asyncio.Event()
        refusal = person_refusal(self)
        if refusal is not None:  # also here: a start need not come through apply_user_options
            raise spawn_failed(refusal, "person_refused", 403)
        request = self.request or validate_user_options(self.user_options, self.site_model)
        home = pwd.getpwnam(self.user.name).pw_dir
        spec = self._job_spec(request, home)
        try:
            script = render_batch_script(spec)
        except ValueError as e:
            raise spawn_failed(
                f"This server cannot be described to Slurm safely ({e}); please tell the centre's support.",
                "unsafe_job",
            ) from None

        cluster = request.cluster
        if cluster == AUTO:
            self._say("Asking the clusters where the job would start soonest", 5)
            cluster = await self._choose_cluster(request, script)
        self.cluster = cluster
        target = self.site_model.clusters[cluster]
        if target.remote:
            # ssh forwards no environment: the server's variables travel in the script body.
            spec = replace(spec, environment=job_environment(self.get_env(), target.slurm_conf))
            script = render_batch_script(spec)
        self._say(f"Submitting to {cluster}/{request.partition}", 10)

        log_dir = f"{home}/{self.log_subdir}"
        # A local home can be checked from here; a remote one needs the trip to the cluster.
        if self.site_model.clusters[cluster].remote or not os.path.isdir(log_dir):
            await run_command(
                self._as_user(cluster, ["mkdir", "-p", log_dir]), timeout=self.slurm_timeout
            )
        app = app_files(self.name, self.apps, self.apps_root, home)
        if app is not None:
            await self._place_app(cluster, app)
        if self.course_materials is not None:
            await self._place_materials(cluster, home, request.image)
        job_id = await self._submit(cluster, script)
        # Only a squeue that starts after sbatch has returned is sure to list the job.
        self._submitted_at = self.board.clock()
        self.job_id = job_id
        # Saved now, not when start() returns: a hub restarted mid-start must still know
        # the job, so that it can cancel it.
        self.orm_spawner.state = self.get_state()
        self.db.commit()
        self.log.info(
            "%s: job %s submitted to %s/%s", self._log_name, job_id, cluster, request.partition
        )
        self._say(f"Job {job_id} submitted to {cluster}/{request.partition}", 20)

        node = await self._wait_until_serving(cluster, job_id, spec.output)
        self.log.info("%s: job %s serving on %s:%s", self._log_name, job_id, node, self.port)
        self.board.watch(cluster, self, self.poll_interval)
        return node, self.port

    async def _place_app(self, cluster: str, app: AppFiles) -> None:
        """Put the app's files into the person's home, as them."""
        for argv in app.place_argvs():
            result = await run_command(self._as_user(cluster, argv), timeout=self.slurm_timeout)
            if not result.ok:
                raise spawn_failed(
                    f"The app {app.slug} could not be placed in your home: {_last_line(result)}",
                    "app_files",
                )

    async def _place_materials(self, cluster: str, home: str, image: str) -> None:
        """Bring the course's materials into the student's home, as them.  A failure does not
        stop the server: the student still has what they had, and is told."""
        materials = self.course_materials
        self._say(
            f"Bringing the materials of course {materials.course} into ~/{materials.course}", 15
        )
        argv = place_argv(materials, home, self.site_model.images[image].prefix)
        result = await run_command(self._as_user(cluster, argv), timeout=self.materials_timeout)
        if not result.ok:
            self.log.warning(
                "%s: course materials not placed: %s", self._log_name, _last_line(result)
            )
            self._say(
                f"The materials of course {materials.course} could not be updated "
                f"({_last_line(result)}); your server starts with the files you have.",
                16,
            )

    def get_env(self):
        env = super().get_env()
        # App notebooks check their forms against the same site as the hub, but only its
        # public part: the person can read this environment.
        env["COREHOUR_SITE_JSON"] = self._public_site_json
        if self.usage_report_key is not None and self.cluster:
            env[USAGE_KEY_VARIABLE] = self.usage_report_key(self.user.name, self.cluster)
            # For the batch jobs its apps submit, to this cluster or another.
            env[USAGE_KEYS_VARIABLE] = " ".join(
                self.usage_report_key(self.user.name, name) for name in self.site_model.clusters
            )
        return env

    @property
    def _public_site_json(self) -> str:
        key = self._site_key
        if key not in _public_sites:
            _public_sites[key] = json.dumps(public_site(self.site_model))
        return _public_sites[key]

    def get_args(self):
        args = super().get_args()
        if self.course_materials is not None:
            args.append(f"--ServerApp.default_url={default_url(self.course_materials)}")
        app = self._app()
        if app is not None:
            args.extend(app.server_args(self.server.base_url, self.preheat_apps))
        return args

    def _app_code_path(self) -> str | None:
        """A Voila app's server imports corehour's preheating kernel manager and the app's
        widgets from the installed app code; other servers import nothing of ours."""
        app = self._app()
        if app is None or not app.needs_app_code:
            return None
        return os.path.dirname(self.apps_root.rstrip("/"))

    def _app(self) -> AppFiles | None:
        """The app this server runs; only its home-independent parts are used from here."""
        return app_files(self.name, self.apps, self.apps_root, "~")

    async def _submit(self, cluster: str, script: str) -> str:
        """Run sbatch; if the spawn is cancelled meanwhile, cancel the job it made."""
        submission = asyncio.ensure_future(
            run_command(
                self._as_user(cluster, ["sbatch", "--parsable"]),
                # A remote job's variables are in its script (start); none go to ssh.
                env=None if self.site_model.clusters[cluster].remote else self.get_env(),
                input_text=script,
                timeout=self.slurm_timeout,
            )
        )
        try:
            result = await asyncio.shield(submission)
        except asyncio.CancelledError:
            result = await submission
            if result.ok:
                orphan = _job_id_of(result)
                await run_command(
                    self._as_user(cluster, ["scancel", orphan]), timeout=self.slurm_timeout
                )
                self.log.info("%s: cancelled job %s of an abandoned spawn", self._log_name, orphan)
            raise
        if result.returncode == 124:
            raise spawn_failed(
                f"Slurm on {cluster} did not answer within {self.slurm_timeout:g} s; "
                "please try again in a minute.",
                "slurm_timeout",
                503,
            )
        if not result.ok:
            raise spawn_failed(
                f"Slurm on {cluster} refused the job: {_last_line(result)}", "slurm_refused", 503
            )
        return _job_id_of(result)

    def _job_spec(self, request: SpawnRequest, home: str) -> JobSpec:
        prefix = self.site_model.images[request.image].prefix
        command = [
            f"{prefix}/bin/python",
            self.launcher,
            f"{prefix}/bin/jupyterhub-singleuser",
            *self.get_args(),
        ]
        suffix = "".join(c for c in self.name.lower() if c in _JOB_NAME_CHARS)[:24]
        return JobSpec(
            job_name=f"corehour-{suffix}" if suffix else "corehour",
            **request_fields(request),
            workdir=home,
            output=f"{home}/{self.log_subdir}/server-%j.log",
            command=command,
            path_prefix=f"{prefix}/bin",
            python_path=self._app_code_path(),
            account=self.account or None,
        )

    async def _expected_starts(
        self, request: SpawnRequest, script: str, clusters: list[str]
    ) -> dict[str, datetime | None]:
        """Each cluster's ``sbatch --test-only`` answer for this request, as the person."""

        async def expected_start(cluster: str) -> datetime | None:
            result = await run_command(
                self._as_user(cluster, ["sbatch", "--test-only"]),
                input_text=script,
                timeout=self.slurm_timeout,
            )
            return parse_test_only(result.stderr) if result.ok else None

        shape = (request.partition, request.cores, request.memory_gb, request.gpus,
                 request.walltime_minutes, self.account)  # fmt: skip
        answers = await asyncio.gather(
            *(_recent_answers.get((c, *shape), partial(expected_start, c)) for c in clusters)
        )
        return dict(zip(clusters, answers, strict=True))

    async def _choose_cluster(self, request: SpawnRequest, script: str) -> str:
        # A cluster the status board just found unreachable is not asked: over ssh the
        # question would wait out the connect timeout for an answer known to be none.
        down = self.board.unreachable()
        candidates = [c for c in request.candidate_clusters if c not in down]
        if not candidates:
            reasons = "; ".join(f"{c}: {_first_line(down[c])}" for c in request.candidate_clusters)
            raise spawn_failed(
                f"None of the clusters can be reached right now ({reasons}); "
                "please try again in a few minutes.",
                "no_cluster",
                503,
            )
        starts = await self._expected_starts(request, script, candidates)
        try:
            return choose_cluster(candidates, starts, datetime.now(), self._hourly_prices(request))
        except NoClusterAvailable as e:
            raise spawn_failed(str(e), "no_cluster", 503) from None

    async def start_estimates(self, request: SpawnRequest) -> list[dict]:
        """For the spawn form: each candidate cluster's expected start and hourly price for
        ``request``, asked as ``auto`` would ask (and from the same few-second cache)."""
        home = pwd.getpwnam(self.user.name).pw_dir
        script = render_batch_script(self._job_spec(request, home))
        clusters = request.candidate_clusters if request.cluster == AUTO else (request.cluster,)
        down = self.board.unreachable()
        starts = await self._expected_starts(
            request, script, [c for c in clusters if c not in down]
        )
        return start_estimates(
            clusters,
            starts,
            datetime.now(),
            self._hourly_prices(request),
            {c: _first_line(down[c]) for c in clusters if c in down},
        )

    def _hourly_prices(self, request: SpawnRequest) -> dict[str, int]:
        """What an hour of this request costs on each candidate cluster (none without billing)."""
        billing = self.site_model.billing
        if billing is None:
            return {}
        book = RateBook.from_site(billing)
        tres = Tres(cpus=request.cores, gpus=request.gpus, mem_mb=request.memory_gb * 1024)
        now = int(time.time())
        prices = {}
        for cluster in request.candidate_clusters:
            try:
                price = book.price_at(cluster, request.partition, now)
            except NoRateError:
                continue  # admission refuses such a job; the choice need not weigh it
            prices[cluster] = hourly_price_mc(price, tres)
        return prices

    async def _wait_until_serving(self, cluster: str, job_id: str, output: str) -> str:
        """Follow the job until its server listens; fail at once if the job ends first."""
        reported = self._port_event()
        last_message = ""
        node = ""
        while not (reported.is_set() and node and await _listening(node, self.port)):
            newer_than = max(self._submitted_at, self.board.clock() - self.start_poll_interval)
            if reported.is_set() and not node:
                # The job reported its port, so a query from now on shows it running.
                newer_than = max(newer_than, self._reported_at)
            snap = await self.board.snapshot(cluster, newer_than)
            if not snap.reachable:
                message = f"Slurm on {cluster} is not answering; still trying"
            else:
                job = snap.jobs.get(job_id)
                if job is None or not job.alive:
                    await self._fail_dead_job(cluster, job_id, job.state if job else "gone", output)
                if job.pending:
                    message = self._queued_message(cluster, job, snap)
                else:
                    node = job.node or self.site_model.hub.hub_ip
                    message = f"Job {job_id} running on {node}; starting the server"
            if message != last_message:
                self._say(message, 50 if "running" in message else 30)
                last_message = message
            if reported.is_set():
                await asyncio.sleep(0.05)  # the server is importing; check its port often
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reported.wait(), self.start_poll_interval)
        self._say("Server is up; connecting", 90)
        return node

    def _queued_message(self, cluster, job, snap) -> str:
        position = queue_position(job.job_id, snap.jobs.values())
        expected = (
            datetime.fromtimestamp(job.start_time).strftime("%H:%M:%S")
            if job.start_time
            else "not yet known"
        )
        return (
            f"Queued on {cluster}/{job.partition}: position {position}, "
            f"reason {job.reason}, expected start {expected}"
        )

    async def _fail_dead_job(self, cluster: str, job_id: str, state: str, output: str) -> None:
        log_path = output.replace("%j", job_id)
        tail = await run_command(
            self._as_user(cluster, ["tail", "-n", str(self.log_tail_lines), log_path]),
            timeout=self.slurm_timeout,
        )
        # Never leave a server running that the hub has given up on.
        await run_command(self._as_user(cluster, ["scancel", job_id]), timeout=self.slurm_timeout)
        log_text = (
            tail.stdout.strip() if tail.ok and tail.stdout.strip() else "(the job wrote no log)"
        )
        raise spawn_failed(
            f"The server's Slurm job {job_id} on {cluster} ended ({state}) before the server started.\n"
            f"Last lines of {log_path}:\n{log_text}",
            "job_ended",
        )

    # -- poll and stop ----------------------------------------------------------

    async def poll(self):
        if not self.job_id or not self.cluster:
            return 0
        # The status cycle refreshes every poll_interval (plus the query's own time), so
        # accepting 1.5 cycles lets the hub's own polls reuse its snapshot, not add queries.
        newer_than = max(self.board.clock() - 1.5 * self.poll_interval, self._submitted_at)
        snap = await self.board.snapshot(self.cluster, newer_than)
        if not snap.reachable:
            return None  # unknown: keep the server, ask again next cycle
        job = snap.jobs.get(self.job_id)
        if job is not None and job.alive:
            self.board.watch(self.cluster, self, self.poll_interval)
            return None
        self.clear_state()
        return 1

    async def stop(self, now=False):
        if not self.job_id or not self.cluster:
            return
        cluster, job_id = self.cluster, self.job_id
        self.board.unwatch(cluster, self)  # the hub is stopping it; the cycle must not too
        result = await run_command(
            self._as_user(cluster, ["scancel", job_id]), timeout=self.slurm_timeout
        )
        if not result.ok:
            self.log.warning("scancel %s on %s failed: %s", job_id, cluster, _last_line(result))
        if now:
            return
        deadline = self.board.clock() + 10
        while self.board.clock() < deadline:
            snap = await self.board.snapshot(cluster, self.board.clock())
            job = snap.jobs.get(job_id) if snap.reachable else None
            if snap.reachable and (job is None or not job.alive):
                return
            await asyncio.sleep(0.5)
        self.log.warning("Job %s on %s is still alive 10 s after scancel", job_id, cluster)


async def _options_form(spawner: CorehourSpawner) -> str:
    billing = notice = None
    if spawner.form_billing is not None:
        # Off the event loop, with a deadline: a ledger that does not answer leaves the form
        # without prices, and with a notice, instead of holding up the hub.
        billing, notice = await spawner.form_billing(spawner.user.name)
    estimates_url = url_path_join(spawner.hub.base_url, "api/corehour/start-estimates")
    recent_use_url = (
        url_path_join(spawner.hub.base_url, spawner.recent_use_path)
        if spawner.recent_use_path
        else None
    )
    form = render_options_form(spawner.site_model, billing, estimates_url, recent_use_url)
    for cluster, reason in sorted(spawner.board.unreachable().items()):
        form = (
            '<div class="alert alert-warning" role="status">'
            f"Cluster {html.escape(cluster)} cannot be reached right now "
            f"({html.escape(_first_line(reason))}); auto does not send servers there, "
            "and servers already there keep running.</div>" + form
        )
    if notice:
        form = f'<div class="alert alert-warning" role="status">{html.escape(notice)}</div>{form}'
    return form


def _form_to_options(formdata: dict[str, list[str]]) -> dict[str, str]:
    formdata = {k: v for k, v in formdata.items() if k != "_xsrf"}
    try:
        return options_from_form(formdata)
    except OptionError as e:
        raise web.HTTPError(400, str(e)) from None


QUEUE_QUERY = ("squeue", "--all", "--states=all", "--json")
NODES_QUERY = ("sinfo", "--json")


async def _fetch_slurm(site: Site, timeout: float, query: tuple[str, ...], cluster: str) -> str:
    argv = cluster_argv(site.clusters[cluster], list(query))
    result = await run_command(argv, timeout=timeout)
    if not result.ok:
        raise RuntimeError(failure_reason(site.clusters[cluster], result))
    return result.stdout


async def _listening(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.5)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _job_id_of(result: CommandResult) -> str:
    # sbatch --parsable prints "<id>" or "<id>;<cluster>", after any warnings.
    return result.stdout.strip().splitlines()[-1].split(";")[0]


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:200]


def _last_line(result: CommandResult) -> str:
    lines = (result.stderr or result.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit status {result.returncode}"
