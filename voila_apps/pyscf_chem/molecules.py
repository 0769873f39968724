"""Molecules: the built-in ones and uploaded XYZ files, checked atom by atom.

Every mistake in a file is named by its line, since the person has to find and fix it.
Coordinates are in Angstrom throughout.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from voila_apps.kit.jobs import InputError
from voila_apps.pyscf_chem.basis_sizes import ELEMENTS

MAX_ATOMS = 60
MAX_XYZ_BYTES = 64 * 1024
MAX_COORDINATE = 1000.0
MIN_DISTANCE = 0.4  # H2's bond, the shortest there is, is 0.74


class Atom(NamedTuple):
    symbol: str
    x: float
    y: float
    z: float


@dataclass(frozen=True)
class Molecule:
    title: str
    atoms: tuple[Atom, ...]


# Experimental equilibrium geometries in Angstrom (NIST CCCBDB, rounded), as XYZ atom lines.
_GEOMETRIES = {
    "water": ("Water", """
        O   0.0000  0.0000  0.1173
        H   0.0000  0.7572 -0.4692
        H   0.0000 -0.7572 -0.4692"""),
    "methane": ("Methane", """
        C   0.0000  0.0000  0.0000
        H   0.6291  0.6291  0.6291
        H  -0.6291 -0.6291  0.6291
        H  -0.6291  0.6291 -0.6291
        H   0.6291 -0.6291 -0.6291"""),
    "ammonia": ("Ammonia", """
        N   0.0000  0.0000  0.1127
        H   0.0000  0.9377 -0.2630
        H   0.8121 -0.4689 -0.2630
        H  -0.8121 -0.4689 -0.2630"""),
    "carbon-dioxide": ("Carbon dioxide", """
        C   0.0000  0.0000  0.0000
        O   0.0000  0.0000  1.1600
        O   0.0000  0.0000 -1.1600"""),
    "nitrogen": ("Nitrogen", """
        N   0.0000  0.0000  0.5488
        N   0.0000  0.0000 -0.5488"""),
    "hydrogen-fluoride": ("Hydrogen fluoride", """
        F   0.0000  0.0000  0.0917
        H   0.0000  0.0000 -0.8253"""),
    "benzene": ("Benzene", """
        C   1.3970  0.0000  0.0000
        C   0.6985  1.2098  0.0000
        C  -0.6985  1.2098  0.0000
        C  -1.3970  0.0000  0.0000
        C  -0.6985 -1.2098  0.0000
        C   0.6985 -1.2098  0.0000
        H   2.4810  0.0000  0.0000
        H   1.2405  2.1486  0.0000
        H  -1.2405  2.1486  0.0000
        H  -2.4810  0.0000  0.0000
        H  -1.2405 -2.1486  0.0000
        H   1.2405 -2.1486  0.0000"""),
    "ethanol": ("Ethanol", """
        C   1.1879 -0.3829  0.0000
        C   0.0000  0.5526  0.0000
        O  -1.1867 -0.2472  0.0000
        H  -1.9237  0.3850  0.0000
        H   2.1370  0.1566  0.0000
        H   1.1696 -1.0258  0.8810
        H   1.1696 -1.0258 -0.8810
        H   0.0623  1.1952  0.8843
        H   0.0623  1.1952 -0.8843"""),
}  # fmt: skip


# --- XYZ ----------------------------------------------------------------------------

_COUNT = re.compile(r"[0-9]{1,6}")
_SYMBOL = re.compile(r"[A-Za-z]{1,2}|[0-9]{1,3}")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")


def xyz_from_upload(data: bytes) -> str:
    """The uploaded file's text: refused when too big or not text."""
    if len(data) > MAX_XYZ_BYTES:
        raise InputError(
            "xyz", f"the file has {len(data) // 1024} KB; at most {MAX_XYZ_BYTES // 1024} KB"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("xyz", "the file is not text; upload an .xyz file") from None


def parse_xyz(text: str) -> tuple[str, tuple[Atom, ...]]:
    """The comment and the atoms of a standard XYZ file: a count line, a comment line, then
    one ``Symbol x y z`` line (Angstrom) per atom.  Any mistake is named by its line."""
    if not isinstance(text, str):
        raise InputError("xyz", "upload an .xyz file")
    if not text.strip():
        raise InputError("xyz", "the file is empty; upload an .xyz file")
    if len(text.encode()) > MAX_XYZ_BYTES:
        raise InputError("xyz", f"at most {MAX_XYZ_BYTES // 1024} KB")
    # Only newlines end lines (str.splitlines also splits at form feeds and the like, and the
    # line numbers in messages must match what the person's editor shows).
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    first = lines[0].strip()
    if not _COUNT.fullmatch(first):
        raise InputError("xyz", f"line 1 must be the number of atoms, e.g. 3; found {shown(first)}")
    count = int(first)
    if not 1 <= count <= MAX_ATOMS:
        raise InputError("xyz", f"line 1 says {count} atoms; this app takes 1 to {MAX_ATOMS} atoms")
    comment = lines[1].strip() if len(lines) > 1 else ""
    rows = lines[2:]
    for number, row in enumerate(rows, start=3):
        if not row.strip():
            raise InputError("xyz", f"line {number} is empty; atom lines follow one another")
    if len(rows) != count:
        raise InputError(
            "xyz",
            f"line 1 says {count} atoms but the file has {len(rows)} atom lines "
            "(one 'Symbol x y z' line per atom after the comment line, one molecule per file)",
        )
    atoms = tuple(_atom_line(number, row) for number, row in enumerate(rows, start=3))
    check_atoms(atoms)
    return comment, atoms


def _atom_line(number: int, line: str) -> Atom:
    fields = line.split()
    if len(fields) != 4:
        raise InputError(
            "xyz",
            f"line {number}: expected 'Symbol x y z', found {len(fields)} fields: {shown(line)}",
        )
    symbol = element(fields[0], f"line {number}")
    coordinates = []
    for axis, field in zip("xyz", fields[1:], strict=True):
        if not _NUMBER.fullmatch(field):
            raise InputError("xyz", f"line {number}: {axis} {shown(field)} is not a number")
        coordinates.append(float(field))
    return Atom(symbol, *coordinates)


def element(text: str, where: str) -> str:
    """An element symbol in any case ("cl", "CL", "Cl") or an atomic number."""
    if _SYMBOL.fullmatch(text):
        if text.isdigit():
            z = int(text)
            if 1 <= z <= len(ELEMENTS):
                return ELEMENTS[z - 1]
        elif text.capitalize() in ELEMENTS:
            return text.capitalize()
    raise InputError(
        "xyz",
        f"{where}: unknown element {shown(text)}; this app offers H to {ELEMENTS[-1]} "
        f"(atomic numbers 1 to {len(ELEMENTS)})",
    )


def check_atoms(atoms: Sequence[Atom]) -> None:
    """Atoms the job can use: offered elements, finite coordinates, no two on one spot."""
    if not 1 <= len(atoms) <= MAX_ATOMS:
        raise InputError("xyz", f"{len(atoms)} atoms; this app takes 1 to {MAX_ATOMS} atoms")
    for index, atom in enumerate(atoms, start=1):
        if atom.symbol not in ELEMENTS:
            raise InputError("xyz", f"atom {index}: unknown element {shown(atom.symbol)}")
        for value in atom[1:]:
            if not math.isfinite(value) or abs(value) > MAX_COORDINATE:
                raise InputError(
                    "xyz",
                    f"atom {index} ({atom.symbol}): coordinates must be numbers within "
                    f"±{MAX_COORDINATE:g} Å",
                )
    for i, a in enumerate(atoms):
        for j in range(i):
            distance = math.dist(a[1:], atoms[j][1:])
            if distance < MIN_DISTANCE:
                raise InputError(
                    "xyz",
                    f"atoms {j + 1} ({atoms[j].symbol}) and {i + 1} ({a.symbol}) are "
                    f"{distance:.3f} Å apart; atoms must be at least {MIN_DISTANCE} Å apart "
                    "(coordinates are in Angstrom)",
                )


MOLECULES: dict[str, Molecule] = {
    key: Molecule(title, tuple(_atom_line(0, row) for row in rows.strip().split("\n")))
    for key, (title, rows) in _GEOMETRIES.items()
}


def to_xyz(title: str, atoms: Sequence[Atom]) -> str:
    rows = (f"{a.symbol:<2} {a.x:14.8f} {a.y:14.8f} {a.z:14.8f}" for a in atoms)
    comment = " ".join(title.split())
    return f"{len(atoms)}\n{comment}\n" + "\n".join(rows) + "\n"


def formula(atoms: Sequence[Atom]) -> str:
    """Hill order: C, then H, then the rest alphabetically (no carbon: all alphabetically)."""
    counts: dict[str, int] = {}
    for atom in atoms:
        counts[atom.symbol] = counts.get(atom.symbol, 0) + 1
    first = ["C", "H"] if "C" in counts else []
    order = first + sorted(s for s in counts if s not in first)
    return "".join(s + (str(counts[s]) if counts[s] > 1 else "") for s in order)


def electron_count(atoms: Sequence[Atom], charge: int) -> int:
    return sum(ELEMENTS.index(atom.symbol) + 1 for atom in atoms) - charge


def shown(value: object) -> str:
    """A value in a message: short and printable, whatever was sent."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text[:40] + ("…" if len(text) > 40 else ""))
