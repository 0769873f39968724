"""Which files the viewer opens, and which path it will read: the pure part.

The viewer reads only below its server's root (the person's home) and only the kinds of file
it knows, so a link cannot make it read something else: a path is refused when it leaves the
root, by ``..`` or by a symlink, or when its name is not a cube file or a LAMMPS dump.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath

from centre.errors import FieldError

KINDS = {".cube": "cube", ".cub": "cube", ".lammpstrj": "trajectory", ".dump": "trajectory"}
MAX_PATH = 1024
_ORBITAL_NAME = re.compile(r"^(homo|lumo)([+-]\d+)?$")


def kind_of(name: str) -> str | None:
    """``cube``, ``trajectory``, or None for a file the viewer does not open."""
    return KINDS.get(PurePosixPath(name).suffix.lower())


def checked_path(root: str, relative: object) -> str:
    """The real path of ``relative`` below ``root``, for a kind the viewer opens."""
    allowed = "a cube file (.cube) or a LAMMPS dump (.lammpstrj, .dump) below your home"
    if not isinstance(relative, str) or not relative.strip() or len(relative) > MAX_PATH:
        raise FieldError("path", f"{allowed}; got no path")
    if "\x00" in relative or relative.startswith("/"):
        raise FieldError("path", f"{allowed}, as a path relative to it; got {relative[:80]!r}")
    if kind_of(relative) is None:
        raise FieldError("path", f"{allowed}; {relative[:80]!r} is neither")
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, relative))
    if os.path.commonpath([real_root, real]) != real_root:
        raise FieldError("path", f"{allowed}; {relative[:80]!r} leads out of it")
    if not os.path.isfile(real):
        raise FieldError("path", f"{relative[:80]!r} does not exist (or is not a file)")
    return real


def orbital_label(name: str) -> str:
    """``homo-1.cube`` → ``HOMO−1``; ``density.cube`` → ``Electron density``; else the name."""
    stem = PurePosixPath(name).stem
    found = _ORBITAL_NAME.match(stem.lower())
    if found:
        return found.group(1).upper() + (found.group(2) or "").replace("-", "−")
    if stem.lower() == "density":
        return "Electron density"
    return stem


def orbital_order(name: str) -> tuple[int, int, str]:
    """Orbitals from the lowest (HOMO−n) to the highest (LUMO+n), then other fields by name."""
    stem = PurePosixPath(name).stem.lower()
    found = _ORBITAL_NAME.match(stem)
    if not found:
        return (1, 0, stem)
    shift = int(found.group(2) or 0)
    return (0, shift if found.group(1) == "homo" else 1000 + shift, stem)


def siblings(names: list[str]) -> list[dict]:
    """The cube files next to the one opened, for the field picker, lowest orbital first."""
    cubes = sorted((n for n in names if kind_of(n) == "cube"), key=orbital_order)
    return [{"name": n, "label": orbital_label(n)} for n in cubes]
