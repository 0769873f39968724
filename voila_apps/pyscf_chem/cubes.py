"""The calculation's orbitals and electron density as cube files, for the 3D viewer.

The job writes them into ``orbitals/`` next to its result: the frontier orbitals
(HOMO−2 to LUMO+2, those that exist) and the total density, on a 64³ grid around the
molecule (PySCF's ``tools.cubegen``).  For an open shell the orbitals are the alpha ones.
The viewer lists them in this order and draws their isosurfaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy

CUBES = "orbitals"
FIRST_CUBE = "homo.cube"  # the one the app's "Open in 3D viewer" opens
POINTS = 64
# Bohr of space around the outermost atoms; PySCF's 3.0 cuts the lobes of diffuse virtual
# orbitals such as water's LUMO.
MARGIN = 4.5
AROUND_FRONTIER = 2


GRID = {"nx": POINTS, "ny": POINTS, "nz": POINTS, "margin": MARGIN}


def orbital_files(occupations: Sequence[float]) -> dict[str, int]:
    """File name → orbital index, from HOMO−2 to LUMO+2, for the orbitals that exist."""
    occupied = [i for i, n in enumerate(occupations) if n > 0]
    if not occupied:
        return {}
    homo = occupied[-1]
    named = [("homo", offset, homo + offset) for offset in range(-AROUND_FRONTIER, 1)]
    named += [("lumo", offset, homo + 1 + offset) for offset in range(AROUND_FRONTIER + 1)]
    files = {}
    for name, offset, index in named:
        if 0 <= index < len(occupations):
            files[f"{name}{f'{offset:+d}' if offset else ''}.cube"] = index
    return files


def write_cubes(mol, mf, run_dir: Path) -> list[str]:
    """The cube files, written as the job's last step; their names, in viewer order.  They
    are written into a scratch folder that takes its name at the end, so the app offers the
    viewer only once every file is whole."""
    from pyscf.tools import cubegen  # the job's import, not the app's

    folder = run_dir / f"{CUBES}.part"
    folder.mkdir(exist_ok=True)
    coefficients, occupations = numpy.asarray(mf.mo_coeff), numpy.asarray(mf.mo_occ)
    if occupations.ndim == 2:  # unrestricted: alpha
        coefficients, occupations = coefficients[0], occupations[0]
    written = []
    for name, index in orbital_files(occupations.tolist()).items():
        cubegen.orbital(mol, str(folder / name), coefficients[:, index], **GRID)
        written.append(name)
    density = numpy.asarray(mf.make_rdm1())
    if density.ndim == 3:
        density = density.sum(axis=0)
    cubegen.density(mol, str(folder / "density.cube"), density, **GRID)
    folder.rename(run_dir / CUBES)
    return [*written, "density.cube"]
