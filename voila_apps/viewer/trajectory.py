"""LAMMPS text dumps (``dump custom``/``dump atom``), the pure part: where each frame starts,
and one frame's atoms.

A dump is a series of frames, each ``ITEM: TIMESTEP``, the step, ``ITEM: NUMBER OF ATOMS``,
the count, ``ITEM: BOX BOUNDS`` and three lines of bounds, then ``ITEM: ATOMS`` with the
column names and one line per atom.  A job may still be writing the last frame: a frame
counts only when the next one has begun or the file ends with all of its lines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy

from centre.errors import FieldError

FRAME_MARK = b"ITEM: TIMESTEP"
MAX_FRAME_ATOMS = 5_000_000
POSITION_COLUMNS = (("x", "y", "z"), ("xu", "yu", "zu"), ("xs", "ys", "zs"), ("xsu", "ysu", "zsu"))


@dataclass(frozen=True)
class Frame:
    step: int
    box_low: numpy.ndarray  # (3,)
    box_high: numpy.ndarray  # (3,)
    ids: numpy.ndarray  # (n,)
    types: numpy.ndarray  # (n,)
    positions: numpy.ndarray  # (n, 3), in the dump's length unit
    speeds: numpy.ndarray | None  # (n,), where the dump has vx vy vz


def frame_offsets(data: bytes) -> list[int]:
    """Byte offsets of the frames that are complete: every frame but a last one still being
    written."""
    offsets, start = [], data.find(FRAME_MARK)
    while start != -1:
        offsets.append(start)
        start = data.find(FRAME_MARK, start + len(FRAME_MARK))
    if offsets and not _complete(data[offsets[-1] :]):
        offsets.pop()
    return offsets


def _complete(text: bytes) -> bool:
    try:
        head, count = _header(text)
    except FieldError:
        return False
    return text.count(b"\n") >= head + count


def _header(text: bytes) -> tuple[int, int]:
    """The number of header lines of a frame (up to and including ITEM: ATOMS) and its atoms."""
    lines = text.split(b"\n", 9)
    if len(lines) < 10 or not lines[8].startswith(b"ITEM: ATOMS"):
        raise FieldError("file", "this is not a LAMMPS dump: no 'ITEM: ATOMS' line in its frame")
    try:
        count = int(lines[3])
    except ValueError:
        raise FieldError("file", "the frame's atom count is not a number") from None
    if not 0 < count <= MAX_FRAME_ATOMS:
        raise FieldError("file", f"a frame of {count:,} atoms; at most {MAX_FRAME_ATOMS:,}")
    return 9, count


def parse_frame(text: bytes) -> Frame:
    """One frame, from ``ITEM: TIMESTEP`` to the end of its atom lines."""
    head, count = _header(text)
    lines = text.split(b"\n", head)
    try:
        step = int(lines[1])
        bounds = numpy.array([[float(v) for v in line.split()[:2]] for line in lines[5:8]])
    except ValueError:
        raise FieldError("file", "the frame's step or box bounds are not numbers") from None
    columns = lines[8].decode("ascii", "replace").split()[2:]
    table = numpy.array(lines[head].split(maxsplit=count * len(columns))[: count * len(columns)])
    if table.size < count * len(columns):
        raise FieldError("file", f"the frame at step {step:,} has fewer than {count:,} atom lines")
    table = table.astype(numpy.float64).reshape(count, len(columns))
    if not numpy.isfinite(table).all():
        raise FieldError("file", f"the frame at step {step:,} has values that are not numbers")
    low, high = bounds[:, 0], bounds[:, 1]
    position = next((p for p in POSITION_COLUMNS if all(c in columns for c in p)), None)
    if position is None:
        raise FieldError("file", f"the dump has no atom positions: its columns are {columns}")
    positions = table[:, [columns.index(c) for c in position]]
    if position[0].startswith("xs"):
        positions = low + positions * (high - low)
    speeds = None
    if all(c in columns for c in ("vx", "vy", "vz")):
        velocity = table[:, [columns.index(c) for c in ("vx", "vy", "vz")]]
        speeds = numpy.sqrt((velocity**2).sum(axis=1))
    return Frame(
        step=step,
        box_low=low,
        box_high=high,
        ids=_column(table, columns, "id", numpy.arange(1, count + 1)),
        types=_column(table, columns, "type", numpy.ones(count)),
        positions=positions,
        speeds=speeds,
    )


def _column(table, columns: list[str], name: str, default: numpy.ndarray) -> numpy.ndarray:
    return (table[:, columns.index(name)] if name in columns else default).astype(int)


def shown_every(atoms: int, most: int) -> int:
    """Every how many atom ids to draw, so that no more than ``most`` are sent."""
    return max(1, math.ceil(atoms / most))
