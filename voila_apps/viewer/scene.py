"""What the browser draws, made on the server: small enough for any browser to draw at once.

A cube's grid is averaged down to at most ``GRID_MOST`` points a side before marching cubes,
so an isosurface is a few ten thousand triangles whatever the file.  A trajectory frame sends
at most ``ATOMS_MOST`` atoms, the same ids in every frame, so playing it shows the same atoms
moving.  Every function returns plain lists, rounded, ready for JSON.
"""

from __future__ import annotations

import math

import numpy
from skimage.measure import marching_cubes

from centre.errors import FieldError
from voila_apps.viewer.cube import Cube
from voila_apps.viewer.trajectory import Frame, shown_every

GRID_MOST = 64
SLICE_MOST = 160
ATOMS_MOST = 30_000
PROFILE_BINS = 60
AXES = ("x", "y", "z")
# Element symbols and the colours chemists expect (CPK/Jmol), up to krypton; others grey.
SYMBOLS = (
    "X", "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge",
    "As", "Se", "Br", "Kr",
)  # fmt: skip
COLOURS = {
    1: "#f0f0f0", 6: "#505050", 7: "#3050f8", 8: "#ff0d0d", 9: "#90e050", 15: "#ff8000",
    16: "#e6c62a", 17: "#1ff01f", 26: "#e06633", 29: "#c88033", 30: "#7d80b0",
}  # fmt: skip
COVALENT_RADIUS = {1: 0.31, 5: 0.84, 6: 0.76, 7: 0.71, 8: 0.66, 9: 0.57, 15: 1.07, 16: 1.05}


def decimate(
    cube: Cube, most: int = GRID_MOST
) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """The grid averaged over blocks so that no side exceeds ``most``, with its origin and
    steps.  Averaging, not skipping points, keeps a thin lobe from vanishing."""
    factor = math.ceil(max(cube.values.shape) / most)
    if factor <= 1:
        return cube.values, cube.origin, cube.steps
    padded = [math.ceil(n / factor) * factor for n in cube.values.shape]
    grid = numpy.pad(
        cube.values, [(0, p - n) for p, n in zip(padded, cube.values.shape, strict=True)], "edge"
    )
    nx, ny, nz = (p // factor for p in padded)
    blocks = grid.reshape(nx, factor, ny, factor, nz, factor).mean(axis=(1, 3, 5))
    origin = cube.origin + (factor - 1) / 2 * cube.steps.sum(axis=0)
    return blocks, origin, cube.steps * factor


def default_iso(cube: Cube) -> float:
    """0.05 a.u., where most viewers start for orbitals and densities alike; a quarter of the
    largest value for a field too weak to reach it."""
    peak = cube.peak
    return min(0.05, float(f"{peak / 4:.2g}")) if peak > 0 else 0.05


def isosurfaces(cube: Cube, iso: float) -> dict:
    """The +iso surface, and for an orbital the −iso one, as mesh vertices and triangles."""
    if not math.isfinite(iso) or iso <= 0:
        raise FieldError("iso", f"a positive number; got {iso}")
    grid, origin, steps = decimate(cube)
    levels = [("positive", iso)] + ([("negative", -iso)] if cube.signed else [])
    surfaces = []
    for name, level in levels:
        if not grid.min() < level < grid.max():
            surfaces.append({"name": name, "level": level, "x": [], "y": [], "z": [], "i": []})
            continue
        vertices, faces, _, _ = marching_cubes(grid, level=level, allow_degenerate=False)
        points = origin + vertices @ steps
        surfaces.append(
            {
                "name": name,
                "level": level,
                **_xyz(points),
                "i": faces[:, 0].tolist(),
                "j": faces[:, 1].tolist(),
                "k": faces[:, 2].tolist(),
            }
        )
    return {
        "iso": iso,
        "range": [cube.low, cube.high],
        "grid": list(grid.shape),
        "surfaces": surfaces,
    }


def molecule(cube: Cube) -> dict:
    """The atoms, coloured by element, and bonds where two atoms are closer than their
    covalent radii allow (with 20 % slack)."""
    numbers, points = cube.numbers, cube.positions
    bonds: list[list[float] | None] = []
    if 0 < len(numbers) <= 500:
        radii = numpy.array([COVALENT_RADIUS.get(int(n), 0.8) for n in numbers])
        distances = numpy.linalg.norm(points[:, None] - points[None], axis=2)
        near = numpy.argwhere(numpy.triu(distances < 1.2 * (radii[:, None] + radii[None]), 1))
        for a, b in near:
            bonds.extend([_round(points[a]), _round(points[b]), None])
    return {
        "symbols": [SYMBOLS[n] if 0 < n < len(SYMBOLS) else str(n) for n in numbers.tolist()],
        "colours": [COLOURS.get(n, "#b0b0b0") for n in numbers.tolist()],
        **_xyz(points),
        "bonds": bonds,
    }


def grid_slice(cube: Cube, axis: str, index: int) -> dict:
    """The plane ``index`` across ``axis``, as a heatmap, and a line profile through its middle
    along the plane's first axis."""
    if axis not in AXES:
        raise FieldError("axis", f"one of x, y or z; got {axis!r}")
    a = AXES.index(axis)
    points = cube.values.shape[a]
    if not 0 <= index < points:
        raise FieldError("index", f"a plane from 0 to {points - 1}; got {index}")
    plane = numpy.take(cube.values, index, axis=a)
    u, v = [i for i in range(3) if i != a]
    every = max(1, math.ceil(max(plane.shape) / SLICE_MOST))
    shown = plane[::every, ::every]
    along_u = _round(numpy.arange(0, plane.shape[0], every) * _length(cube.steps[u]))
    along_v = _round(numpy.arange(0, plane.shape[1], every) * _length(cube.steps[v]))
    middle = plane.shape[1] // 2
    return {
        "axis": axis,
        "index": index,
        "points": points,
        "position": round(float(index * _length(cube.steps[a])), 4),
        "u": AXES[u],
        "v": AXES[v],
        "u_positions": along_u,
        "v_positions": along_v,
        "values": _round_grid(shown.T),
        "profile": {
            "along": AXES[u],
            "at": round(float(middle * _length(cube.steps[v])), 4),
            "positions": [
                round(float(i * _length(cube.steps[u])), 4) for i in range(plane.shape[0])
            ],
            "values": _round_grid(plane[:, middle]),
        },
    }


def frame_scene(frame: Frame, colour: str) -> dict:
    """One frame's atoms (every n-th id when there are too many) coloured by type or speed,
    and the number density along z, the frame's line profile."""
    if colour not in ("type", "speed"):
        raise FieldError("colour", f"'type' or 'speed'; got {colour!r}")
    if colour == "speed" and frame.speeds is None:
        raise FieldError("colour", "this dump has no velocities (vx vy vz); colour by type")
    every = shown_every(len(frame.ids), ATOMS_MOST)
    shown = frame.ids % every == 0 if every > 1 else numpy.ones(len(frame.ids), bool)
    values = frame.speeds if colour == "speed" else frame.types
    length = frame.box_high - frame.box_low
    counts, edges = numpy.histogram(
        frame.positions[:, 2], bins=PROFILE_BINS, range=(frame.box_low[2], frame.box_high[2])
    )
    slab = length[0] * length[1] * (edges[1] - edges[0])
    return {
        "step": frame.step,
        "atoms": len(frame.ids),
        "shown": int(shown.sum()),
        "every": every,
        **_xyz(frame.positions[shown]),
        "colour": colour,
        "values": _round_grid(values[shown]),
        "box": [_round(frame.box_low), _round(frame.box_high)],
        "profile": {
            "along": "z",
            "positions": _round_grid((edges[:-1] + edges[1:]) / 2),
            "density": _round_grid(counts / slab) if slab > 0 else [],
        },
    }


def _xyz(points: numpy.ndarray) -> dict:
    rounded = numpy.round(points, 3)
    return {"x": rounded[:, 0].tolist(), "y": rounded[:, 1].tolist(), "z": rounded[:, 2].tolist()}


def _round(point: numpy.ndarray) -> list[float]:
    return numpy.round(point, 3).tolist()


def _round_grid(values: numpy.ndarray) -> list:
    """Four significant digits: more than a colour scale or a line can show."""
    values = numpy.asarray(values, dtype=float)
    scale = float(numpy.abs(values).max()) if values.size else 0.0
    digits = 4 - math.ceil(math.log10(scale)) if scale > 0 else 4
    return numpy.round(values, max(0, digits)).tolist()


def _length(vector: numpy.ndarray) -> float:
    return float(numpy.linalg.norm(vector))
