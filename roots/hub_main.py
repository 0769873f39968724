"""``corehour-hub``: JupyterHub with corehour's config, as the systemd unit starts it.

Arguments after the command go to JupyterHub (``corehour-hub --debug``).
"""

import sys
from pathlib import Path

CONFIG = Path(__file__).with_name("jupyterhub_config.py")


def main() -> None:
    from jupyterhub.app import main as jupyterhub

    sys.argv = ["jupyterhub", "-f", str(CONFIG), *sys.argv[1:]]
    jupyterhub()


if __name__ == "__main__":
    main()
