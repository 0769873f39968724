"""The batch job: one SCF calculation with PySCF, in the run folder the app wrote.

    python -m voila_apps.pyscf_chem.run <run_dir>

Reads params.json (checked again by core.params_from_json), writes PySCF's own log at
verbose 4 to pyscf.log, one JSON line per SCF cycle to progress.jsonl (flushed at once, so
the app can plot it while the job runs), and result.json at the end (written to a temporary
name and renamed, so the app never reads half of it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy
import pyscf
from pyscf import dft, gto, lib, scf

from voila_apps.kit.jobs import InputError
from voila_apps.pyscf_chem.core import (
    LOG,
    PARAMS,
    PROGRESS,
    RESULT,
    Orbitals,
    Params,
    frontier,
    json_text,
    params_from_json,
    plural,
    progress_line,
)
from voila_apps.pyscf_chem.cubes import CUBES, write_cubes

MAX_CYCLES = 100


def build(params: Params, log_file, memory_mb: int) -> gto.Mole:
    mol = gto.Mole()
    mol.atom = [(a.symbol, (a.x, a.y, a.z)) for a in params.atoms]
    mol.unit = "Angstrom"
    mol.basis = params.basis
    mol.charge = params.charge
    mol.spin = params.spin
    mol.verbose = 4
    mol.stdout = log_file
    mol.max_memory = memory_mb
    return mol.build()


def method(params: Params, mol: gto.Mole) -> scf.hf.SCF:
    """Restricted for closed shells, unrestricted for open ones."""
    if params.xc is None:
        mf = scf.UHF(mol) if params.open_shell else scf.RHF(mol)
    else:
        mf = dft.UKS(mol) if params.open_shell else dft.RKS(mol)
        mf.xc = params.xc
    mf.max_cycle = MAX_CYCLES
    mf.chkfile = None  # nothing reads it, and PySCF would leave it in $TMPDIR
    return mf


def follow(progress_file):
    """SCF callback: each cycle's energy as one flushed JSON line."""

    def callback(envs: dict) -> None:
        progress_file.write(
            progress_line(
                envs["cycle"] + 1,
                envs["e_tot"],
                envs["e_tot"] - envs["last_hf_e"],
                float(envs["norm_gorb"]),
            )
            + "\n"
        )
        progress_file.flush()

    return callback


def orbitals(mf: scf.hf.SCF) -> list[dict]:
    energies, occupations = numpy.asarray(mf.mo_energy), numpy.asarray(mf.mo_occ)
    if energies.ndim == 1:
        return [_channel("restricted", energies, occupations)]
    return [
        _channel(name, e, n)
        for name, e, n in zip(("alpha", "beta"), energies, occupations, strict=True)
    ]


def _channel(name: str, energies, occupations) -> dict:
    return {"channel": name, "energies": energies.tolist(), "occupations": occupations.tolist()}


def result(params: Params, mol: gto.Mole, mf: scf.hf.SCF, seconds: float, threads: int) -> dict:
    channels = orbitals(mf)
    homo, lumo = frontier(
        [Orbitals(c["channel"], tuple(c["energies"]), tuple(c["occupations"])) for c in channels]
    )
    return {
        "energy": float(mf.e_tot),
        "converged": bool(mf.converged),
        "cycles": int(mf.cycles),
        "method": params.method,
        "xc": params.xc,
        "basis": params.basis,
        "reference": _reference(params),
        "charge": params.charge,
        "spin": params.spin,
        "basis_functions": int(mol.nao),
        "electrons": int(mol.nelectron),
        "title": params.title,
        "atoms": [list(a) for a in params.atoms],
        "orbitals": channels,
        "homo": homo,
        "lumo": lumo,
        "s_squared": float(mf.spin_square()[0]) if params.open_shell else None,
        "seconds": round(seconds, 3),
        "threads": threads,
        "pyscf_version": pyscf.__version__,
    }


def _reference(params: Params) -> str:
    return ("U" if params.open_shell else "R") + ("HF" if params.xc is None else "KS")


def _slurm_number(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return max(1, int(value)) if value.isdigit() else default


def main(run_dir: Path) -> int:
    try:
        params = params_from_json(json.loads((run_dir / PARAMS).read_text()))
    except (OSError, ValueError) as e:  # InputError is a ValueError
        field = f" ({e.field})" if isinstance(e, InputError) else ""
        print(f"params.json cannot be used{field}: {e}", file=sys.stderr)
        return 2
    threads = _slurm_number("SLURM_CPUS_PER_TASK", 1)
    lib.num_threads(threads)
    # Leave a quarter of the job's memory to Python, NumPy and the grids' buffers.
    memory_mb = int(_slurm_number("SLURM_MEM_PER_NODE", 2000) * 0.75)
    started = time.perf_counter()
    with (
        open(run_dir / LOG, "w", buffering=1) as log_file,
        open(run_dir / PROGRESS, "w", buffering=1) as progress_file,
    ):
        mol = build(params, log_file, memory_mb)
        mf = method(params, mol)
        mf.callback = follow(progress_file)
        mf.kernel()
        seconds = time.perf_counter() - started
        data = result(params, mol, mf, seconds, threads)
    partial = run_dir / (RESULT + ".part")
    partial.write_text(json_text(data))
    os.replace(partial, run_dir / RESULT)
    try:
        names = write_cubes(mol, mf, run_dir)
        print(f"Wrote {len(names)} cube files for the 3D viewer into {run_dir / CUBES}")
    except (OSError, ValueError, MemoryError) as e:  # the energy stands without them
        print(f"corehour: the orbitals' cube files were not written: {e}", file=sys.stderr)
    state = "converged" if data["converged"] else "did NOT converge"
    print(
        f"{params.method}/{params.basis}: E = {data['energy']:.10f} Ha, SCF {state} "
        f"in {data['cycles']} cycles, {seconds:.1f} s on {plural(threads, 'thread')}"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m voila_apps.pyscf_chem.run <run_dir>")
    sys.exit(main(Path(sys.argv[1])))
