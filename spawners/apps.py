"""App servers: a named server ``app-<slug>`` runs one app of the catalogue under Voila.

Pure: which notebook to place where.  The app's notebook is copied into the person's home
(``~/corehour-apps/<slug>/app.ipynb``) before the job starts, because Voila renders what
the server's contents manager can see, and that is the home folder.  The copy is refreshed
at every start; the person's runs and outputs live next to it and are never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from centre.apps import APP_PREFIX, app_folder, app_page

# JupyterLab extensions in the images that do nothing on a Voila page.
LAB_ONLY_EXTENSIONS = ("@jupyter-server/resource-usage", "@voila-dashboards/jupyterlab-preview")
_SLUG = re.compile(r"[a-z][a-z0-9-]{1,30}")
_NOTEBOOK = re.compile(r"[a-z0-9][a-z0-9_/-]*\.ipynb")


@dataclass(frozen=True)
class AppFiles:
    slug: str
    source: str  # the installed notebook, readable by everyone
    folder: str  # in the person's home
    notebook: str

    @property
    def folder_in_home(self) -> str:
        return app_folder(self.slug)

    @property
    def widget_module(self) -> str:
        """The app's widget module (``lammps_md/app.ipynb`` → ``voila_apps.lammps_md.ui``)."""
        package = self.source.rsplit("/", 2)[-2]
        return f"voila_apps.{package}.ui"

    def page_args(self, base_url: str) -> list[str]:
        """Server arguments that make the app's page lighter for every render.

        Browsers may keep Voila's widget bundles (their file names carry a content hash;
        asking the server again for each of some twenty files cost half a second a render),
        and the page loads no JupyterLab-only extensions (the resource meter, the preview)."""
        return [
            f"--ServerApp.static_immutable_cache={base_url.rstrip('/')}/voila/labextensions/",
            *(f"--VoilaConfiguration.extension_denylist={name}" for name in LAB_ONLY_EXTENSIONS),
        ]

    def preheat_args(self) -> list[str]:
        """Server arguments for a kernel that waits, imports done, for the app's first render."""
        return [
            "--ServerApp.kernel_manager_class=voila_apps.kit.preheat.PreheatedKernelManager",
            f"--PreheatedKernelManager.preheat_path={self.folder_in_home}",
            f"--PreheatedKernelManager.preheat_module={self.widget_module}",
        ]

    @property
    def render_path(self) -> str:
        """Where Voila renders it, relative to the server's root (the home folder)."""
        return app_page(self.slug)


def app_files(server_name: str, apps: dict, apps_root: str, home: str) -> AppFiles | None:
    """The files of the app this server runs, or None for an ordinary server."""
    if not server_name.startswith(APP_PREFIX):
        return None
    slug = server_name[len(APP_PREFIX) :]
    app = apps.get(slug)
    if app is None or not _SLUG.fullmatch(slug) or not _NOTEBOOK.fullmatch(app.get("notebook", "")):
        return None
    folder = f"{home}/{app_folder(slug)}"
    return AppFiles(slug, f"{apps_root}/{app['notebook']}", folder, f"{folder}/app.ipynb")
