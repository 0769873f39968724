"""The hub's composition root: everything ``jupyterhub_config.py`` wires, from the site file.

It is one of the two modules that import across features (the other is ``roots/billing.py``)
and nothing imports it.  It works in two steps:

* :func:`roots.hub_facts.gather` does the I/O the wiring needs, before any config is set,
  in a child process: the check that the ledger is migrated (``python -m roots.ops
  migrate`` migrates it) and the course roles, the identity provider's discovery document
  and client secret, and the app catalogue.  A bad one stops the hub with a message naming
  the key.
* :func:`apply_site` then only *sets* traitlets on ``c``, from the site and those facts:
  applying twice gives the same config, and a unit test applies a site to a bare
  ``Config()``.

Anything site-specific that the YAML cannot say belongs in ``jupyterhub_config.d/*.py``
beside the site file (:func:`config_d`).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from billing_hooks import ledger_calls
from billing_hooks.admission import BillingAdmission
from billing_hooks.db import database_url, make_engine, session_factory
from billing_hooks.hub_pages import app_prices, template_values
from billing_hooks.ledger_calls import TIMEOUT_S, LedgerUnavailable
from billing_hooks.ledger_client import HUB_READS_TOKEN_ENV, LedgerClient
from billing_hooks.slurm_accounts import SlurmAccounts
from centre.admission import AdmissionStep
from centre.api_scopes import PUBLIC_SCOPES
from centre.job_samples import report_key
from centre.logs import hub_logging_config
from centre.shared_config import shared
from centre.site import DEFAULT_SITE, Site
from extensions import launcher
from extensions.courses.hub_api import CUSTOM_SCOPES as COURSE_SCOPES
from extensions.courses.hub_api import SYNC_SCOPE as COURSE_SYNC_SCOPE
from extensions.courses.hub_api import extra_handlers
from extensions.courses.roles import hub_roles
from extensions.courses.spawn_rules import CourseAdmission
from extensions.monitoring.history import history_handlers
from extensions.monitoring.history_store import HistoryStore
from extensions.monitoring.jobs_page import JOBS_API_PATH, jobs_handlers
from extensions.monitoring.page import overview_handlers
from extensions.notify.token import SLURM_EVENTS_TOKEN_ENV
from extensions.phone.handlers import phone_handlers
from extensions.phone.status import Account as PhoneAccount
from extensions.phone.status import PhoneLedger
from extensions.public_api.hub_api import public_api_handlers
from extensions.transfers.hub_api import transfer_handlers
from roots.hub_facts import HubFacts, exit_with
from spawners.estimates import estimate_handlers
from spawners.spawner import shared_board
from spawners.status_board import SlurmUnknown

DEFAULT_STATE_DIR = "/var/lib/corehour/hub"
BILLING_PREFIX = "/services/billing/"
REPO = Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "extensions" / "templates"


def config_d(site_path: str | Path) -> Path:
    """The site's own Python config: the folder ``jupyterhub_config.d`` beside its site file."""
    return Path(site_path).resolve().parent / "jupyterhub_config.d"


def apply_site(
    c,
    site: Site,
    facts: HubFacts,
    state_dir: str | Path = DEFAULT_STATE_DIR,
    site_path: str | Path = DEFAULT_SITE,
) -> None:
    state_dir = Path(state_dir)
    update_logging(c, site)
    update_hub(c, site, state_dir)
    update_auth(c, site, facts, state_dir)
    update_spawner(c, site)
    update_apps(c, site, facts)
    ledger = update_billing(c, site, facts, site_path, state_dir)
    update_handlers(c, site, history(state_dir), ledger)
    update_public_api_roles(c, site)
    update_metrics(c, os.environ.get(METRICS_TOKEN_VARIABLE, ""))


@dataclass(frozen=True)
class History:
    """The job history's store and the secret its report keys are made from."""

    store: HistoryStore
    secret: bytes


def history(state_dir: str | Path) -> History:
    """The job history: ``COREHOUR_HISTORY_DB_URL``, else a SQLite file in the state dir; the
    key secret is a file there that only the hub's user reads, made once, so running jobs'
    keys survive restarts."""
    state_dir = Path(state_dir)
    url = (
        os.environ.get("COREHOUR_HISTORY_DB_URL") or f"sqlite:///{state_dir / 'job-history.sqlite'}"
    )
    return History(store=HistoryStore(url), secret=history_secret(state_dir / "job-history.key"))


HISTORY_SECRET_BYTES = 32


def history_secret(path: Path) -> bytes:
    """The job history's key secret: made once, readable by the hub's user only; a file that
    is readable by others or holds too short a secret stops the hub with a message."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return _new_history_secret(path)
    if path.stat().st_mode & 0o077:
        exit_with(f"{path} is readable by others than the hub's user: chmod 600 {path}")
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < HISTORY_SECRET_BYTES:
        exit_with(
            f"{path} holds no usable secret ({HISTORY_SECRET_BYTES} random bytes as hex); "
            "delete it and start the hub again to make a new one (running jobs' reports stop)"
        )
    return secret


def _new_history_secret(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as f:
        f.write(os.urandom(HISTORY_SECRET_BYTES).hex())
        f.flush()
        os.fsync(f.fileno())
    try:
        # Whole or not at all, and never over a secret another start made meanwhile.
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(draft)
    return history_secret(path)


def update_handlers(c, site: Site, history: History, ledger: HubLedger | None) -> None:
    """corehour's hub API: courses' groups (with billing), copies between clusters, the spawn
    form's start estimates, the overview, My jobs and the job history, the public API's
    batch jobs, which pass the same admission steps as a server, and the phone view."""
    courses = extra_handlers() if site.billing is not None else []
    site_config = site.model_dump(mode="json")
    queue = partial(live_queue, site_config)
    c.JupyterHub.extra_handlers = [
        *courses,
        *public_api_handlers(site, ledger.admission if ledger else [], queue),
        *phone_handlers(site, queue, ledger.phone_ledger if ledger else None),
        *transfer_handlers(site),
        *estimate_handlers(),
        *overview_handlers(site),
        *jobs_handlers(site, history.store),
        *history_handlers(
            site,
            history.store,
            history.secret,
            partial(started_job_owner, site.model_dump(mode="json")),
        ),
    ]
    # Each server's job reports its use with a key of its own (centre/job_samples.py).
    c.CorehourSpawner.usage_report_key = partial(report_key, history.secret)
    # The copies page is worth a link once there is somewhere to copy to.
    c.JupyterHub.template_vars.update({"corehour_copies": len(site.clusters) > 1})
    # The spawn form's word on the person's last servers comes from My jobs.
    c.CorehourSpawner.recent_use_path = JOBS_API_PATH


async def live_queue(site_config: dict, cluster: str, max_age: float) -> dict | None:
    """A cluster's queue by job id from the spawners' shared status board, at most
    ``max_age`` seconds old; None when Slurm did not answer."""
    board = shared_board(site_config)
    return (await board.snapshot(cluster, newer_than=board.clock() - max_age)).jobs


def update_public_api_roles(c, site: Site) -> None:
    """The public API's scopes (centre/api_scopes.py), which every person holds: a token made
    without naming scopes may do what its owner may, one made with some of them only that."""
    c.JupyterHub.custom_scopes = {
        **PUBLIC_SCOPES,
        **(COURSE_SCOPES if site.billing is not None else {}),
    }
    if site.billing is None:
        c.JupyterHub.load_roles = [{"name": "user", "scopes": ["self", *PUBLIC_SCOPES]}]
        return
    # After the service roles update_billing set; people also reach the billing service.
    c.JupyterHub.load_roles.append(
        {"name": "user", "scopes": ["self", "access:services!service=billing", *PUBLIC_SCOPES]}
    )


async def started_job_owner(site_config: dict, cluster: str, job_id: int) -> str | None:
    """Whose job ``job_id`` on ``cluster`` is, once it has started, from the spawners' shared
    status board: "" when no recent squeue shows it started, None when Slurm did not answer."""
    try:
        job = await shared_board(site_config).started_job(cluster, str(job_id))
    except SlurmUnknown:
        return None
    return job.user if job is not None else ""


METRICS_TOKEN_VARIABLE = "COREHOUR_METRICS_TOKEN"
# Shorter tokens are refused: the scraper's token is a password for every metric.
METRICS_TOKEN_MIN_LENGTH = 32


def update_metrics(c, token: str) -> None:
    """Prometheus as a hub service named "metrics", whose token (from the root-only env file,
    deploy/prometheus) may read the hub's and the billing service's metrics and nothing else."""
    if not token:
        return
    if len(token) < METRICS_TOKEN_MIN_LENGTH:
        exit_with(
            f"{METRICS_TOKEN_VARIABLE} is {len(token)} characters long; use at least "
            f"{METRICS_TOKEN_MIN_LENGTH} random ones (openssl rand -hex 32)"
        )
    c.JupyterHub.services.append({"name": "metrics", "api_token": token})
    c.JupyterHub.load_roles.append(
        {"name": "metrics", "services": ["metrics"], "scopes": ["read:metrics"]}
    )


def hub_db_url(state_dir: str | Path) -> str:
    """JupyterHub's own database: ``COREHOUR_HUB_DB_URL``, else a SQLite file in the state dir."""
    return (
        os.environ.get("COREHOUR_HUB_DB_URL")
        or f"sqlite:///{Path(state_dir) / 'jupyterhub.sqlite'}"
    )


def hub_pid_file(state_dir: str | Path) -> Path:
    return Path(state_dir) / "jupyterhub.pid"


def identity_db_url(state_dir: str | Path) -> str:
    """Single sign-on's subject → account-name table (extensions/sso/identities.py):
    ``COREHOUR_IDENTITY_DB_URL``, else a SQLite file in the state dir."""
    return (
        os.environ.get("COREHOUR_IDENTITY_DB_URL")
        or f"sqlite:///{Path(state_dir) / 'identities.sqlite'}"
    )


def update_hub(c, site: Site, state_dir: Path) -> None:
    c.JupyterHub.bind_url = site.hub.bind_url
    c.JupyterHub.hub_ip = site.hub.hub_ip
    c.JupyterHub.hub_port = site.hub.hub_port
    if site.hub.hub_connect_ip:
        c.JupyterHub.hub_connect_ip = site.hub.hub_connect_ip
    c.JupyterHub.allow_named_servers = True
    c.JupyterHub.named_server_limit_per_user = site.hub.named_server_limit_per_user
    # Servers are Slurm jobs: a hub restart must leave them (and the proxy) running.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = site.hub.proxy_api_url
    c.JupyterHub.cookie_secret_file = str(state_dir / "jupyterhub_cookie_secret")
    c.JupyterHub.db_url = hub_db_url(state_dir)
    c.JupyterHub.pid_file = str(hub_pid_file(state_dir))
    update_https(c, site)


def update_https(c, site: Site) -> None:
    """Over HTTPS the hub's and the services' cookies are Secure (JupyterHub decides that from
    public_url), and browsers are told to use HTTPS for the host from then on (HSTS)."""
    if not site.hub.https:
        return
    c.JupyterHub.public_url = site.hub.bind_url
    # public_url covers the login cookies; cookie_options also the _xsrf cookie.
    settings: dict = {"cookie_options": {"secure": True}}
    if site.hub.tls.hsts_max_age:
        hsts = f"max-age={site.hub.tls.hsts_max_age}"
        settings["headers"] = {"Strict-Transport-Security": hsts}
    c.JupyterHub.tornado_settings.update(settings)


def update_logging(c, site: Site) -> None:
    """The hub's level and format, with corehour's loggers on the hub's own handler."""
    settings = hub_logging_config(site.logging.level, site.logging.format)
    for trait, value in settings.items():
        c.Application[trait] = value


def update_auth(c, site: Site, facts: HubFacts, state_dir: Path) -> None:
    if site.auth.kind == "oidc":
        update_oidc(c, site, facts, state_dir)
        return
    c.JupyterHub.authenticator_class = "pam"
    c.Authenticator.admin_users = set(site.hub.admin_users)
    c.Authenticator.allowed_users = set(site.hub.admin_users)
    c.PAMAuthenticator.allowed_groups = set(site.hub.allowed_groups)
    # Group membership is checked at every login: someone taken out of the group is out.
    c.Authenticator.allow_existing_users = False
    # PAM's account check needs a session stack that containers rarely have.
    c.PAMAuthenticator.check_account = True
    c.PAMAuthenticator.open_sessions = False


def update_oidc(c, site: Site, facts: HubFacts, state_dir: Path) -> None:
    """Sign-in through the site's OpenID Connect provider (docs/sso.md)."""
    auth = site.auth
    provider = facts.provider
    assert provider is not None, "gather() reads the provider's discovery document"
    c.JupyterHub.authenticator_class = "extensions.sso.oidc.CorehourOIDCAuthenticator"
    oidc = c.CorehourOIDCAuthenticator
    oidc.login_service = auth.login_service
    oidc.issuer = auth.issuer
    oidc.client_id = auth.client_id
    oidc.client_secret = facts.client_secret
    oidc.authorize_url = provider.authorization_endpoint
    oidc.token_url = provider.token_endpoint
    oidc.userdata_url = provider.userinfo_endpoint
    oidc.jwks_url = provider.jwks_uri
    oidc.oauth_callback_url = auth.callback_url or (
        site.hub.bind_url.rstrip("/") + "/hub/oauth_callback"
    )
    oidc.enable_pkce = True
    oidc.scope = list(auth.scopes)
    oidc.username_claim = auth.username_claim
    oidc.groups_claim = auth.groups_claim
    oidc.provider_admin_groups = set(auth.admin_groups)
    oidc.course_groups_prefix = auth.course_groups_prefix
    oidc.min_uid = site.hub.min_uid
    oidc.reserved_names = set(site.hub.reserved_names)
    oidc.adopt_directory_accounts = auth.adopt_directory_accounts
    oidc.identity_db_url = identity_db_url(state_dir)
    # Whoever the provider signs in is a person here; the course code decides what they see.
    oidc.allow_all = True
    # Still admins for API tokens made on the hub's host, but no sign-in can become one of
    # them: the authenticator refuses these names (admin comes from auth.admin_groups).
    c.Authenticator.admin_users = set(site.hub.admin_users)


def update_spawner(c, site: Site) -> None:
    c.JupyterHub.spawner_class = "spawners.spawner.CorehourSpawner"
    c.CorehourSpawner.site = shared(site.model_dump(mode="json"))
    c.Spawner.poll_interval = site.hub.poll_interval
    c.Spawner.start_timeout = site.hub.start_timeout
    c.Spawner.http_timeout = 60
    c.Spawner.default_url = "/lab"


def update_apps(c, site: Site, facts: HubFacts) -> None:
    c.CorehourSpawner.apps = shared(facts.apps)
    prices = None
    if site.billing is not None:
        prices = app_prices(site)
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    c.JupyterHub.template_vars.update(
        {"corehour_apps": launcher.template_values(facts.apps, prices)}
    )


def hub_reads_token(state_dir: str | Path) -> str:
    """What the hub sends with its reads of the ledger to the billing service (ledger_client.py):
    a file in the state dir like the history's secret, so a restarted hub and its service agree."""
    return history_secret(Path(state_dir) / "hub-reads.key").hex()


@dataclass(frozen=True)
class HubLedger:
    """What the hub's other parts get of billing: the steps a start passes, and the ledger's
    reads through the billing service."""

    admission: list[AdmissionStep]
    client: LedgerClient

    async def phone_ledger(self, username: str) -> PhoneLedger | None:
        """The accounts the person may charge and what they were told lately, for the phone
        view; None when the ledger does not answer (the view then shows the jobs alone)."""
        try:
            choices = await ledger_calls.call(self.client.accounts_for, username)
            page = await ledger_calls.call(self.client.page_values, username)
        except (LedgerUnavailable, LookupError):
            return None
        accounts = [
            PhoneAccount(a.name, a.display_name, a.available_mc, a.multiplier) for a in choices
        ]
        return PhoneLedger(accounts, page.get("notifications", []))


def slurm_events_token(state_dir: str | Path) -> str:
    """What the clusters' MailProg sends with Slurm's mail events to the billing service
    (extensions/notify/slurm_events.py); `python -m roots.ops slurm-mail` writes it beside
    the MailProg."""
    return history_secret(Path(state_dir) / "slurm-events.key").hex()


def update_billing(
    c, site: Site, facts: HubFacts, site_path: str | Path, state_dir: str | Path
) -> HubLedger | None:
    """The billing service, the idle culler, their roles, billing in every spawn and on the
    hub's pages; what the hub's other parts need of billing (None where nothing bills)."""
    if site.billing is None:
        return None
    url = database_url(site.billing.database_url)
    environment = {
        "COREHOUR_BILLING_DB": url,
        "COREHOUR_SITE": str(site_path),
        # The services run the code the hub runs: `python -m` would otherwise import whatever
        # checkout the environment's editable install points at, not this one.
        "PYTHONPATH": str(REPO),
    }
    # The hub reads the ledger only through the billing service, which owns it: the hub
    # process keeps no ledger models, engines or caches (docs/benchmarks.md, hub_footprint).
    token = hub_reads_token(state_dir)
    ledger = LedgerClient(site.billing.service_url, BILLING_PREFIX, token)
    billing = BillingAdmission(site, ledger.accounts_for)
    # Billing chooses the account, a course applies its rules, billing checks the money.
    admission = [billing.choose_account, CourseAdmission(ledger.read), billing.check_money]
    c.CorehourSpawner.admission = admission
    c.CorehourSpawner.form_billing = billing.form
    c.JupyterHub.services = [
        {
            "name": "billing",
            "display": True,
            "url": site.billing.service_url,
            "command": [sys.executable, "-m", "roots.billing", "--site", str(site_path)],
            "environment": {
                **environment,
                HUB_READS_TOKEN_ENV: token,
                SLURM_EVENTS_TOKEN_ENV: slurm_events_token(state_dir),
            },
            "oauth_no_confirm": True,
        },
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "billing_hooks.idle",
                "--site",
                str(site_path),
                f"--cull-every={site.billing.idle_check_seconds}",
            ],
            "environment": environment,
        },
    ]
    c.JupyterHub.load_roles = [
        {
            "name": "billing",
            "services": ["billing"],
            # Reads who is admin, finds the server of a job and stops it when money runs out;
            # runs the course pages: syncs course groups (only through corehour's course API
            # in the hub, never admin:users or admin:groups) and starts and stops students'
            # course servers.
            "scopes": [
                "list:users",
                "read:users",
                "read:servers",
                "admin:server_state",
                "servers",
                COURSE_SYNC_SCOPE,
            ],
        },
        {
            "name": "idle-culler",
            "services": ["idle-culler"],
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        },
    ]
    c.JupyterHub.template_vars.update(
        {
            "corehour_billing": template_values(
                ledger.page_values, BILLING_PREFIX, site.billing.currency
            )
        }
    )
    update_courses(c, site, facts, url)
    return HubLedger(admission, ledger)


def update_courses(c, site: Site, facts: HubFacts, database_url: str) -> None:
    """The hub side of courses: the API the course pages sync groups through, the roles of
    the courses that exist (JupyterHub deletes roles its config does not name at start), and
    with single sign-on, courses and roles from the provider's groups at every sign-in."""
    for slug, students in facts.course_students.items():
        c.JupyterHub.load_roles.extend(hub_roles(slug, students))
    if site.auth.kind == "oidc":
        # A sign-in waits for the ledger at most this long; a dead ledger fails it with a
        # message instead of holding the person at the login page.  The engine connects on
        # first use, at a sign-in, not here.
        # Only a hub that signs people in through a provider loads the ledger's models: the
        # sign-in writes their course enrolments.
        from extensions.courses.sso_sync import make_post_auth_hook

        sessions = session_factory(make_engine(database_url, timeout_s=TIMEOUT_S))
        c.CorehourOIDCAuthenticator.post_auth_hook = make_post_auth_hook(
            sessions, site.courses.create_unix_accounts, SlurmAccounts(site).remove_members
        )
