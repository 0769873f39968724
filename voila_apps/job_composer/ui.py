"""Job Composer's widgets: the thin shell around composer.py, run by Voila in the person's server.

Slurm commands run as the person (this process is theirs), one cluster at a time with that
cluster's SLURM_CONF; nothing goes through a shell.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import time
from pathlib import Path

import ipywidgets as w

from spawners.site_config import Site, parse_site
from voila_apps.job_composer.composer import (
    TEMPLATES,
    ComposerError,
    check_submission,
    my_jobs,
    render,
    tail,
)

RUNS = Path.home() / "corehour-apps" / "job-composer" / "runs"


def load_site() -> Site:
    return parse_site(json.loads(os.environ["COREHOUR_SITE_JSON"]), "COREHOUR_SITE_JSON")


def slurm(
    site: Site, cluster: str, argv: list[str], stdin: str | None = None
) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    conf = site.clusters[cluster].slurm_conf
    if conf:
        env["SLURM_CONF"] = conf
    return subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True, timeout=60)


class Composer:
    def __init__(self, site: Site):
        self.site = site
        wide = {"description_width": "8em"}
        profiles = [(p.display_name or n, n) for n, p in site.profiles.items() if n != "broken"]
        self.template = w.Dropdown(
            options=[(t.title, k) for k, t in TEMPLATES.items()], description="Template"
        )
        self.name = w.Text(value="hello", description="Job name", style=wide)
        self.profile = w.Dropdown(
            options=profiles, value=site.default_profile, description="Profile"
        )
        self.cluster = w.Dropdown(description="Cluster", style=wide)
        self.cores = w.BoundedIntText(value=1, min=1, max=256, description="Cores", style=wide)
        self.memory = w.BoundedIntText(
            value=2, min=1, max=4096, description="Memory (GB)", style=wide
        )
        self.gpus = w.BoundedIntText(value=0, min=0, max=64, description="GPUs", style=wide)
        self.hours = w.BoundedFloatText(
            value=0.5, min=0.05, max=8760, step=0.25, description="Hours"
        )
        self.tasks = w.BoundedIntText(value=1, min=1, max=64, description="Tasks", style=wide)
        self.script = w.Textarea(layout=w.Layout(width="100%", height="12em"), description="Script")
        self.submit = w.Button(description="Submit", button_style="primary", icon="paper-plane")
        self.message = w.HTML()
        self.jobs = w.HTML()
        self.refresh = w.Button(description="Refresh", icon="rotate")
        self.cancel_id = w.Text(placeholder="cluster/job id", description="Cancel", style=wide)
        self.cancel = w.Button(description="Cancel job", button_style="danger")
        self.output = w.HTML()
        self.template.observe(lambda _: self.use_template(), "value")
        self.profile.observe(lambda _: self.use_profile(), "value")
        self.submit.on_click(lambda _: self.send())
        self.refresh.on_click(lambda _: self.show_jobs())
        self.cancel.on_click(lambda _: self.cancel_job())
        self.use_profile()
        self.use_template()

    def use_profile(self) -> None:
        clusters = list(self.site.clusters_for(self.profile.value))
        self.cluster.options = clusters
        self.cluster.value = clusters[0]

    def use_template(self) -> None:
        template = TEMPLATES[self.template.value]
        self.script.value = template.body
        self.tasks.value = template.tasks

    def form(self) -> dict:
        return {
            "name": self.name.value.strip(),
            "profile": self.profile.value,
            "cluster": self.cluster.value,
            "cores": self.cores.value,
            "memory_gb": self.memory.value,
            "gpus": self.gpus.value,
            "walltime_hours": self.hours.value,
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
        result = slurm(self.site, cluster, ["sbatch", "--parsable"], render(submission, str(RUNS)))
        if result.returncode != 0:
            self.say(
                "danger", f"Slurm on {cluster} refused the job: {result.stderr.strip()[-300:]}"
            )
            return
        job_id = result.stdout.strip().splitlines()[-1].split(";")[0]
        self.say("success", f"Submitted job {job_id} to {cluster}/{submission.request.partition}.")
        self.show_jobs()

    def show_jobs(self) -> None:
        squeue, sacct = {}, {}
        for cluster in self.site.clusters:
            squeue[cluster] = slurm(self.site, cluster, ["squeue", "--me", "--json"]).stdout
            sacct[cluster] = slurm(
                self.site, cluster, ["sacct", "--json", "--starttime", "now-7days"]
            ).stdout
        rows = my_jobs(squeue, sacct, int(time.time()))
        body = "".join(
            f"<tr><td>{html.escape(r.cluster)}</td><td>{html.escape(r.job_id)}</td>"
            f"<td>{html.escape(r.name)}</td><td>{html.escape(r.state)}</td>"
            f"<td>{r.elapsed_seconds // 60} min</td></tr>"
            for r in rows[:50]
        )
        self.jobs.value = (
            "<table class='ch-jobs'><tr><th>Cluster</th><th>Job</th><th>Name</th><th>State</th>"
            f"<th>Elapsed</th></tr>{body or '<tr><td colspan=5>No jobs yet.</td></tr>'}</table>"
        )
        newest = (
            max(RUNS.glob("*.out"), key=lambda p: p.stat().st_mtime, default=None)
            if RUNS.exists()
            else None
        )
        if newest is not None:
            self.output.value = f"<b>{html.escape(newest.name)}</b><pre>{html.escape(tail(newest.read_text(errors='replace')))}</pre>"

    def cancel_job(self) -> None:
        cluster, _, job_id = self.cancel_id.value.strip().partition("/")
        if cluster not in self.site.clusters or not job_id.isdigit():
            self.say("danger", "cancel: give cluster/job id, e.g. alpha/42")
            return
        result = slurm(self.site, cluster, ["scancel", job_id])
        self.say(
            "success" if result.returncode == 0 else "danger",
            result.stderr.strip() or f"Cancelled {cluster}/{job_id}.",
        )
        self.show_jobs()

    def say(self, level: str, text: str) -> None:
        colour = {"success": "#1b5e20", "danger": "#b71c1c"}[level]
        self.message.value = f"<p class='ch-message' style='color:{colour}'>{html.escape(text)}</p>"

    def widget(self) -> w.Widget:
        resources = w.HBox(
            [
                w.VBox([self.profile, self.cluster, self.tasks]),
                w.VBox([self.cores, self.memory, self.gpus, self.hours]),
            ]
        )
        return w.VBox(
            [
                w.HTML(
                    "<h2>Job Composer</h2><p>Start from a template or your own script, choose the resources, submit.</p>"
                ),
                self.template,
                self.name,
                resources,
                self.script,
                self.submit,
                self.message,
                w.HTML("<h3>My jobs</h3>"),
                self.jobs,
                w.HBox([self.refresh, self.cancel_id, self.cancel]),
                self.output,
            ]
        )


def main() -> w.Widget:
    composer = Composer(load_site())
    composer.show_jobs()
    return composer.widget()
