"""The results viewer's pure part: cube files, LAMMPS dumps, what is drawn, which path is read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy
import pytest

from centre.errors import FieldError
from voila_apps.kit.jobs import viewer_url
from voila_apps.pyscf_chem.cubes import orbital_files
from voila_apps.viewer import scene
from voila_apps.viewer.cube import BOHR_IN_ANGSTROM, parse_cube
from voila_apps.viewer.files import checked_path, kind_of, orbital_label, siblings
from voila_apps.viewer.page import page_data, script_json
from voila_apps.viewer.trajectory import frame_offsets, parse_frame

FIXTURES = Path(__file__).parent / "fixtures"


def cube_text(values: numpy.ndarray, step: float = 0.2, atoms=((8, 0.0, 0.0, 0.0),)) -> bytes:
    """A cube file as PySCF's cubegen writes one (bohr, six values a line)."""
    nx, ny, nz = values.shape
    lines = ["Orbital value in real space (1/Bohr^3)", "made by a test"]
    lines.append(f"{len(atoms):5d} {-1.0:12.6f} {-1.0:12.6f} {-1.0:12.6f}")
    for axis, n in enumerate((nx, ny, nz)):
        vector = [0.0, 0.0, 0.0]
        vector[axis] = step
        lines.append(f"{n:5d} " + " ".join(f"{v:12.6f}" for v in vector))
    for number, x, y, z in atoms:
        lines.append(f"{number:5d} {float(number):12.6f} {x:12.6f} {y:12.6f} {z:12.6f}")
    flat = values.reshape(-1)
    for start in range(0, flat.size, 6):
        lines.append(" ".join(f"{v:13.5e}" for v in flat[start : start + 6]))
    return ("\n".join(lines) + "\n").encode()


def lobes(n: int = 40) -> numpy.ndarray:
    """A p orbital's shape: a positive lobe at +z and a negative one at −z."""
    axis = numpy.linspace(-1, 1, n)
    x, y, z = numpy.meshgrid(axis, axis, axis, indexing="ij")
    return z * numpy.exp(-4 * (x**2 + y**2 + z**2))


def test_a_cube_file_reads_in_angstrom_with_z_fastest():
    values = numpy.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    cube = parse_cube(cube_text(values, step=0.5, atoms=((1, 0.0, 0.0, 1.0), (8, 1, 0, 0))))
    assert cube.values.shape == (2, 3, 4)
    assert cube.values[1, 2, 3] == 23 and cube.values[0, 1, 0] == 4
    assert cube.numbers.tolist() == [1, 8]
    assert cube.positions[0, 2] == pytest.approx(BOHR_IN_ANGSTROM)
    assert cube.steps[0, 0] == pytest.approx(0.5 * BOHR_IN_ANGSTROM)
    assert cube.origin[0] == pytest.approx(-BOHR_IN_ANGSTROM)
    assert "Orbital value" in cube.comment


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (b"just\ntwo lines\n", "fewer than 6 lines"),
        (b"a\nb\nthree x y z\n1 1 0 0\n1 0 1 0\n1 0 0 1\n8 8 0 0 0\n1\n", "should be numbers"),
        (b"a\nb\n1 0 0 0\n0 1 0 0\n1 0 1 0\n1 0 0 1\n8 8 0 0 0\n1\n", "whole number"),
        (b"a\nb\n1 0 0 0\n2 1 0 0\n2 0 1 0\n2 0 0 1\n8 8 0 0 0\n1 2 3\n", "needs 8 values"),
        (b"a\nb\n1 0 0 0\n1000 1 0 0\n1000 0 1 0\n1000 0 0 1\n8 8 0 0 0\n1\n", "at most 512³"),
        (b"a\nb\n99999 0 0 0\n1 1 0 0\n1 0 1 0\n1 0 0 1\n8 8 0 0 0\n1\n", "at most 10,000"),
    ],
)
def test_a_broken_cube_file_is_refused_with_what_is_wrong(text, says):
    with pytest.raises(FieldError) as refused:
        parse_cube(text)
    assert refused.value.field == "file"
    assert says in refused.value.reason


def test_an_orbital_has_two_surfaces_of_opposite_sign_where_its_lobes_are():
    cube = parse_cube(cube_text(lobes()))
    assert cube.signed
    drawn = scene.isosurfaces(cube, 0.1)
    positive, negative = drawn["surfaces"]
    assert positive["name"] == "positive" and negative["name"] == "negative"
    assert len(positive["x"]) > 50 and len(positive["i"]) > 50
    assert min(positive["z"]) > cube.origin[2] + cube.steps[2, 2] * 19  # above the middle
    assert max(negative["z"]) < cube.origin[2] + cube.steps[2, 2] * 21  # below it
    assert max(positive["i"] + positive["j"] + positive["k"]) < len(positive["x"])


def test_a_density_has_one_surface_and_a_level_outside_the_values_draws_nothing():
    density = lobes() ** 2
    cube = parse_cube(cube_text(density))
    assert not cube.signed
    assert [s["name"] for s in scene.isosurfaces(cube, 0.01)["surfaces"]] == ["positive"]
    empty = scene.isosurfaces(cube, 10.0)
    assert empty["surfaces"][0]["x"] == [] and empty["range"][1] < 10


@pytest.mark.parametrize("iso", [0.0, -0.1, float("nan"), float("inf")])
def test_an_iso_value_must_be_positive_and_finite(iso):
    with pytest.raises(FieldError) as refused:
        scene.isosurfaces(parse_cube(cube_text(lobes(8))), iso)
    assert refused.value.field == "iso"


def test_a_big_grid_is_averaged_down_before_marching_cubes():
    cube = parse_cube(cube_text(lobes(128), step=0.05))
    grid, origin, steps = scene.decimate(cube)
    assert max(grid.shape) <= scene.GRID_MOST and grid.shape == (64, 64, 64)
    assert steps[0, 0] == pytest.approx(2 * cube.steps[0, 0])
    # Block means: the averaged grid spans the same box, to within a block.
    assert origin[0] == pytest.approx(cube.origin[0] + cube.steps[0, 0] / 2)
    assert scene.isosurfaces(cube, 0.1)["grid"] == [64, 64, 64]


def test_water_gets_its_two_oh_bonds_and_no_hh_bond():
    bohr = 1 / BOHR_IN_ANGSTROM
    water = ((8, 0, 0, 0.1173 * bohr), (1, 0, 0.7572 * bohr, -0.4692 * bohr))
    water += ((1, 0, -0.7572 * bohr, -0.4692 * bohr),)
    drawn = scene.molecule(parse_cube(cube_text(lobes(6), atoms=water)))
    assert drawn["symbols"] == ["O", "H", "H"]
    assert drawn["colours"][0] == "#ff0d0d"
    assert drawn["bonds"].count(None) == 2  # O–H twice; H–H (1.51 Å) is no bond


def test_a_slice_and_its_profile_follow_the_grid():
    values = numpy.zeros((4, 5, 6))
    values[:, 2, :] = 7.0
    cube = parse_cube(cube_text(values))
    cut = scene.grid_slice(cube, "y", 2)
    assert (cut["u"], cut["v"], cut["points"]) == ("x", "z", 5)
    assert numpy.array(cut["values"]).shape == (6, 4) and numpy.all(numpy.array(cut["values"]) == 7)
    assert cut["profile"]["along"] == "x" and cut["profile"]["values"] == [7.0] * 4
    assert numpy.all(numpy.array(scene.grid_slice(cube, "y", 0)["values"]) == 0)


@pytest.mark.parametrize(("axis", "index", "field"), [("w", 0, "axis"), ("z", 6, "index")])
def test_a_slice_outside_the_grid_is_refused(axis, index, field):
    cube = parse_cube(cube_text(numpy.zeros((4, 5, 6))))
    with pytest.raises(FieldError) as refused:
        scene.grid_slice(cube, axis, index)
    assert refused.value.field == field


def dump(frames: int, atoms: int, columns="id type x y z vx vy vz", scaled=False) -> bytes:
    out = []
    for f in range(frames):
        out += [
            "ITEM: TIMESTEP", str(f * 100), "ITEM: NUMBER OF ATOMS", str(atoms),
            "ITEM: BOX BOUNDS pp pp pp", "0 10", "0 10", "0 20", f"ITEM: ATOMS {columns}",
        ]  # fmt: skip
        for a in range(1, atoms + 1):
            where = (a / atoms, 0.5, 0.25) if scaled else (a % 10, f, 2.0 * (a % 10))
            out.append(f"{a} {1 + a % 2} {where[0]} {where[1]} {where[2]} 3 4 {f}")
    return ("\n".join(out) + "\n").encode()


def test_a_dump_frame_gives_positions_types_and_speeds():
    data = dump(3, 10)
    offsets = frame_offsets(data)
    assert len(offsets) == 3
    frame = parse_frame(data[offsets[1] : offsets[2]])
    assert frame.step == 100 and frame.positions.shape == (10, 3)
    assert frame.types.tolist() == [2, 1] * 5
    assert frame.speeds[0] == pytest.approx(numpy.sqrt(9 + 16 + 1))
    assert frame.box_high.tolist() == [10, 10, 20]


def test_scaled_positions_are_put_in_the_box():
    data = dump(1, 4, columns="id type xs ys zs vx vy vz", scaled=True)
    frame = parse_frame(data)
    assert frame.positions[0].tolist() == pytest.approx([2.5, 5.0, 5.0])


def test_a_frame_still_being_written_is_not_offered():
    data = dump(3, 10)
    assert len(frame_offsets(data[:-40])) == 2
    assert len(frame_offsets(data[: frame_offsets(data)[2] + 30])) == 2
    assert len(frame_offsets(data)) == 3


def test_a_dump_without_positions_or_velocities_says_so():
    no_positions = dump(1, 3, columns="id type q a b vx vy vz")
    with pytest.raises(FieldError, match="no atom positions"):
        parse_frame(no_positions)
    no_velocities = parse_frame(dump(1, 3, columns="id type x y z a b c"))
    assert no_velocities.speeds is None
    with pytest.raises(FieldError) as refused:
        scene.frame_scene(no_velocities, "speed")
    assert refused.value.field == "colour" and "colour by type" in refused.value.reason


def test_a_big_frame_sends_the_same_every_nth_atom_in_every_frame(monkeypatch):
    monkeypatch.setattr(scene, "ATOMS_MOST", 25)
    data = dump(2, 100)
    offsets = frame_offsets(data)
    first = scene.frame_scene(parse_frame(data[offsets[0] : offsets[1]]), "speed")
    second = scene.frame_scene(parse_frame(data[offsets[1] :]), "type")
    assert (first["shown"], first["every"], first["atoms"]) == (25, 4, 100)
    assert first["x"] == second["x"]  # same atoms (x depends on the id only)
    assert first["values"][0] == pytest.approx(5.0) and set(second["values"]) == {1}
    assert sum(first["profile"]["density"]) > 0


def test_only_known_files_below_the_root_are_read(tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    (home / "runs").mkdir(parents=True)
    elsewhere.mkdir()
    (home / "runs" / "homo.cube").write_text("x")
    (elsewhere / "secret.cube").write_text("x")
    (home / "notes.txt").write_text("x")
    os.symlink(elsewhere / "secret.cube", home / "link.cube")
    assert checked_path(str(home), "runs/homo.cube") == str((home / "runs" / "homo.cube").resolve())
    for attack, says in [
        ("../elsewhere/secret.cube", "leads out"),
        ("runs/../../elsewhere/secret.cube", "leads out"),
        ("link.cube", "leads out"),
        (str(elsewhere / "secret.cube"), "relative"),
        ("notes.txt", "is neither"),
        ("runs/none.cube", "does not exist"),
        ("runs\x00.cube", "relative"),
        ("", "no path"),
        (["list"], "no path"),
    ]:
        with pytest.raises(FieldError) as refused:
            checked_path(str(home), attack)
        assert refused.value.field == "path" and says in refused.value.reason, attack


def test_the_field_picker_lists_orbitals_lowest_first_then_the_density():
    names = ["lumo+1.cube", "density.cube", "homo.cube", "homo-2.cube", "lumo.cube", "x.txt"]
    assert [f["label"] for f in siblings(names)] == [
        "HOMO−2", "HOMO", "LUMO", "LUMO+1", "Electron density",
    ]  # fmt: skip
    assert orbital_label("my-field.cub") == "my-field"
    assert kind_of("run/traj.LAMMPSTRJ") == "trajectory" and kind_of("a.xyz") is None


def test_the_job_writes_the_frontier_orbitals_that_exist():
    assert orbital_files([2, 2, 2, 2, 2, 0, 0]) == {
        "homo-2.cube": 2, "homo-1.cube": 3, "homo.cube": 4, "lumo.cube": 5, "lumo+1.cube": 6,
    }  # fmt: skip
    assert orbital_files([2, 0]) == {"homo.cube": 0, "lumo.cube": 1}
    assert orbital_files([0, 0]) == {}


def test_the_viewer_link_stays_in_the_home_and_quotes_the_path():
    url = viewer_url("/user/ann/app-pyscf-chem/", "/home/ann", "/home/ann/a b/homo.cube")
    assert url == "/user/ann/app-pyscf-chem/viewer/?path=a%20b/homo.cube"
    with pytest.raises(FieldError):
        viewer_url("/user/ann/", "/home/ann", "/home/bob/homo.cube")


def test_the_dump_lammps_wrote_for_the_app_reads_as_frames():
    data = (FIXTURES / "lammps_md" / "traj-head.lammpstrj").read_bytes()
    offsets = frame_offsets(data)
    assert len(offsets) == 2
    first, second = (
        parse_frame(data[a:b]) for a, b in zip(offsets, [*offsets[1:], None], strict=True)
    )
    assert (first.step, second.step) == (0, 10)
    assert first.ids.tolist() == list(range(1, 257)) and set(first.types.tolist()) == {1}
    assert first.positions[1] == pytest.approx([0.8398, 0.8398, 0.0])  # the fcc lattice
    assert not numpy.allclose(first.positions, second.positions)  # it moved
    # Start temperature 1.5: the mean square speed is about 3 k_B T / m.
    assert numpy.mean(first.speeds**2) == pytest.approx(3 * 1.5, rel=0.05)


def test_a_path_cannot_close_the_pages_script_element():
    attack = "runs/</script><script>alert(document.cookie)</script>.cube"
    data = page_data(attack, "/user/ann/", "tok")
    written = script_json(data)
    assert "</script>" not in written and "<script>" not in written
    assert json.loads(written)["path"] == attack  # the page still reads the same path
    assert (data["name"], data["kind"], data["api"]) == (
        "script>.cube", "cube", "/user/ann/viewer/api/",
    )  # fmt: skip
