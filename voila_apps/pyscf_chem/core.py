"""Quantum chemistry with PySCF, the pure part: checking a request, the job's command, and
reading what the job writes (molecules and XYZ files are molecules.py).

Everything a person sends is checked here before anything is created: the molecule (a
built-in one or an uploaded XYZ file), the method and basis (allow-lists), charge and spin
(against the electron count) and the size (an estimate of the run time against the hours
asked for).  The job (run.py) checks params.json again with the same functions, since
anything in the person's home may have been edited in between.

Standard library only: the hub's environment imports this module and has no PySCF.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from centre.options import SpawnRequest
from voila_apps.kit.jobs import InputError
from voila_apps.pyscf_chem.basis_sizes import BASIS_FUNCTIONS, ELEMENTS
from voila_apps.pyscf_chem.molecules import (
    MOLECULES,
    Atom,
    check_atoms,
    electron_count,
    element,
    formula,
    parse_xyz,
    shown,
)

PARAMS = "params.json"
PROGRESS = "progress.jsonl"
RESULT = "result.json"
LOG = "pyscf.log"
XYZ = "molecule.xyz"

MAX_CHARGE = 10
MAX_SPIN = 10
MAX_BASIS_FUNCTIONS = 1000
MAX_TITLE = 80
UPLOAD = "upload"

# What the UI offers and the job accepts; PySCF's names for the functionals (None: Hartree-Fock).
METHODS: dict[str, str | None] = {
    "HF": None,
    "LDA": "lda,vwn",
    "PBE": "pbe",
    "BLYP": "blyp",
    "TPSS": "tpss",
    "B3LYP": "b3lyp",
    "PBE0": "pbe0",
    "CAM-B3LYP": "camb3lyp",
}
BASES = tuple(BASIS_FUNCTIONS)
HARTREE_EV = 27.211386245988


@dataclass(frozen=True)
class Params:
    title: str
    atoms: tuple[Atom, ...]
    method: str
    basis: str
    charge: int = 0
    spin: int = 0  # 2S: unpaired electrons

    @property
    def electrons(self) -> int:
        return electron_count(self.atoms, self.charge)

    @property
    def basis_functions(self) -> int:
        return basis_function_count(self.atoms, self.basis)

    @property
    def open_shell(self) -> bool:
        return self.spin != 0

    @property
    def xc(self) -> str | None:
        return METHODS[self.method]

    def to_json(self) -> dict:
        return {
            "title": self.title,
            "atoms": [list(atom) for atom in self.atoms],
            "method": self.method,
            "basis": self.basis,
            "charge": self.charge,
            "spin": self.spin,
        }


def basis_function_count(atoms: Sequence[Atom], basis: str) -> int:
    sizes = BASIS_FUNCTIONS[basis]
    return sum(sizes[ELEMENTS.index(atom.symbol)] or 0 for atom in atoms)


# --- checking a request ---------------------------------------------------------------------


def check_inputs(raw: Mapping[str, object], request: SpawnRequest) -> Params:
    """Everything the form sent, and whether it fits the job's hours and cores."""
    params = check_chemistry(raw)
    check_size(params, request.cores, request.walltime_minutes)
    return params


def check_chemistry(raw: Mapping[str, object]) -> Params:
    """The molecule, method, basis, charge and spin; raw["molecule"] is a built-in name or
    "upload", with the file's text in raw["xyz"]."""
    molecule = raw.get("molecule")
    if molecule == UPLOAD:
        comment, atoms = parse_xyz(raw.get("xyz", ""))
        title = _title(comment) or f"Uploaded molecule {formula(atoms)}"
    elif isinstance(molecule, str) and molecule in MOLECULES:
        title, atoms = MOLECULES[molecule].title, MOLECULES[molecule].atoms
    else:
        raise InputError(
            "molecule",
            f"{shown(molecule)} is not offered; choose one of {', '.join(MOLECULES)}, "
            f"or {UPLOAD} with an XYZ file",
        )
    return _checked(title, atoms, raw)


def params_from_json(data: object) -> Params:
    """params.json as the UI wrote it, checked again (it sits in the person's home)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("atoms"), list):
        raise InputError("params", "params.json must be an object with a list of atoms")
    atoms = []
    for index, row in enumerate(data["atoms"], start=1):
        coordinates = [_optional(v) for v in row[1:]] if isinstance(row, list) else []
        if len(coordinates) != 3 or None in coordinates or not isinstance(row[0], str):
            raise InputError("xyz", f"atom {index}: expected [symbol, x, y, z] in Angstrom")
        atoms.append(Atom(element(row[0], f"atom {index}"), *coordinates))
    check_atoms(atoms)
    title = data.get("title")
    return _checked(_title(title) if isinstance(title, str) else "", tuple(atoms), data)


def _checked(title: str, atoms: tuple[Atom, ...], raw: Mapping[str, object]) -> Params:
    method = raw.get("method")
    if not isinstance(method, str) or method not in METHODS:
        raise InputError(
            "method", f"{shown(method)} is not offered; choose one of {', '.join(METHODS)}"
        )
    basis = raw.get("basis")
    if not isinstance(basis, str) or basis not in BASIS_FUNCTIONS:
        raise InputError(
            "basis", f"{shown(basis)} is not offered; choose one of {', '.join(BASES)}"
        )
    missing = sorted(
        {a.symbol for a in atoms if BASIS_FUNCTIONS[basis][ELEMENTS.index(a.symbol)] is None},
        key=ELEMENTS.index,
    )
    if missing:
        covering = [b for b in BASES if all(_has(b, a.symbol) for a in atoms)]
        raise InputError(
            "basis",
            f"{basis} has no functions for {', '.join(missing)}; "
            f"for this molecule choose one of {', '.join(covering)}",
        )
    charge = _whole("charge", raw.get("charge", 0), -MAX_CHARGE, MAX_CHARGE)
    spin = _whole("spin", raw.get("spin", 0), 0, MAX_SPIN)
    electrons = electron_count(atoms, charge)
    if electrons < 1:
        raise InputError("charge", f"a charge of {signed(charge)} leaves {electrons} electrons")
    if spin > electrons:
        raise InputError(
            "spin", f"2S = {spin} needs {spin} unpaired electrons; the molecule has {electrons}"
        )
    if (electrons - spin) % 2:
        parity = "even (0, 2, 4, …)" if electrons % 2 == 0 else "odd (1, 3, 5, …)"
        raise InputError(
            "spin",
            f"with charge {signed(charge)} the molecule has {electrons} electrons, so the number "
            f"of unpaired electrons 2S must be {parity}; you gave {spin}",
        )
    return Params(title or formula(atoms), atoms, method, basis, charge, spin)


def _has(basis: str, symbol: str) -> bool:
    return BASIS_FUNCTIONS[basis][ELEMENTS.index(symbol)] is not None


def _whole(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(field, f"a whole number from {low} to {high}; you gave {shown(value)}")
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _title(text: str) -> str:
    printable = "".join(c if c.isprintable() else " " for c in text).strip()
    return printable[:MAX_TITLE]


# --- size -------------------------------------------------------------------------------------

# Measured with PySCF 2.14 on one core of a shared 2-core VM, 7 to 10 SCF cycles: benzene
# HF/cc-pVTZ (264 functions) 263 s, 20 waters HF/6-31G (260) 148 s, 20 waters B3LYP/STO-3G
# (60 atoms, 140 functions) 94 s, benzene B3LYP/cc-pVDZ 11 s.  SAFETY covers harder cases
# (three times the cycles) and slower nodes: a guess that is too low costs the person a job
# killed at its time limit, one that is too high only asks for more hours.
SECONDS_PER_NBF4 = 6e-8
GRID_SECONDS_PER_ATOM = 0.15
GRID_SECONDS_PER_ATOM_NBF2 = 7e-5
STARTUP_SECONDS = 30
SAFETY = 3
PARALLEL_EXPONENT = 0.6  # n cores run direct SCF about n ** 0.6 times as fast
# The cube files for the 3D viewer (cubes.py): cubegen evaluates every basis function at
# every point, about 0.03 s per function for the six files at 64³ on one core here.
CUBE_SECONDS_PER_FUNCTION = 0.03


def estimate_seconds(params: Params, cores: int) -> float:
    """A conservative guess of the run time: Fock builds grow as nbf⁴, DFT grids as
    atoms·nbf², and an unrestricted calculation does everything for two spins.  The cube
    files come last."""
    nbf = params.basis_functions
    seconds = SECONDS_PER_NBF4 * nbf**4
    if params.xc is not None:
        seconds += len(params.atoms) * (GRID_SECONDS_PER_ATOM + GRID_SECONDS_PER_ATOM_NBF2 * nbf**2)
    if params.open_shell:
        seconds *= 2
    seconds += CUBE_SECONDS_PER_FUNCTION * nbf
    return STARTUP_SECONDS + SAFETY * seconds / max(1, cores) ** PARALLEL_EXPONENT


def check_size(params: Params, cores: int, walltime_minutes: int) -> None:
    nbf = params.basis_functions
    if nbf > MAX_BASIS_FUNCTIONS:
        raise InputError(
            "basis",
            f"{params.basis} gives this molecule {nbf} basis functions; this app runs at most "
            f"{MAX_BASIS_FUNCTIONS}: choose a smaller basis",
        )
    minutes = math.ceil(estimate_seconds(params, cores) / 60)
    if minutes > walltime_minutes:
        raise InputError(
            "walltime_hours",
            f"{params.method}/{params.basis} on {len(params.atoms)} atoms ({nbf} basis "
            f"functions) may need up to {minutes} minutes on {plural(cores, 'core')}; you asked for "
            f"{walltime_minutes}: ask for more hours or cores, or choose a smaller basis",
        )


# --- the job --------------------------------------------------------------------------------


def job_body(python: str, env: str, run_dir: str) -> str:
    """The batch script after the #SBATCH lines: PySCF's threads follow the cores asked for."""
    return (
        'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"\n'
        + env
        + f"exec {shlex.quote(python)} -m voila_apps.pyscf_chem.run {shlex.quote(run_dir)}\n"
    )


def json_text(data: Mapping[str, object]) -> str:
    """JSON with one top-level key per line: valid for programs, readable for people."""
    rows = (f" {json.dumps(key)}: {json.dumps(value)}" for key, value in data.items())
    return "{\n" + ",\n".join(rows) + "\n}\n"


# --- reading what the job writes --------------------------------------------------------------


class Cycle(NamedTuple):
    cycle: int
    energy: float  # Hartree
    delta_e: float | None
    gradient: float | None


def progress_line(cycle: int, energy: float, delta_e: float, gradient: float) -> str:
    """One SCF cycle as the job writes it; non-finite numbers become null (JSON has no NaN)."""
    return json.dumps(
        {
            "cycle": cycle,
            "energy": _finite(energy),
            "delta_e": _finite(delta_e),
            "gradient": _finite(gradient),
        }
    )


def parse_progress(text: str) -> list[Cycle]:
    """The cycles so far; a line still being written (or any bad line) is skipped."""
    cycles = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict):
            continue
        cycle, energy = row.get("cycle"), _optional(row.get("energy"))
        if isinstance(cycle, int) and not isinstance(cycle, bool) and energy is not None:
            cycles.append(
                Cycle(cycle, energy, _optional(row.get("delta_e")), _optional(row.get("gradient")))
            )
    return cycles


@dataclass(frozen=True)
class Orbitals:
    channel: str  # "restricted" (doubly occupied), "alpha" or "beta"
    energies: tuple[float, ...]  # Hartree, ascending
    occupations: tuple[float, ...]


@dataclass(frozen=True)
class Result:
    title: str
    energy: float
    converged: bool
    cycles: int
    method: str
    basis: str
    reference: str  # RHF, RKS, UHF or UKS
    charge: int
    spin: int
    basis_functions: int
    atoms: tuple[Atom, ...]
    orbitals: tuple[Orbitals, ...]
    homo: float | None
    lumo: float | None
    s_squared: float | None
    seconds: float
    threads: int


def parse_result(text: str) -> Result | None:
    """result.json as plain data, or None while it is missing or not a whole result."""
    try:
        data = json.loads(text)
        orbitals = tuple(
            Orbitals(
                str(o["channel"]),
                tuple(float(e) for e in o["energies"]),
                tuple(float(n) for n in o["occupations"]),
            )
            for o in data["orbitals"]
        )
        energy = _optional(data["energy"])
        if energy is None or any(len(o.energies) != len(o.occupations) for o in orbitals):
            return None
        return Result(
            title=str(data.get("title", "")),
            energy=energy,
            converged=bool(data["converged"]),
            cycles=int(data["cycles"]),
            method=str(data["method"]),
            basis=str(data["basis"]),
            reference=str(data["reference"]),
            charge=int(data["charge"]),
            spin=int(data["spin"]),
            basis_functions=int(data["basis_functions"]),
            atoms=tuple(Atom(str(a[0]), *map(float, a[1:4])) for a in data["atoms"]),
            orbitals=orbitals,
            homo=_optional(data.get("homo")),
            lumo=_optional(data.get("lumo")),
            s_squared=_optional(data.get("s_squared")),
            seconds=float(data.get("seconds", 0)),
            threads=int(data.get("threads", 1)),
        )
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError):
        return None


def frontier(orbitals: Sequence[Orbitals]) -> tuple[float | None, float | None]:
    """HOMO and LUMO energies over every channel (None where there is none)."""
    occupied = [
        e for o in orbitals for e, n in zip(o.energies, o.occupations, strict=True) if n > 0
    ]
    virtual = [
        e for o in orbitals for e, n in zip(o.energies, o.occupations, strict=True) if n == 0
    ]
    return (max(occupied, default=None), min(virtual, default=None))


def orbital_window(
    orbitals: Sequence[Orbitals], around: int = 10
) -> tuple[list[int], list[str], list[list[float]]]:
    """The ``around`` highest occupied and lowest virtual orbitals, by orbital number: per
    channel one series of occupied and one of virtual energies (NaN where a series has no
    point there, which the chart leaves out)."""
    names, columns = [], []
    for o in orbitals:
        label = "" if o.channel == "restricted" else f"{o.channel} "
        names += [f"{label}occupied", f"{label}virtual"]
        columns.append(o)
    homo_index = [
        max((i for i, n in enumerate(o.occupations) if n > 0), default=-1) for o in columns
    ]
    first = max(0, min(homo_index) - around + 1)
    last = min(max(len(o.energies) for o in columns), max(homo_index) + 1 + around)
    x = list(range(first + 1, last + 1))
    ys: list[list[float]] = []
    for o in columns:
        occupied, virtual = [], []
        for i in range(first, last):
            energy = o.energies[i] if i < len(o.energies) else math.nan
            filled = i < len(o.occupations) and o.occupations[i] > 0
            occupied.append(energy if filled else math.nan)
            virtual.append(math.nan if filled else energy)
        ys += [occupied, virtual]
    return x, names, ys


def summary_lines(result: Result) -> list[str]:
    """The result in words, for the results panel; the energy keeps 10 decimals."""
    lines = [
        f"Total energy: {result.energy:.10f} Ha",
        f"Method: {result.method}/{result.basis} ({result.reference}), "
        f"{result.basis_functions} basis functions, charge {signed(result.charge)}, "
        f"2S = {result.spin}",
        f"SCF {'converged' if result.converged else 'did NOT converge'} "
        f"after {result.cycles} cycles",
    ]
    if result.homo is not None:
        lines.append(f"HOMO: {result.homo:.6f} Ha ({result.homo * HARTREE_EV:.3f} eV)")
    if result.lumo is not None:
        lines.append(f"LUMO: {result.lumo:.6f} Ha ({result.lumo * HARTREE_EV:.3f} eV)")
    if result.homo is not None and result.lumo is not None:
        gap = result.lumo - result.homo
        lines.append(f"HOMO–LUMO gap: {gap:.6f} Ha ({gap * HARTREE_EV:.3f} eV)")
    if result.s_squared is not None:
        lines.append(
            f"<S²>: {result.s_squared:.4f} (exact for this spin: "
            f"{result.spin / 2 * (result.spin / 2 + 1):.4f})"
        )
    lines.append(f"Run time: {result.seconds:.1f} s on {plural(result.threads, 'thread')}")
    return lines


def signed(number: int) -> str:
    return f"{number:+d}" if number else "0"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _optional(value: object) -> float | None:
    """A finite number from JSON, or None (also for an integer too big for a float)."""
    if not _is_number(value):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
