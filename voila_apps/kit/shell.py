"""The widgets every batch app shares: resources with the price, submit, live state, cancel,
downloads.  An app supplies its own inputs and three functions; this shell does the rest.

The shell checks everything before anything is created: the app's inputs (pure, in the
app's core) and the resources (``jobs.check_resources``).  Only then does it make a run
folder, write the inputs there and call sbatch.  While the job is queued or running, a
background thread asks Slurm for its state every few seconds and lets the app redraw its
plots from the files the job writes; it stops when the job has ended.
"""

from __future__ import annotations

import html
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as w

from centre.apps import app_folder
from centre.site import Site
from voila_apps.kit import APPS_ROOT, slurm
from voila_apps.kit.jobs import (
    InputError,
    JobState,
    batch_script,
    check_resources,
    download_url,
    price_per_hour,
    use_in_words,
    viewer_url,
)

POLL_SECONDS = 2.0
# sstat asks the job's node; Slurm refreshes what it answers only every 30 s or so.
USE_EVERY_POLLS = 5
WIDE = {"description_width": "9em"}


def read_run_file(path: Path) -> str:
    """A file the job writes, as far as it is written; "" until it exists."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


@dataclass(frozen=True)
class Defaults:
    profile: str
    cores: int = 1
    memory_gb: int = 2
    gpus: int = 0
    walltime_hours: float = 0.5


class Resources:
    """Profile, cluster and sizes, with the price of an hour under them."""

    def __init__(self, site: Site, defaults: Defaults, profiles: tuple[str, ...]):
        self.site = site
        options = [(site.profiles[p].display_name or p, p) for p in profiles if p in site.profiles]
        self.profile = w.Dropdown(
            options=options, value=defaults.profile, description="Profile", style=WIDE
        )
        self.cluster = w.Dropdown(description="Cluster", style=WIDE)
        self.cores = w.BoundedIntText(
            value=defaults.cores, min=1, max=256, description="Cores", style=WIDE
        )
        self.memory = w.BoundedIntText(
            value=defaults.memory_gb, min=1, max=4096, description="Memory (GB)", style=WIDE
        )
        self.gpus = w.BoundedIntText(
            value=defaults.gpus, min=0, max=64, description="GPUs", style=WIDE
        )
        self.hours = w.BoundedFloatText(
            value=defaults.walltime_hours, min=0.05, max=8760, step=0.25, description="Hours",
            style=WIDE,
        )  # fmt: skip
        self.price = w.HTML(layout=w.Layout(margin="0 0 0 1em"))
        self.price.add_class("ch-price")
        self.profile.observe(lambda _: self._use_profile(), "value")
        for widget in (self.cluster, self.cores, self.memory, self.gpus, self.hours):
            widget.observe(lambda _: self.show_price(), "value")
        self._use_profile()

    def _use_profile(self) -> None:
        clusters = list(self.site.clusters_for(self.profile.value))
        self.cluster.options = clusters
        self.cluster.value = clusters[0]
        limits = self.site.profiles[self.profile.value]
        self.gpus.value = limits.gpus.default
        self.show_price()

    def raw(self) -> dict:
        return {
            "profile": self.profile.value,
            "cluster": self.cluster.value,
            "cores": self.cores.value,
            "memory_gb": self.memory.value,
            "gpus": self.gpus.value,
            "walltime_hours": self.hours.value,
        }

    def show_price(self) -> None:
        try:
            request = check_resources(self.raw(), self.site)
        except InputError as e:
            self.price.value = f"<span style='color:#b71c1c'>{html.escape(str(e))}</span>"
            return
        self.price.value = (
            f"<b>Price:</b> {html.escape(price_per_hour(self.site, request, int(time.time())))}"
        )

    def widget(self) -> w.Widget:
        return w.VBox(
            [
                w.HBox(
                    [
                        w.VBox([self.profile, self.cluster, self.hours]),
                        w.VBox([self.cores, self.memory, self.gpus]),
                    ],
                    layout=w.Layout(flex_flow="row wrap"),
                ),
                self.price,
            ]
        )


class BatchApp:
    """One app: subclass and set ``slug``, ``title``, ``intro``, then write the three hooks."""

    slug = "app"
    title = "App"
    intro = ""
    image = "base"
    profiles: tuple[str, ...] = ("cpu",)
    defaults = Defaults("cpu")
    # Files the job writes that people may want: shown as download links once they exist.
    downloads: tuple[str, ...] = ("job.out",)
    # Files of the run that the 3D viewer opens, offered once they exist.
    views: tuple[str, ...] = ()

    # --- the app's hooks -------------------------------------------------------------
    def inputs(self) -> list[w.Widget]:
        return []

    def check(self, request) -> object:
        """Check the app's own inputs (raise InputError); return what ``prepare`` needs."""
        raise NotImplementedError

    def prepare(self, params: object, request, run_dir: Path) -> str:
        """Write the job's input files into ``run_dir``; return the batch script's body."""
        raise NotImplementedError

    def show(self, run_dir: Path, state: JobState) -> None:
        """Redraw progress and results from the files in ``run_dir``."""

    # --- the shell ---------------------------------------------------------------------
    def __init__(self, site: Site | None = None):
        self.site = site or slurm.load_site()
        self.resources = Resources(self.site, self.defaults, self.profiles)
        self.submit_button = w.Button(
            description="Submit", button_style="primary", icon="paper-plane"
        )
        self.cancel_button = w.Button(
            description="Cancel job", button_style="danger", icon="stop", disabled=True
        )
        self.message = w.HTML()
        self.status = w.HTML()
        self.status.add_class("ch-status")
        self.files = w.HTML()
        self.files.add_class("ch-downloads")
        self.views_link = w.HTML()
        self.views_link.add_class("ch-views")
        self.submit_button.on_click(lambda _: self.send())
        self.cancel_button.on_click(lambda _: self.cancel())
        # The charts join the page with the first job: drawing a dozen empty plots would
        # only slow down the first render.
        self.results_box = w.VBox()
        self.job: tuple[str, str] | None = None  # (cluster, job id)
        self.run_dir: Path | None = None
        self._stop = threading.Event()

    def python(self) -> str:
        """The image's interpreter, so the job runs the same libraries as the app."""
        return f"{self.site.images[self.image].prefix}/bin/python"

    def job_env(self) -> str:
        return f"export PYTHONPATH={APPS_ROOT}\n"

    def send(self) -> None:
        if self.job and not self._stop.is_set():
            self.say("danger", "A job of this app is still running: wait for it or cancel it.")
            return
        try:
            request = check_resources(self.resources.raw(), self.site)
            params = self.check(request)
        except InputError as e:
            self.say("danger", f"Not submitted. {e}")
            return
        run_dir = Path.home() / app_folder(self.slug) / "runs" / time.strftime("%Y%m%d-%H%M%S")
        run_dir.mkdir(parents=True, exist_ok=True)
        try:
            body = self.prepare(params, request, run_dir)
            script = batch_script(
                request,
                name=self.slug,
                workdir=str(run_dir),
                body=body,
                output="job.out",
                reporter_python=self.python(),
            )
            job_id = slurm.submit(self.site, request.cluster, script)
        except (InputError, slurm.SlurmError) as e:
            self.say("danger", f"Not submitted. {e}")
            return
        (run_dir / "job.sh").write_text(script)
        self.job, self.run_dir = (request.cluster, job_id), run_dir
        self.job_shape = (request.cores, request.gpus)
        self.say("success", f"Submitted job {job_id} to {request.cluster}/{request.partition}.")
        self.cancel_button.disabled = False
        if not self.results_box.children:
            self.results_box.children = tuple(self.results())
        self._stop = threading.Event()
        threading.Thread(target=self._follow, args=(self._stop,), daemon=True).start()

    def _follow(self, stop: threading.Event) -> None:
        cluster, job_id = self.job
        polls, use = 0, ""
        while not stop.is_set():
            try:
                state = slurm.state(self.site, cluster, job_id)
                if state.state == "RUNNING" and polls % USE_EVERY_POLLS == 0:
                    use = use_in_words(
                        slurm.use_now(self.site, cluster, job_id),
                        *self.job_shape,
                        state.elapsed_seconds,
                    )
                polls += 1
                self.status.value = (
                    f"<b>Job {html.escape(job_id)} on {html.escape(cluster)}:</b> "
                    f"<span class='ch-state'>{html.escape(state.describe())}</span>"
                    + (
                        f"<br><span class='ch-use'>{html.escape(use)}</span>"
                        if state.state == "RUNNING" and use
                        else ""
                    )
                )
                self.show(self.run_dir, state)
                self.show_files()
                if state.ended:
                    self.cancel_button.disabled = True
                    stop.set()
                    break
            except Exception:  # a bad poll must not end the follow-up; say what happened
                self.status.value = f"<pre>{html.escape(traceback.format_exc()[-800:])}</pre>"
            stop.wait(POLL_SECONDS)

    def cancel(self) -> None:
        if not self.job:
            return
        try:
            self.say("success", slurm.cancel(self.site, *self.job))
        except slurm.SlurmError as e:
            self.say("danger", str(e))

    def show_files(self) -> None:
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
        links = []
        for name in self.downloads:
            path = self.run_dir / name
            if path.is_file():
                url = download_url(prefix, str(Path.home()), str(path))
                links.append(f"<a href='{html.escape(url)}' download>{html.escape(name)}</a>")
        self.files.value = ("<b>Download:</b> " + " · ".join(links)) if links else ""
        views = [
            viewer_url(prefix, str(Path.home()), str(self.run_dir / name))
            for name in self.views
            if (self.run_dir / name).is_file()
        ]
        self.views_link.value = "".join(
            f"<a class='ch-view' href='{html.escape(url)}' target='_blank' rel='noopener'>"
            "<i class='fa fa-cube'></i> Open in 3D viewer</a> "
            for url in views
        )

    def say(self, level: str, text: str) -> None:
        colour = {"success": "#1b5e20", "danger": "#b71c1c"}[level]
        self.message.value = f"<p class='ch-message' style='color:{colour}'>{html.escape(text)}</p>"

    def results(self) -> list[w.Widget]:
        """The app's plots and result text, below the job's state."""
        return []

    def widget(self) -> w.Widget:
        return w.VBox(
            [
                w.HTML(f"<h2>{html.escape(self.title)}</h2><p>{self.intro}</p>"),
                *self.inputs(),
                w.HTML("<h4>Where it runs</h4>"),
                self.resources.widget(),
                w.HBox([self.submit_button, self.cancel_button]),
                self.message,
                self.status,
                self.results_box,
                self.views_link,
                self.files,
            ],
            layout=w.Layout(max_width="60em"),
        )
