"""Where an app lives: its server's name, its folder in the person's home, its page.

The spawner places the app there, the launcher links to it, and the hub pages open it, so
each path is written once, here.
"""

from __future__ import annotations

APP_PREFIX = "app-"
HOME_FOLDER = "corehour-apps"


def app_server(slug: str) -> str:
    """The named server that runs app ``slug``."""
    return f"{APP_PREFIX}{slug}"


def app_folder(slug: str) -> str:
    """The app's folder, relative to the person's home (its notebook, runs and outputs)."""
    return f"{HOME_FOLDER}/{slug}"


def app_page(slug: str) -> str:
    """Where Voila renders the app, relative to its server's root (the home folder)."""
    return f"voila/render/{app_folder(slug)}/app.ipynb"
