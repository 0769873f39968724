"""Where an app lives and what kind it is: its server's name, its folder in the person's
home, and the page its server opens.

An app of the catalogue is one of three kinds:

* ``voila``: a notebook rendered by Voila as a no-code page (``notebook``);
* ``lab``: a folder of files opened in JupyterLab (``folder``);
* ``proxy``: a web process behind jupyter-server-proxy, such as a desktop or a 3D viewer,
  at ``proxy_path`` below its server.

The spawner places the app, the launcher links to it, and the hub pages open it, all from
:func:`app_page`, so no part writes an app's URL on its own.
"""

from __future__ import annotations

from collections.abc import Mapping

APP_PREFIX = "app-"
HOME_FOLDER = "corehour-apps"
APP_KINDS = ("voila", "lab", "proxy")


def app_server(slug: str) -> str:
    """The named server that runs app ``slug``."""
    return f"{APP_PREFIX}{slug}"


def app_folder(slug: str) -> str:
    """The app's folder, relative to the person's home (its files, runs and outputs)."""
    return f"{HOME_FOLDER}/{slug}"


def app_kind(app: Mapping) -> str:
    return app.get("kind", "voila")


def app_page(slug: str, app: Mapping) -> str:
    """Where the app opens, relative to its server's root (the home folder)."""
    kind = app_kind(app)
    if kind == "voila":
        return f"voila/render/{app_folder(slug)}/app.ipynb"
    if kind == "lab":
        return f"lab/tree/{app_folder(slug)}"
    if kind == "proxy":
        return f"{app['proxy_path'].strip('/')}/"
    raise ValueError(f"app {slug}: kind '{kind}' is not one of {', '.join(APP_KINDS)}")


def lab_page(slug: str, app: Mapping) -> str:
    """The same server in JupyterLab: the app's folder, or the home for a proxied app."""
    return "lab" if app_kind(app) == "proxy" else f"lab/tree/{app_folder(slug)}"
