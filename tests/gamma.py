"""gamma, the test bed's remote centre (deploy/gamma.sh), as the tests reach it: over ssh, with
the portal's site key and gamma's pinned host key, as the account the portal logs in as there.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from centre.site import SshTransport
from centre.slurm_cli import ssh_argv

GAMMA = "gamma"
GAMMA_ADDR = "10.77.0.2"
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
