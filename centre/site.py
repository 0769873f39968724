"""The site file: what a centre offers, as validated, immutable models.

The site YAML is the one source of truth for clusters, partitions, profiles
and images.  Everything here is pure: ``load_site`` reads a file and either
returns a :class:`Site` or raises :class:`SiteConfigError` with a message that
names the offending key, so a bad site file stops the hub at start instead of
failing a user's spawn later.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sys
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from centre.people import DEFAULT_MIN_UID, DEFAULT_RESERVED_NAMES, PersonRules

# The models check their patterns with Python's re (see _Model), so every pattern is anchored
# with \A and \Z: re's $ would also match before a final newline, and "alpha\n" would pass
# as a name.
# Names end up as Slurm arguments and in file paths, so they are slugs.
Slug = Annotated[str, StringConstraints(pattern=r"\A[a-z][a-z0-9_-]{0,31}\Z")]
AbsolutePath = Annotated[str, StringConstraints(pattern=r"\A/[A-Za-z0-9._/+-]*\Z")]
# A host name or address as ssh takes it: never starting with '-', never holding a space.
HostName = Annotated[str, StringConstraints(pattern=r"\A[A-Za-z0-9][A-Za-z0-9.:-]{0,252}\Z")]
UnixName = Annotated[str, StringConstraints(pattern=r"\A[a-z_][a-z0-9_-]{0,31}\Z")]


class SiteConfigError(ValueError):
    """The site file is unusable; the message names the key and what is allowed."""


class _Model(BaseModel):
    # Python's re compiles each pattern once for the process (re's cache); pydantic's own
    # engine compiles one per field, and the site's 30 patterns kept 0.5 MB in the hub.
    model_config = ConfigDict(extra="forbid", frozen=True, regex_engine="python-re")


class Partition(_Model):
    display_name: str = ""
    description: str = ""
    gpus_per_node: int = Field(0, ge=0, le=64)


class SshTransport(_Model):
    """How the portal reaches a cluster at another centre: ssh to its login node with a
    site-managed key, the login node's host key pinned, and one shared connection per
    login node (ControlMaster), so that a poll cycle costs no new handshake (docs/centres.md)."""

    host: HostName = Field(description="The login node's name or address.")
    user: UnixName = Field(
        description="The account the portal logs in as; the centre's sudo rule lets it act "
        "as people, as deploy/sudoers/corehour.in does on the hub host."
    )
    port: int = Field(22, ge=1, le=65535)
    identity_file: AbsolutePath = Field(
        "/etc/corehour/ssh/id_ed25519",
        description="The site-managed private key, readable by the hub's account alone.",
    )
    known_hosts: AbsolutePath = Field(
        "/etc/corehour/ssh/known_hosts",
        description="The pinned host keys: a login node whose key is not here is refused.",
    )
    connect_timeout_seconds: int = Field(5, ge=1, le=120)
    control_dir: AbsolutePath = Field(
        "/run/corehour/ssh",
        description="Folder of the shared connections' sockets, owned by the hub's account "
        "(mode 0700).",
    )
    control_persist_seconds: int = Field(
        600,
        ge=0,
        le=86_400,
        description="How long an idle shared connection stays open; 0: none is kept.",
    )


class Cluster(_Model):
    display_name: str = ""
    slurm_conf: AbsolutePath | None = Field(
        None, description="SLURM_CONF for this cluster's commands; None uses the default."
    )
    ssh: SshTransport | None = Field(
        None, description="Reach the cluster over ssh to its login node (another centre)."
    )
    exec_prefix: tuple[str, ...] = Field(
        (),
        description="Any other argv prefix that reaches the cluster and hands the command "
        "to a shell there; ssh is better said with `ssh:`.",
    )
    accounting: Literal["shared", "own"] | None = Field(
        None,
        description="Where Slurm keeps this cluster's accounting (what the meter, reconcile "
        "and the associations read and write): `shared`, the slurmdbd that the hub host's "
        "own Slurm commands reach (sacct --clusters NAME); `own`, the cluster's own slurmdbd, "
        "through the cluster's transport (over ssh for another centre). Default: own for a "
        "cluster reached over ssh or exec_prefix, shared for a local one.",
    )
    accounting_slurm_conf: AbsolutePath | None = Field(
        None,
        description="With accounting: shared, the SLURM_CONF on the hub host whose slurmdbd "
        "keeps this cluster's records. Default: slurm_conf for a local cluster, the host's "
        "default Slurm config for a remote one.",
    )
    partitions: dict[Slug, Partition]

    @model_validator(mode="after")
    def _has_partitions(self) -> Cluster:
        if not self.partitions:
            raise ValueError("a cluster needs at least one partition")
        if self.ssh and self.exec_prefix:
            raise ValueError("give ssh or exec_prefix, not both: both say how to reach it")
        if self.accounting_slurm_conf and self.accounting_source != "shared":
            raise ValueError(
                "accounting_slurm_conf: only used with accounting: shared (this cluster's "
                "accounting is its own, read through its transport)"
            )
        return self

    @property
    def accounting_source(self) -> str:
        """``shared`` or ``own``: the declared one, else what the transport implies."""
        return self.accounting or ("own" if self.remote else "shared")

    @property
    def remote(self) -> bool:
        """Commands run on another host, through a shell there."""
        return bool(self.ssh or self.exec_prefix)


class Image(_Model):
    display_name: str = ""
    description: str = ""
    prefix: AbsolutePath = Field(
        description="Environment prefix holding bin/jupyterhub-singleuser."
    )


class IntRange(_Model):
    min: int = Field(ge=0)
    max: int = Field(ge=0)
    default: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        if not self.min <= self.default <= self.max:
            raise ValueError(
                f"need min <= default <= max, got {self.min}, {self.default}, {self.max}"
            )
        return self


class HoursLimit(_Model):
    max: float = Field(gt=0, le=24 * 365)
    default: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> HoursLimit:
        if self.default > self.max:
            raise ValueError(f"default {self.default} is above max {self.max}")
        return self


class Profile(_Model):
    display_name: str = ""
    description: str = ""
    partition: Slug
    clusters: tuple[Slug, ...] = Field(
        (), description="Clusters offering this profile; empty means all with the partition."
    )
    cores: IntRange
    memory_gb: IntRange
    gpus: IntRange = IntRange(min=0, max=0, default=0)
    walltime_hours: HoursLimit
    images: tuple[Slug, ...]
    default_image: Slug | None = None

    @property
    def image_default(self) -> str:
        return self.default_image or self.images[0]


class TlsSettings(_Model):
    """How people reach the portal over HTTPS (docs/deploy.md)."""

    mode: Literal["off", "proxy", "front"] = Field(
        "off",
        description="off: plain HTTP, only for a demo on 127.0.0.1; proxy: "
        "configurable-http-proxy serves HTTPS with certificate and key; front: a web server "
        "in front (nginx) serves HTTPS and sends requests to front_listen.",
    )
    certificate: str = Field("", description="PEM certificate chain (mode proxy).")
    key: str = Field("", description="PEM private key, readable by the hub's account (mode proxy).")
    redirect_http_port: int = Field(
        80,
        ge=0,
        le=65535,
        description="Mode proxy: plain HTTP on this port redirects to HTTPS; 0 means none.",
    )
    front_listen: str = Field(
        "http://127.0.0.1:8000",
        description="Mode front: where the proxy listens for the front server's requests.",
    )
    hsts_max_age: int = Field(
        31_536_000,
        ge=0,
        le=63_072_000,
        description="Strict-Transport-Security max-age in seconds; 0 sends no header.",
    )


class HubSettings(_Model):
    bind_url: str = Field(
        "http://127.0.0.1:8000", description="The address people open the portal at."
    )
    tls: TlsSettings = TlsSettings()
    hub_ip: str = "127.0.0.1"
    hub_port: int = Field(8081, ge=1, le=65535)
    proxy_api_url: str = "http://127.0.0.1:8001"
    hub_connect_ip: str = ""
    admin_users: tuple[str, ...] = ()
    allowed_groups: tuple[str, ...] = ("corehour",)
    min_uid: int = Field(
        DEFAULT_MIN_UID,
        ge=1,
        le=2**31 - 1,
        description="No server or job runs as an account whose uid is lower (root is 0).",
    )
    reserved_names: tuple[str, ...] = Field(
        DEFAULT_RESERVED_NAMES,
        description="Names never handed out by enrolment or sign-in, and never run as.",
    )

    def person_rules(self) -> PersonRules:
        """Who may run jobs here (centre/people.py)."""
        return PersonRules.of(
            self.min_uid, self.reserved_names, self.admin_users, self.allowed_groups
        )

    named_server_limit_per_user: int = Field(3, ge=1, le=100)
    poll_interval: float = Field(30.0, gt=0, le=3600)
    start_timeout: int = Field(300, gt=0, le=86400)

    @model_validator(mode="after")
    def _tls_matches_the_address(self) -> HubSettings:
        scheme = urlsplit(self.bind_url).scheme
        mode = self.tls.mode
        if scheme not in ("http", "https"):
            raise ValueError(f"bind_url {self.bind_url!r} must start with http:// or https://")
        if mode == "off" and scheme == "https":
            raise ValueError(
                "bind_url is https but tls.mode is off: set tls.mode to proxy (with "
                "certificate and key) or front (a web server in front serves HTTPS)"
            )
        if mode != "off" and scheme != "https":
            raise ValueError(f"tls.mode is {mode}, so bind_url must start with https://")
        if mode == "proxy" and not (self.tls.certificate and self.tls.key):
            raise ValueError("tls.mode proxy needs tls.certificate and tls.key (PEM files)")
        if mode == "front" and urlsplit(self.tls.front_listen).scheme != "http":
            raise ValueError("tls.front_listen must be an http:// address (the front serves HTTPS)")
        return self

    @property
    def https(self) -> bool:
        return self.tls.mode != "off"


# Prices are credits per unit-hour.  Decimal, never float: 0.1 must stay 0.1 when a
# million charges are summed.  Six places are enough for a GB-hour of memory.
Price = Annotated[Decimal, Field(ge=0, le=1_000_000, max_digits=14, decimal_places=6)]


class RateEntry(_Model):
    """The price of one partition's resources from ``valid_from`` until ``valid_until``."""

    cluster: Slug
    partition: Slug
    valid_from: dt.date
    valid_until: dt.date | None = Field(
        None, description="First day the rate no longer applies; empty means open-ended."
    )
    core_hour: Price
    gpu_hour: Price = Decimal(0)
    gb_mem_hour: Price = Decimal(0)

    @model_validator(mode="after")
    def _ordered(self) -> RateEntry:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError(
                f"valid_until {self.valid_until} must be after valid_from {self.valid_from}"
            )
        return self


class Billing(_Model):
    """Metering and enforcement settings; the ledger itself lives in the database."""

    database_url: str = Field(
        "sqlite:////var/lib/corehour/ledger/billing.sqlite",
        description="SQLAlchemy URL of the ledger; COREHOUR_BILLING_DB overrides it.",
    )
    service_url: str = Field(
        "http://127.0.0.1:8091",
        description="Where the hub starts the billing service; the proxy routes /services/billing/ there.",
    )
    currency: str = Field("credits", min_length=1, max_length=16)
    unbilled_accounts: tuple[Slug, ...] = Field(
        ("corehour",),
        description="Slurm accounts outside the ledger that people are associated with (the "
        "one deploy/users.sh adds everyone to); billing holds them so that no job escapes "
        "the ledger with --account.",
    )
    meter_interval: float = Field(60, ge=1, le=3600)
    minimum_run_minutes: int = Field(15, ge=0, le=24 * 60)
    warn_at_percent: tuple[int, ...] = (20, 5)
    opening_balance: Price = Decimal(100)
    tiers: dict[Slug, Annotated[Decimal, Field(gt=0, le=1000)]] = {"standard": Decimal(1)}
    default_tier: Slug = "standard"
    idle_timeout_minutes: dict[Slug, Annotated[int, Field(ge=1, le=7 * 24 * 60)]] = Field(
        default_factory=dict, description="Idle timeout per profile; 'default' for the rest."
    )
    idle_check_seconds: int = Field(
        60, ge=1, le=3600, description="How often the idle culler looks for idle servers."
    )
    rates: tuple[RateEntry, ...]

    @model_validator(mode="after")
    def _tiers(self) -> Billing:
        if self.default_tier not in self.tiers:
            raise ValueError(f"default_tier: '{self.default_tier}' is not in tiers")
        if any(not 0 < p < 100 for p in self.warn_at_percent):
            raise ValueError("warn_at_percent: each threshold is a percentage between 1 and 99")
        return self

    def idle_profiles_exist(self, profiles) -> None:
        for name in self.idle_timeout_minutes:
            if name != "default" and name not in profiles:
                raise ValueError(
                    f"billing.idle_timeout_minutes.{name}: no profile '{name}'; "
                    f"use 'default' or one of {sorted(profiles)}"
                )


class CourseSettings(_Model):
    """How courses find their people's Unix accounts."""

    # Locally the portal makes the accounts (as deploy/users.sh does); at a centre they come
    # from LDAP/SSSD, and enrolment only reports the ones that are missing.
    create_unix_accounts: bool = False


# Claim names may be namespaced URLs (``https://idp.example/groups``), but never blank.
ClaimName = Annotated[str, StringConstraints(pattern=r"\A\S+\Z", max_length=200)]
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class Auth(_Model):
    """How people sign in: PAM (local accounts, the default) or an OpenID Connect provider.

    The client secret is never in the site file: ``client_secret_file`` names a file that
    only root can read (docs/sso.md).
    """

    kind: Literal["pam", "oidc"] = "pam"
    issuer: str | None = Field(
        None, description="The provider's issuer URL, exactly as its discovery document says."
    )
    client_id: Annotated[str, StringConstraints(pattern=r"\A\S+\Z", max_length=255)] | None = None
    client_secret_file: AbsolutePath | None = None
    callback_url: str | None = Field(
        None,
        description="Where the provider sends people back; empty means hub.bind_url + "
        "/hub/oauth_callback. Set it when a reverse proxy serves the portal.",
    )
    username_claim: ClaimName = "email"
    groups_claim: ClaimName = "groups"
    admin_groups: tuple[Annotated[str, StringConstraints(min_length=1)], ...] = Field(
        (),
        description="Provider groups whose members are hub admins; under oidc the only way "
        "to admin (hub.admin_users cannot sign in through the provider).",
    )
    course_groups_prefix: Annotated[str, StringConstraints(pattern=r"\A\S+\Z", max_length=64)] = (
        Field(
            "corehour:",
            description="Only provider groups that start with this give course roles, with it "
            "taken off (corehour:course-<slug>-instructors); pick one under which only the "
            "centre's identity admins can make groups.",
        )
    )
    adopt_directory_accounts: bool = Field(
        False,
        description="Let a first sign-in take an existing account that only the directory "
        "(LDAP/SSSD) knows; accounts in /etc/passwd are never taken (docs/sso.md).",
    )
    scopes: tuple[Annotated[str, StringConstraints(pattern=r"\A[!#-\[\]-~]+\Z")], ...] = (
        "openid",
        "email",
        "profile",
        "groups",
    )
    login_service: Annotated[str, StringConstraints(min_length=1, max_length=80)] = (
        "your institution"
    )

    @field_validator("issuer", "callback_url")
    @classmethod
    def _https_or_local(cls, url: str | None) -> str | None:
        if url is None:
            return url
        parts = urlsplit(url)
        local_http = parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS
        if not (parts.scheme == "https" or local_http) or not parts.hostname:
            raise ValueError(
                f"'{url}' must be an https:// URL (http:// only for 127.0.0.1 or localhost)"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"'{url}' must have no ?query or #fragment")
        return url

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        provider_keys = ("issuer", "client_id", "client_secret_file", "callback_url")
        if self.kind == "pam":
            stray = [key for key in provider_keys if getattr(self, key) is not None]
            if stray:
                raise ValueError(
                    f"{stray[0]}: only used with kind: oidc (kind is pam, the default)"
                )
            return self
        for key in provider_keys[:3]:
            if getattr(self, key) is None:
                raise ValueError(f"{key}: required when kind is oidc")
        if "openid" not in self.scopes:
            raise ValueError("scopes: must include 'openid', or the provider sends no id_token")
        return self


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")


class LoggingSettings(_Model):
    """How every corehour process logs: the hub, the billing service, the idle culler
    (centre/logs.py)."""

    level: Literal[LOG_LEVELS] = Field(
        "INFO",
        description="Least severe records logged by corehour, JupyterHub and tornado; other "
        "libraries log WARNING and above.",
    )
    format: Literal[LOG_FORMATS] = Field(
        "text",
        description="text: JupyterHub's layout, one line a record; json: one JSON object a "
        "line (time, level, logger, module, line, message) for a log shipper.",
    )


class NotificationSettings(_Model):
    """Where notifications go by mail (extensions/notify, docs/notifications.md)."""

    smtp_host: str = Field(
        "127.0.0.1",
        description="The mail server that takes the portal's mail over plain SMTP, without a "
        "login: the host's own MTA or the centre's relay.",
    )
    smtp_port: int = Field(25, ge=1, le=65535, description="Its SMTP port.")
    sender: str = Field("corehour@localhost", description="The From: of every mail.")
    mail_domain: str = Field(
        "localhost",
        description="A person's address is their account name at this domain.",
    )


class Site(_Model):
    hub: HubSettings = HubSettings()
    logging: LoggingSettings = LoggingSettings()
    notifications: NotificationSettings = NotificationSettings()
    auth: Auth = Auth()
    clusters: dict[Slug, Cluster]
    images: dict[Slug, Image]
    profiles: dict[Slug, Profile]
    default_profile: Slug
    billing: Billing | None = None
    courses: CourseSettings = CourseSettings()

    @model_validator(mode="after")
    def _references_resolve(self) -> Site:
        if not self.clusters:
            raise ValueError("clusters: declare at least one cluster")
        if self.default_profile not in self.profiles:
            raise ValueError(
                f"default_profile: '{self.default_profile}' is not a profile; "
                f"choose one of {sorted(self.profiles)}"
            )
        for name, profile in self.profiles.items():
            _check_profile(name, profile, self)
        if self.billing is not None:
            _check_rates(self.billing, self)
            self.billing.idle_profiles_exist(self.profiles)
        return self

    def clusters_for(self, profile_name: str) -> tuple[str, ...]:
        """Clusters that can run ``profile_name``, in site-file order."""
        profile = self.profiles[profile_name]
        if profile.clusters:
            return profile.clusters
        return tuple(n for n, c in self.clusters.items() if profile.partition in c.partitions)


def _check_profile(name: str, profile: Profile, site: Site) -> None:
    where = f"profiles.{name}"
    for field in ("cores", "memory_gb"):
        if getattr(profile, field).min < 1:
            raise ValueError(f"{where}.{field}.min: must be at least 1")
    for image in profile.images:
        if image not in site.images:
            raise ValueError(
                f"{where}.images: unknown image '{image}'; known: {sorted(site.images)}"
            )
    if not profile.images:
        raise ValueError(f"{where}.images: list at least one image")
    if profile.default_image and profile.default_image not in profile.images:
        raise ValueError(f"{where}.default_image: '{profile.default_image}' is not in its images")
    for cluster in profile.clusters:
        if cluster not in site.clusters:
            raise ValueError(f"{where}.clusters: unknown cluster '{cluster}'")
        if profile.partition not in site.clusters[cluster].partitions:
            raise ValueError(
                f"{where}.partition: cluster '{cluster}' has no partition '{profile.partition}'"
            )
    hosts = site.clusters_for(name)
    if not hosts:
        raise ValueError(f"{where}.partition: no cluster has a partition '{profile.partition}'")
    gpus_available = min(
        site.clusters[c].partitions[profile.partition].gpus_per_node for c in hosts
    )
    if profile.gpus.max > gpus_available:
        raise ValueError(
            f"{where}.gpus.max: partition '{profile.partition}' has {gpus_available} GPUs per node, "
            f"so at most {gpus_available} can be offered"
        )


def _check_rates(billing: Billing, site: Site) -> None:
    """Every partition has one price at every moment from its first rate on."""
    by_partition: dict[tuple[str, str], list[RateEntry]] = {}
    for index, rate in enumerate(billing.rates):
        where = f"billing.rates.{index}"
        cluster = site.clusters.get(rate.cluster)
        if cluster is None:
            raise ValueError(f"{where}.cluster: unknown cluster '{rate.cluster}'")
        if rate.partition not in cluster.partitions:
            raise ValueError(
                f"{where}.partition: cluster '{rate.cluster}' has no partition '{rate.partition}'"
            )
        by_partition.setdefault((rate.cluster, rate.partition), []).append(rate)
    for cluster_name, cluster in site.clusters.items():
        for partition in cluster.partitions:
            if (cluster_name, partition) not in by_partition:
                raise ValueError(
                    f"billing.rates: no rate for {cluster_name}/{partition}; every partition "
                    "needs one (a price of 0 makes it free)"
                )
    for (cluster_name, partition), rates in by_partition.items():
        rates.sort(key=lambda r: r.valid_from)
        for earlier, later in itertools.pairwise(rates):
            where = f"billing.rates for {cluster_name}/{partition}"
            if earlier.valid_until is None or earlier.valid_until > later.valid_from:
                raise ValueError(
                    f"{where}: the rate from {earlier.valid_from} overlaps the rate from "
                    f"{later.valid_from}; end the earlier one with valid_until: {later.valid_from}"
                )
            if earlier.valid_until < later.valid_from:
                raise ValueError(
                    f"{where}: no rate from {earlier.valid_until} to {later.valid_from}; "
                    "rates must follow each other without a gap"
                )
        if rates[-1].valid_until is not None:
            raise ValueError(
                f"billing.rates for {cluster_name}/{partition}: the latest rate ends on "
                f"{rates[-1].valid_until}; leave its valid_until empty so jobs always have a price"
            )


def _shown(part: object) -> str:
    text = str(part)
    return text if text.isprintable() else repr(text)


def _format_errors(error: ValidationError, source: str) -> str:
    lines = [f"The site file {source} is not valid:"]
    for item in error.errors():
        # A key with a newline or other unprintable character is shown quoted, as it is.
        key = ".".join(_shown(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against site.example.yaml)"
        lines.append(f"  - {key}: {message}")
    return "\n".join(lines)


def parse_site(data: object, source: str = "<site>") -> Site:
    """Validate already-parsed YAML data."""
    if not isinstance(data, dict):
        raise SiteConfigError(f"The site file {source} must be a YAML mapping at the top level.")
    try:
        return Site.model_validate(data)
    except ValidationError as e:
        raise SiteConfigError(_format_errors(e, source)) from None


# What a job may know of the site: what is offered and at what price, and who may run jobs.
# Never the authenticator, the courses' settings, the admins or any URL of the portal's own
# services (a database URL can carry a password), because a person reads their job's
# environment.
PUBLIC_HUB_KEYS = {"min_uid", "reserved_names", "allowed_groups"}
PRIVATE_BILLING_KEYS = {"database_url", "service_url"}


def public_site(site: Site) -> dict:
    """The part of ``site`` that jobs get (as ``COREHOUR_SITE_JSON``); it parses as a Site."""
    data = site.model_dump(
        mode="json", include={"clusters", "images", "profiles", "default_profile"}
    )
    data["hub"] = site.hub.model_dump(mode="json", include=PUBLIC_HUB_KEYS)
    if site.billing is not None:
        data["billing"] = site.billing.model_dump(mode="json", exclude=PRIVATE_BILLING_KEYS)
    return data


def load_site(path: str | Path) -> Site:
    """Read and validate the site YAML at ``path``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise SiteConfigError(f"Cannot read the site file {path}: {e.strerror}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SiteConfigError(f"The site file {path} is not valid YAML: {e}") from None
    return parse_site(data, str(path))


DEFAULT_SITE = "/etc/corehour/site.yaml"


def load_site_or_exit(path: str | Path) -> Site:
    """Load the site file for a process that cannot run without it: a bad one stops the
    process with a message naming the key, not a traceback."""
    try:
        return load_site(path)
    except SiteConfigError as e:
        print(f"corehour: {e}", file=sys.stderr)
        raise SystemExit(2) from None
