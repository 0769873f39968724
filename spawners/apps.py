"""App servers: a named server ``app-<slug>`` runs one app of the catalogue.

Pure: what to place where, and how the server starts, by the app's kind (centre/apps.py).
A ``voila`` app's notebook is copied into the person's home
(``~/corehour-apps/<slug>/app.ipynb``) before the job starts, because Voila renders what
the server's contents manager can see, and that is the home folder; the copy is refreshed
at every start.  A ``lab`` app's folder is copied there file by file, only files the person
does not have yet, so their edits stay.  A ``proxy`` app places nothing: its server opens
the web process.  The person's runs and outputs live next to the app and are never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from centre.apps import APP_PREFIX, app_folder, app_kind, app_page

# JupyterLab extensions in the images that do nothing on a Voila page.
LAB_ONLY_EXTENSIONS = ("@jupyter-server/resource-usage", "@voila-dashboards/jupyterlab-preview")
_SLUG = re.compile(r"[a-z][a-z0-9-]{1,30}")
_NOTEBOOK = re.compile(r"[a-z0-9][a-z0-9_/-]*\.ipynb")
_FOLDER = re.compile(r"[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*")
_PROXY_PATH = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


@dataclass(frozen=True)
class AppFiles:
    slug: str
    kind: str
    source: str  # the installed notebook or folder, readable by everyone; "" for proxy
    folder: str  # in the person's home
    page: str  # where the server opens, relative to its root

    @property
    def folder_in_home(self) -> str:
        return app_folder(self.slug)

    @property
    def notebook(self) -> str:
        return f"{self.folder}/app.ipynb"

    @property
    def widget_module(self) -> str:
        """The app's widget module (``lammps_md/app.ipynb`` → ``voila_apps.lammps_md.ui``)."""
        package = self.source.rsplit("/", 2)[-2]
        return f"voila_apps.{package}.ui"

    def place_argvs(self) -> list[list[str]]:
        """The commands, run as the person, that put the app's files in their home."""
        if self.kind == "voila":
            return [["mkdir", "-p", self.folder], ["cp", self.source, self.notebook]]
        if self.kind == "lab":
            # -n: a file the person already has is theirs; only new files arrive.
            return [["mkdir", "-p", self.folder], ["cp", "-rn", f"{self.source}/.", self.folder]]
        return []

    def server_args(self, base_url: str, preheat: bool) -> list[str]:
        """The server's arguments for this app: where it opens, and for a Voila app a
        lighter page and a preheated kernel."""
        if self.kind != "voila":
            return [f"--ServerApp.default_url=/{self.page}"]
        args = self.page_args(base_url)
        if preheat:
            args.extend(self.preheat_args())
        return args

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
    def needs_app_code(self) -> bool:
        """Whether the server imports corehour's app code (the preheating kernel manager)."""
        return self.kind == "voila"


def app_files(server_name: str, apps: dict, apps_root: str, home: str) -> AppFiles | None:
    """The files of the app this server runs, or None for an ordinary server."""
    if not server_name.startswith(APP_PREFIX):
        return None
    slug = server_name[len(APP_PREFIX) :]
    app = apps.get(slug)
    if app is None or not _SLUG.fullmatch(slug):
        return None
    kind = app_kind(app)
    if kind == "voila" and _NOTEBOOK.fullmatch(app.get("notebook") or ""):
        source = f"{apps_root}/{app['notebook']}"
    elif kind == "lab" and _FOLDER.fullmatch(app.get("folder") or ""):
        source = f"{apps_root}/{app['folder']}"
    elif kind == "proxy" and _PROXY_PATH.fullmatch(app.get("proxy_path") or ""):
        source = ""
    else:
        return None
    return AppFiles(slug, kind, source, f"{home}/{app_folder(slug)}", app_page(slug, app))
