"""Job Composer's widgets: the thin shell around composer.py, run by Voila in the person's server.

Slurm commands run as the person (this process is theirs), through the kit's ``slurm``.
"""

from __future__ import annotations

import html
import sys
import threading
import time
from pathlib import Path

import ipywidgets as w

from centre.apps import app_folder
from centre.site import Site
from voila_apps.job_composer.composer import (
    TEMPLATES,
    ComposerError,
    JobRow,
    check_submission,
    estimated_cost,
    my_jobs,
    render,
    tail,
)
from voila_apps.kit import slurm
from voila_apps.kit.prebuilt import take
from voila_apps.kit.shell import WIDE, Defaults, Resources

RUNS = Path.home() / app_folder("job-composer") / "runs"
# Profiles for tests and demos of failure are not offered for batch work.
HIDDEN_PROFILES = ("broken",)


class Composer:
    def __init__(self, site: Site):
        self.site = site
        profiles = tuple(p for p in site.profiles if p not in HIDDEN_PROFILES)
        self.resources = Resources(site, Defaults(site.default_profile), profiles)
        self.template = w.Dropdown(
            options=[(t.title, k) for k, t in TEMPLATES.items()], description="Template", style=WIDE
        )
        # One update when the person is done typing (Enter or leaving the field), not one per
        # key: the widget manager holds back key-by-key updates while one is unanswered, and a
        # quick Submit overtook them once (the job got the name's first letter).
        self.name = w.Text(
            value="hello", description="Job name", style=WIDE, continuous_update=False
        )
        self.tasks = w.BoundedIntText(value=1, min=1, max=64, description="Tasks", style=WIDE)
        self.script = w.Textarea(layout=w.Layout(width="100%", height="12em"), description="Script")
        self.submit = w.Button(description="Submit", button_style="primary", icon="paper-plane")
        self.message = w.HTML()
        self.jobs = w.HTML()
        self.refresh = w.Button(description="Refresh", icon="rotate")
        self.picked = w.Dropdown(description="Job", style=WIDE)
        self.show_output = w.Button(description="Show output", icon="file-lines")
        self.cancel = w.Button(description="Cancel job", button_style="danger", icon="stop")
        self.output = w.HTML()
        self.rows: list[JobRow] = []
        self.template.observe(lambda _: self.use_template(), "value")
        self.submit.on_click(lambda _: self.send())
        self.refresh.on_click(lambda _: self.show_jobs())
        self.show_output.on_click(lambda _: self.show_tail())
        self.cancel.on_click(lambda _: self.cancel_job())
        self.use_template()

    def use_template(self) -> None:
        template = TEMPLATES[self.template.value]
        self.script.value = template.body
        self.tasks.value = template.tasks

    def form(self) -> dict:
        return {
            "name": self.name.value.strip(),
            **self.resources.raw(),
            "tasks": self.tasks.value,
            "script": self.script.value,
        }

    def send(self) -> None:
        try:
            submission = check_submission(self.form(), self.site)
        except ComposerError as e:
            self.say("danger", f"Not submitted. {e}")
            return
        RUNS.mkdir(parents=True, exist_ok=True)
        cluster = submission.request.cluster
        try:
            # The reporter runs on this kernel's interpreter: the image's, readable by the job.
            script = render(submission, str(RUNS), reporter_python=sys.executable)
            job_id = slurm.submit(self.site, cluster, script)
        except slurm.SlurmError as e:
            self.say("danger", str(e))
            return
        self.say("success", f"Submitted job {job_id} to {cluster}/{submission.request.partition}.")
        self.show_jobs()
        self.picked.value = f"{cluster}/{job_id}"

    def show_jobs(self) -> None:
        squeue, sacct = {}, {}
        for cluster in self.site.clusters:
            squeue[cluster] = slurm.slurm(self.site, cluster, ["squeue", "--me", "--json"]).stdout
            sacct[cluster] = slurm.slurm(
                self.site, cluster, ["sacct", "--json", "--starttime", "now-7days"]
            ).stdout
        self.rows = my_jobs(squeue, sacct, int(time.time()))[:50]
        currency = self.site.billing.currency if self.site.billing else ""
        body = "".join(
            f"<tr><td>{html.escape(r.cluster)}</td><td>{html.escape(r.job_id)}</td>"
            f"<td>{html.escape(r.name)}</td><td>{html.escape(r.state)}</td>"
            f"<td>{r.elapsed_seconds // 60} min {r.elapsed_seconds % 60:02d} s</td>"
            f"<td>{estimated_cost(r, self.site)}</td></tr>"
            for r in self.rows
        )
        cost = f"<th>Cost ({html.escape(currency)}, est.)</th>" if currency else "<th></th>"
        self.jobs.value = (
            "<table class='ch-jobs'><tr><th>Cluster</th><th>Job</th><th>Name</th><th>State</th>"
            f"<th>Elapsed</th>{cost}</tr>"
            f"{body or '<tr><td colspan=6>No jobs yet.</td></tr>'}</table>"
        )
        self.picked.options = [
            (f"{r.cluster}/{r.job_id} {r.name} ({r.state.lower()})", f"{r.cluster}/{r.job_id}")
            for r in self.rows
        ]

    def show_tail(self) -> None:
        if not self.picked.value:
            return
        _, _, job_id = self.picked.value.partition("/")
        found = sorted(RUNS.glob(f"*-{job_id}.out")) if RUNS.exists() else []
        if not found:
            self.output.value = (
                f"<p>No output from job {html.escape(job_id)} yet (or it was not "
                "submitted from Job Composer).</p>"
            )
            return
        text = tail(found[-1].read_text(errors="replace"))
        self.output.value = (
            f"<b>{html.escape(found[-1].name)}</b><pre class='ch-output'>{html.escape(text)}</pre>"
        )

    def cancel_job(self) -> None:
        if not self.picked.value:
            self.say("danger", "Job: choose a job to cancel.")
            return
        cluster, _, job_id = self.picked.value.partition("/")
        try:
            self.say("success", slurm.cancel(self.site, cluster, job_id))
        except slurm.SlurmError as e:
            self.say("danger", str(e))
        self.show_jobs()

    def say(self, level: str, text: str) -> None:
        colour = {"success": "#1b5e20", "danger": "#b71c1c"}[level]
        self.message.value = f"<p class='ch-message' style='color:{colour}'>{html.escape(text)}</p>"

    def widget(self) -> w.Widget:
        return w.VBox(
            [
                w.HTML(
                    "<h2>Job Composer</h2><p>Start from a template or your own script, choose "
                    "the resources, submit.</p>"
                ),
                self.template,
                self.name,
                self.tasks,
                self.script,
                w.HTML("<h4>Where it runs</h4>"),
                self.resources.widget(),
                self.submit,
                self.message,
                w.HTML("<h3>My jobs</h3>"),
                self.jobs,
                w.HBox(
                    [self.refresh, self.picked, self.show_output, self.cancel],
                    layout=w.Layout(flex_flow="row wrap"),
                ),
                self.output,
            ],
            layout=w.Layout(max_width="60em"),
        )


def build() -> w.Widget:
    composer = Composer(slurm.load_site())
    widget = composer.widget()
    widget.composer = composer
    return widget


def main() -> w.Widget:
    widget = take(__name__, build)
    # My jobs asks every cluster: fill it in behind the first render, and fresh each time.
    threading.Thread(target=widget.composer.show_jobs, daemon=True).start()
    return widget
