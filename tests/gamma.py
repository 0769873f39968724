"""gamma, the test bed's remote centre (deploy/gamma.sh), as the tests reach it: over ssh, with
the portal's site key and gamma's pinned host key, as the account the portal logs in as there.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from centre.site import SshTransport
from centre.slurm_cli import ssh_argv
from tests.harness import portal_site

GAMMA = "gamma"
GAMMA_ADDR = "10.77.0.2"
# The hub host's end of gamma's link: a hub that gamma's jobs call home to listens here.
HUB_HOST_ADDR = "10.77.0.1"
GAMMA_HOMES = Path("/var/lib/corehour/gamma/home")
GAMMA_SLURM_CONF = "/etc/corehour/gamma/slurm.conf"
LOGIN_ACCOUNT = "corehour-remote"
KNOWN_HOSTS = "/etc/corehour/ssh/known_hosts"


def login_argv(
    command: str, *, user: str = LOGIN_ACCOUNT, known_hosts: str = KNOWN_HOSTS
) -> list[str]:
    """The portal's own ssh argv (centre/slurm_cli.py), without a kept connection."""
    transport = SshTransport(
        host=GAMMA, user=user, known_hosts=known_hosts, control_persist_seconds=0
    )
    return [*ssh_argv(transport), command]


def on_gamma(*argv: str, as_person: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``argv`` on gamma's login node, with gamma's SLURM_CONF, as a person if given."""
    words = ["env", f"SLURM_CONF={GAMMA_SLURM_CONF}", *argv]
    if as_person:
        words = ["sudo", "-n", "-u", as_person, *words]
    return subprocess.run(
        login_argv(shlex.join(words), **kwargs), capture_output=True, text=True, timeout=120
    )


def gamma_cluster() -> dict:
    """gamma as a site file declares it (docs/centres.md)."""
    return {
        "display_name": "Gamma (remote centre)",
        "slurm_conf": GAMMA_SLURM_CONF,
        "ssh": {"host": GAMMA, "user": LOGIN_ACCOUNT},
        "accounting": "own",
        "partitions": {"cpu": {"display_name": "CPU nodes at gamma"}},
    }


# gamma's rates are the tests' own times this: dearer, so that `auto` prefers alpha and beta
# while they have room, and goes to gamma only when they have none.
GAMMA_RATE_FACTOR = Fraction(2)  # a whole number: it multiplies the site's decimals


def gamma_site(base_port: int, workdir: Path) -> dict:
    """A test portal that offers gamma, with a hub that gamma's jobs can reach."""
    site = portal_site(base_port, workdir, clusters={GAMMA: gamma_cluster()})
    site["hub"].update(hub_ip=HUB_HOST_ADDR, hub_connect_ip=HUB_HOST_ADDR)
    for rate in site["billing"]["rates"]:
        if rate["cluster"] == GAMMA:
            for unit in ("core_hour", "gpu_hour", "gb_mem_hour"):
                rate[unit] = str(Decimal(rate[unit]) * GAMMA_RATE_FACTOR.numerator)
    return site


def gamma_sacct_job(job_id: str) -> dict:
    reply = on_gamma("sacct", "--json", "-j", job_id)
    assert reply.returncode == 0, reply.stderr
    return json.loads(reply.stdout)["jobs"][0]
