"""Gaussian cube files, the pure part: reading one, and what the viewer draws from it.

A cube file holds a scalar field on a grid (an orbital's value, the electron density) and the
molecule it belongs to.  PySCF's ``tools.cubegen`` writes them, as do Gaussian, ORCA, CP2K
and Quantum ESPRESSO's pp.x.  The format: two comment lines; the atom count and the grid's
origin; three lines of point count and step vector (a negative count means Ångström, else
bohr); one line per atom (atomic number, charge, x, y, z); with a negative atom count, a line
listing the orbitals stored; then the values, z fastest.  Only the first stored field is
read.  Everything the viewer sends is in Ångström.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy

from centre.errors import FieldError

BOHR_IN_ANGSTROM = 0.529177210903
MAX_POINTS = 512**3  # a bigger grid is not drawn, it is refused with its size
MAX_ATOMS = 10_000


@dataclass(frozen=True)
class Cube:
    comment: str
    numbers: numpy.ndarray  # (atoms,) atomic numbers
    positions: numpy.ndarray  # (atoms, 3) in Ångström
    origin: numpy.ndarray  # (3,) in Ångström
    steps: numpy.ndarray  # (3, 3): row i is the step along grid axis i, in Ångström
    values: numpy.ndarray  # (nx, ny, nz)

    # The grid's range, read once: every request on a cached cube asks for it, and each scan
    # of a 128³ grid is 2 million values.
    @cached_property
    def low(self) -> float:
        return float(self.values.min())

    @cached_property
    def high(self) -> float:
        return float(self.values.max())

    @property
    def peak(self) -> float:
        return max(abs(self.low), abs(self.high))

    @property
    def signed(self) -> bool:
        """An orbital has both signs; a density is never meaningfully negative."""
        return self.low < -1e-6 * max(abs(self.high), 1e-30)

    def point(self, index: numpy.ndarray) -> numpy.ndarray:
        """Grid indices (…, 3), fractional or not, to positions in Ångström."""
        return self.origin + index @ self.steps


def parse_cube(data: bytes) -> Cube:
    """A cube file's grid and molecule; a FieldError that says which line is wrong."""
    lines = data.split(b"\n", 6)
    if len(lines) < 7:
        raise FieldError("file", "this is not a cube file: it has fewer than 6 lines")
    comment = " ".join(line.decode("utf-8", "replace").strip() for line in lines[:2])
    count, origin = _numbers_line(lines[2], 4, "the atom count and origin")
    atom_count = int(count)
    many_fields = atom_count < 0
    atom_count = abs(atom_count)
    if atom_count > MAX_ATOMS:
        raise FieldError("file", f"line 3 gives {atom_count:,} atoms; at most {MAX_ATOMS:,}")
    shape, steps = [], []
    for axis, line in enumerate(lines[3:6]):
        points, step = _numbers_line(line, 4, f"grid axis {axis + 1}")
        if points == 0 or points != int(points):
            raise FieldError("file", f"line {axis + 4}: the point count must be a whole number")
        unit = 1.0 if points < 0 else BOHR_IN_ANGSTROM
        shape.append(abs(int(points)))
        steps.append(numpy.array(step) * unit)
    total = math.prod(shape)
    if total > MAX_POINTS:
        raise FieldError(
            "file", f"the grid has {'×'.join(map(str, shape))} points; at most 512³ are drawn"
        )
    # Atom lines are in the unit of the first axis, as every writer does.
    unit = 1.0 if float(lines[3].split()[0]) < 0 else BOHR_IN_ANGSTROM
    rest = lines[6].split(b"\n", atom_count + (1 if many_fields else 0))
    atoms = []
    for i in range(atom_count):
        if i >= len(rest) - 1:
            raise FieldError("file", f"the file ends inside the atom lines ({i} of {atom_count})")
        number, values = _numbers_line(rest[i], 5, f"atom {i + 1}")
        atoms.append((int(number), values[1:4]))  # values[0] is the charge
    body = rest[-1]
    fields = 1
    if many_fields:
        fields = max(1, int(rest[atom_count].split()[0]))
    values = _values(body)
    if values.size < total * fields:
        raise FieldError(
            "file",
            f"the grid needs {total * fields:,} values and the file has {values.size:,}; "
            "it may still be being written",
        )
    grid = values[: total * fields].reshape(*shape, fields)[..., 0]
    return Cube(
        comment=comment,
        numbers=numpy.array([n for n, _ in atoms], dtype=int),
        positions=numpy.array([p for _, p in atoms], dtype=float).reshape(-1, 3) * unit,
        origin=numpy.array(origin) * unit,
        steps=numpy.array(steps),
        values=grid,
    )


def _values(body: bytes) -> numpy.ndarray:
    """The grid's values.  numpy's text reader is the fastest here (0.3 s for 128³ points);
    it stops at the first word that is no number, which the count check then reports."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return numpy.fromstring(body.decode("ascii", "replace"), sep=" ")


def _numbers_line(line: bytes, count: int, what: str) -> tuple[float, list[float]]:
    words = line.split()
    try:
        numbers = [float(word) for word in words[:count]]
    except ValueError:
        numbers = []
    if len(numbers) < count or not all(math.isfinite(n) for n in numbers):
        shown = line[:60].decode("utf-8", "replace")
        raise FieldError("file", f"this is not a cube file: {what} should be numbers: {shown!r}")
    return numbers[0], numbers[1:]
