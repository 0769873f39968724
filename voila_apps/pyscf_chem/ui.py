"""Quantum chemistry with PySCF: the widgets around core.py, run by Voila in the person's
server.  The calculation itself is a batch job (run.py); this only writes its inputs and
draws what it writes: the energy per SCF cycle while it runs, then the orbital energies,
PySCF's log and the result.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import ipywidgets as w

from voila_apps.kit.jobs import InputError, JobState
from voila_apps.kit.plots import LineChart
from voila_apps.kit.prebuilt import take
from voila_apps.kit.shell import WIDE, BatchApp, Defaults
from voila_apps.pyscf_chem.core import (
    BASES,
    LOG,
    MAX_CHARGE,
    MAX_SPIN,
    METHODS,
    MOLECULES,
    PARAMS,
    PROGRESS,
    RESULT,
    UPLOAD,
    XYZ,
    Params,
    check_chemistry,
    check_inputs,
    estimate_seconds,
    job_body,
    json_text,
    orbital_window,
    parse_progress,
    parse_result,
    plural,
    summary_lines,
    tail,
)
from voila_apps.pyscf_chem.cubes import CUBES, FIRST_CUBE
from voila_apps.pyscf_chem.molecules import MAX_ATOMS, formula, to_xyz, xyz_from_upload

TAIL_BYTES = 64 * 1024  # enough for the last lines of a log that may grow to megabytes


class PyscfApp(BatchApp):
    slug = "pyscf-chem"
    title = "Quantum chemistry with PySCF"
    intro = (
        "Hartree–Fock or DFT energy of a molecule with "
        "<a href='https://pyscf.org' target='_blank'>PySCF</a>: choose a molecule or upload "
        f"an XYZ file (Angstrom, up to {MAX_ATOMS} atoms), a method and a basis set. "
        "The energy of every SCF cycle is drawn while the job runs."
    )
    image = "base"
    profiles = ("cpu", "bigmem")
    defaults = Defaults("cpu", cores=2, memory_gb=4, walltime_hours=0.5)
    downloads = ("job.out", LOG, RESULT, XYZ)
    views = (f"{CUBES}/{FIRST_CUBE}",)

    def __init__(self, site=None):
        super().__init__(site)
        self.molecule = w.Dropdown(
            options=[(m.title, key) for key, m in MOLECULES.items()]
            + [("Upload an XYZ file…", UPLOAD)],
            value="water",
            description="Molecule",
            style=WIDE,
        )
        self.upload = w.FileUpload(accept=".xyz", multiple=False, description="XYZ file")
        self.upload.layout.display = "none"
        self.method = w.Dropdown(
            options=list(METHODS), value="HF", description="Method", style=WIDE
        )
        self.basis = w.Dropdown(
            options=list(BASES), value="sto-3g", description="Basis", style=WIDE
        )
        self.charge = w.BoundedIntText(
            value=0, min=-MAX_CHARGE, max=MAX_CHARGE, description="Charge", style=WIDE
        )
        self.spin = w.BoundedIntText(
            value=0, min=0, max=MAX_SPIN, description="Spin (2S)", style=WIDE
        )
        self.about = w.HTML()
        self.about.add_class("ch-about")
        for widget in (self.molecule, self.upload, self.method, self.basis, self.charge, self.spin):
            widget.observe(lambda _: self.describe(), "value")
        for widget in (self.resources.cores, self.resources.hours):
            widget.observe(lambda _: self.describe(), "value")

        self.energy_chart = LineChart(
            "SCF energy", "cycle", ["total energy"], "energy (Ha)", whole_x=True
        )
        self.change_chart = LineChart(
            "Convergence", "cycle", ["log₁₀ |ΔE|"], "log₁₀ |ΔE / Ha|", whole_x=True
        )
        self.orbital_box = w.Box()
        self.log = w.HTML()
        self.log.add_class("ch-log")
        self.result = w.HTML()
        self.result.add_class("ch-result")
        self._cycles_drawn = -1
        self._result_drawn = False
        self.describe()

    # --- inputs ---------------------------------------------------------------------------
    def inputs(self) -> list[w.Widget]:
        return [
            w.HTML("<h4>Molecule and method</h4>"),
            w.HBox([self.molecule, self.upload]),
            w.HBox([w.VBox([self.method, self.basis]), w.VBox([self.charge, self.spin])]),
            self.about,
        ]

    def raw(self) -> dict:
        raw = {
            "molecule": self.molecule.value,
            "method": self.method.value,
            "basis": self.basis.value,
            "charge": self.charge.value,
            "spin": self.spin.value,
        }
        if self.molecule.value == UPLOAD:
            if not self.upload.value:
                raise InputError("xyz", "choose an .xyz file to upload")
            raw["xyz"] = xyz_from_upload(bytes(self.upload.value[0]["content"]))
        return raw

    def describe(self) -> None:
        """What the choices add up to, or what is wrong with them, before anything is sent."""
        self.upload.layout.display = None if self.molecule.value == UPLOAD else "none"
        try:
            params = check_chemistry(self.raw())
        except InputError as e:
            self.about.value = f"<span style='color:#b71c1c'>{html.escape(str(e))}</span>"
            return
        cores = self.resources.cores.value
        minutes = math.ceil(estimate_seconds(params, cores) / 60)
        asked = round(self.resources.hours.value * 60)
        self.about.value = html.escape(
            f"{params.title} ({formula(params.atoms)}): {len(params.atoms)} atoms, "
            f"{params.electrons} electrons, {params.basis_functions} basis functions; "
            f"at most about {minutes} min on {plural(cores, 'core')}"
            + (f", more than the {asked} min asked for." if minutes > asked else ".")
        )

    def check(self, request) -> Params:
        return check_inputs(self.raw(), request)

    def prepare(self, params: Params, request, run_dir: Path) -> str:
        (run_dir / PARAMS).write_text(json_text(params.to_json()))
        (run_dir / XYZ).write_text(to_xyz(params.title, params.atoms))
        self.clear()
        return job_body(self.python(), self.job_env(), str(run_dir))

    # --- outputs --------------------------------------------------------------------------
    def clear(self) -> None:
        self.energy_chart.update([], [[]])
        self.change_chart.update([], [[]])
        self.orbital_box.children = []
        self.log.value = self.result.value = ""
        self._cycles_drawn, self._result_drawn = -1, False

    def show(self, run_dir: Path, state: JobState) -> None:
        self.show_progress(run_dir)
        log = _tail_of(run_dir / LOG)
        if log:
            self.log.value = f"<b>PySCF log (end)</b><pre>{html.escape(tail(log))}</pre>"
        if not self._result_drawn and (run_dir / RESULT).is_file():
            self.show_result(run_dir)
        if state.ended and not self._result_drawn:
            self.result.value = (
                "<p style='color:#b71c1c'>The job ended without a result. "
                "The end of job.out:</p>"
                f"<pre>{html.escape(tail(_tail_of(run_dir / 'job.out'), 20))}</pre>"
            )

    def show_progress(self, run_dir: Path) -> None:
        cycles = parse_progress(_tail_of(run_dir / PROGRESS, limit=None))
        if len(cycles) == self._cycles_drawn or len(cycles) < 2:
            return  # bqplot takes a lone point for a malformed series: wait for a second one
        self._cycles_drawn = len(cycles)
        x = [c.cycle for c in cycles]
        self.energy_chart.update(x, [[c.energy for c in cycles]])
        changes = [math.log10(abs(c.delta_e)) if c.delta_e else math.nan for c in cycles]
        self.change_chart.update(x, [changes])

    def show_result(self, run_dir: Path) -> None:
        result = parse_result(_tail_of(run_dir / RESULT, limit=None))
        if result is None:
            return  # not whole yet, or damaged: the next poll tries again, and the end says so
        self._result_drawn = True
        lines = "".join(f"<div>{html.escape(line)}</div>" for line in summary_lines(result))
        warning = (
            ""
            if result.converged
            else "<p style='color:#b71c1c'>The SCF did not converge: the energy is not "
            "trustworthy. Try another method, a smaller basis or a better geometry.</p>"
        )
        self.result.value = f"<h4>{html.escape(result.title)}</h4>{warning}{lines}"
        x, names, ys = orbital_window(result.orbitals)
        if len(x) < 2:
            return  # a one-orbital atom: the text says it all
        chart = LineChart(
            "Orbital energies near the HOMO–LUMO gap", "orbital", names, "energy (Ha)"
        )
        chart.lines.marker = "circle"  # one point per orbital level, the gap between colours
        chart.update(x, ys)
        self.orbital_box.children = [chart.figure]

    def results(self) -> list[w.Widget]:
        return [
            w.HBox(
                [self.energy_chart.figure, self.change_chart.figure],
                layout=w.Layout(flex_flow="row wrap"),
            ),
            self.result,
            self.orbital_box,
            self.log,
        ]


def _tail_of(path: Path, limit: int | None = TAIL_BYTES) -> str:
    """The end of a file the job may still be writing ("" while it does not exist)."""
    try:
        with path.open("rb") as f:
            if limit is not None:
                size = f.seek(0, 2)
                f.seek(max(0, size - limit))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def build() -> w.Widget:
    return PyscfApp().widget()


def main() -> w.Widget:
    return take(__name__, build)
