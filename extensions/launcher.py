"""App tiles on the hub's home page: what each app runs on, what it costs, launch or open.

``c.JupyterHub.template_vars["corehour_apps"]`` is :func:`tiles`, called with the current
user for every hub page.  A tile's Launch link is JupyterHub's spawn-by-URL
(``/hub/spawn/<user>/app-<slug>?opt-…&next=…``): its options go through the same checks as
the form, and a refusal (a limit, the balance) comes back on the form with the message.
"""

from __future__ import annotations

from functools import partial
from urllib.parse import urlencode

from centre.apps import app_kind, app_page, app_server, lab_page


def launch_url(username: str, slug: str, app: dict) -> str:
    server = app_server(slug)
    options = {"opt-profile": app["profile"], "opt-image": app["image"]}
    options.update(
        {f"opt-{k}": v for k, v in (app.get("resources") or {}).items() if v is not None}
    )
    options["next"] = f"/user/{username}/{server}/{app_page(slug, app)}"
    return f"/hub/spawn/{username}/{server}?{urlencode(options)}"


def tiles(user, apps: dict, prices=None) -> dict | None:
    """Apps grouped by category, with each one's state for ``user``."""
    if user is None or not apps:
        return None
    running = {name for name, spawner in user.spawners.items() if spawner.active}
    groups: dict[str, list[dict]] = {}
    for slug, app in apps.items():
        server = app_server(slug)
        groups.setdefault(app["category"], []).append(
            {
                "slug": slug,
                "title": app["title"],
                "description": app["description"],
                "icon": app["icon"],
                "help_url": app["help_url"],
                "runs_on": f"{app['profile']} profile, {app['image']} image",
                "price": prices(user.name, app) if prices else None,
                "running": server in running,
                "server": server,
                "launch_url": launch_url(user.name, slug, app),
                "kind": app_kind(app),
                "open_url": f"/user/{user.name}/{server}/{app_page(slug, app)}",
                # The same server in JupyterLab, in the app's folder with its runs; the
                # Launcher there has Terminal.
                "lab_url": f"/user/{user.name}/{server}/{lab_page(slug, app)}",
            }
        )
    return {"groups": groups}


def template_values(apps: dict, prices=None):
    return partial(tiles, apps=apps, prices=prices)
