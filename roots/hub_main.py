"""``corehour-hub``: JupyterHub with corehour's config, as the systemd unit starts it.

Arguments after the command go to JupyterHub (``corehour-hub --debug``). ``-f FILE``
names another config file instead of corehour's (the test harness passes its own, which
loads corehour's).
"""

import sys
from pathlib import Path

from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator, PAMAuthenticator
from jupyterhub.crypto import CryptKeeper
from jupyterhub.proxy import ConfigurableHTTPProxy
from jupyterhub.spawner import Spawner
from traitlets import default

CONFIG = Path(__file__).with_name("jupyterhub_config.py")


class CorehourHub(JupyterHub):
    """JupyterHub that does not import every installed authenticator, spawner and proxy.

    Stock JupyterHub loads each class registered under its entry points, only so that
    ``--help-all`` and ``--generate-config`` can list their options. In a hub with
    oauthenticator installed that is every provider (GitHub, Bitbucket, CILogon and the
    rest) with requests, PyJWT and ruamel.yaml: about 200 modules and 9 MB that stay
    resident for the life of the hub and are never used. corehour's config names its
    classes, and JupyterHub imports exactly those when it reads the config.
    """

    @default("classes")
    def _classes_it_runs(self) -> list[type]:
        return [Spawner, Authenticator, PAMAuthenticator, ConfigurableHTTPProxy, CryptKeeper]


# traitlets names the app's logger, its logging config and its help after the class: they
# keep saying "JupyterHub", as people's log searches and dashboards expect.
CorehourHub.__name__ = CorehourHub.__qualname__ = "JupyterHub"


def names_a_config(args: list[str]) -> bool:
    return any(a == "-f" or a.startswith(("--config", "--JupyterHub.config_file")) for a in args)


def main() -> None:
    args = sys.argv[1:]
    sys.argv = (
        ["jupyterhub", *args] if names_a_config(args) else ["jupyterhub", "-f", str(CONFIG), *args]
    )
    CorehourHub.launch_instance()


if __name__ == "__main__":
    main()
