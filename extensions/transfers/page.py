"""``/hub/corehour/copies``: the page where a person copies a folder from one cluster's home
to another's and follows its progress.  It only renders; the copy itself is the API's
(hub_api.py), which the page calls with the person's own login."""

from __future__ import annotations

from jupyterhub.handlers.base import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web

from centre.site import Site


class CopiesPage(BaseHandler):
    def initialize(self, site: Site) -> None:
        self.site = site

    @web.authenticated
    async def get(self) -> None:
        clusters = [(name, c.display_name or name) for name, c in self.site.clusters.items()]
        html = await self.render_template(
            "corehour-copies.html",
            clusters=clusters,
            transfers_url=url_path_join(self.hub.base_url, "api/corehour/transfers"),
        )
        self.finish(html)
