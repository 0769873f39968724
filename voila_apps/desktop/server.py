"""A Jupyter server extension: corehour's desktop page at ``desktop/`` in a desktop server.

It replaces jupyter-remote-desktop-proxy's page (its websocket, ``desktop-websockify/``, is
kept, as the image's ``jupyter_server_config.py`` defines it) with one on noVNC 1.7.0 that
adds what people of other portals miss most: quality and compression settings that reach
the VNC server, a clipboard that follows the browser's own, and the data the desktop has
sent, so that someone on a slow link sees what a setting saves. The page is static; it
is served behind the server's own login like every page of the server.
"""

from __future__ import annotations

from pathlib import Path

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from jupyter_server.extension.handler import ExtensionHandlerJinjaMixin, ExtensionHandlerMixin
from tornado import web
from traitlets import default

HERE = Path(__file__).resolve().parent


class DesktopPage(ExtensionHandlerJinjaMixin, ExtensionHandlerMixin, JupyterHandler):
    @web.authenticated
    def get(self) -> None:
        home = self.serverapp.jinja_template_vars.get("hub_control_panel_url", "")
        self.finish(self.render_template("desktop.html", home_url=home))


class DesktopExtension(ExtensionAppJinjaMixin, ExtensionApp):
    name = "corehour_desktop"
    load_other_extensions = True

    @default("static_paths")
    def _ours(self) -> list[str]:
        return [str(HERE / "static")]

    @default("template_paths")
    def _our_templates(self) -> list[str]:
        return [str(HERE / "templates")]

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            [
                (r"/desktop", web.RedirectHandler, {"url": "desktop/"}),
                (r"/desktop/", DesktopPage),
            ]
        )


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": __name__, "app": DesktopExtension}]
