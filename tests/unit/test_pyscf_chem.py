"""Quantum chemistry app's pure part: molecules and XYZ files, checking a request, the job's
script, and reading what a real PySCF run wrote (fixtures/pyscf_chem, captured from run.py)."""

import itertools
import json
import math
import re
import subprocess
import sys

import pytest

from voila_apps.kit.jobs import InputError, batch_script, check_resources
from voila_apps.pyscf_chem.basis_sizes import BASIS_FUNCTIONS, ELEMENTS
from voila_apps.pyscf_chem.core import (
    MAX_BASIS_FUNCTIONS,
    METHODS,
    Params,
    check_chemistry,
    check_inputs,
    estimate_seconds,
    frontier,
    job_body,
    json_text,
    orbital_window,
    params_from_json,
    parse_progress,
    parse_result,
    progress_line,
    summary_lines,
)
from voila_apps.pyscf_chem.molecules import (
    MAX_ATOMS,
    MAX_XYZ_BYTES,
    MOLECULES,
    Atom,
    parse_xyz,
    to_xyz,
    xyz_from_upload,
)

from .conftest import FIXTURES, REPO

pytestmark = pytest.mark.unit

CAPTURES = FIXTURES / "pyscf_chem"
# `pyscf.scf.RHF(gto.M(atom=<the water below>, basis="sto-3g")).kernel()`, PySCF 2.14.0:
# the number run.py must reproduce (it did, to 1e-14 Ha).
DIRECT_RHF_WATER_STO3G = -74.963023138461


def form(**changes):
    raw = {"molecule": "water", "method": "HF", "basis": "sto-3g", "charge": 0, "spin": 0}
    raw.update(changes)
    return raw


def upload(text, **changes):
    return form(molecule="upload", xyz=text, **changes)


def resources(**changes):
    raw = {"profile": "cpu", "cluster": "alpha", "cores": 1, "memory_gb": 2}
    raw["walltime_hours"] = 0.5
    raw.update(changes)
    return raw


def refused(field, call, *args):
    with pytest.raises(InputError) as caught:
        call(*args)
    assert caught.value.field == field, str(caught.value)
    return caught.value.reason


# --- molecules -------------------------------------------------------------------------------


def test_water_is_the_standard_geometry():
    o, h1, h2 = MOLECULES["water"].atoms
    assert o == Atom("O", 0, 0, 0.1173) and h1 == Atom("H", 0, 0.7572, -0.4692)
    assert h2 == Atom("H", 0, -0.7572, -0.4692)
    # Experiment: O–H 0.9572 Å, H–O–H 104.52°; the rounded coordinates give 0.9578 Å.
    bond = math.dist(o[1:], h1[1:])
    assert bond == pytest.approx(0.9572, abs=1e-3)
    half_angle = math.degrees(math.asin(h1.y / bond))
    assert 2 * half_angle == pytest.approx(104.52, abs=0.1)


@pytest.mark.parametrize(
    ("key", "electrons", "nbf_sto3g"),
    [
        ("water", 10, 7),
        ("methane", 10, 9),
        ("ammonia", 10, 8),
        ("carbon-dioxide", 22, 15),
        ("nitrogen", 14, 10),
        ("hydrogen-fluoride", 10, 6),
        ("benzene", 42, 36),
        ("ethanol", 26, 21),
    ],
)
def test_every_built_in_molecule_is_a_valid_closed_shell_request(key, electrons, nbf_sto3g):
    params = check_chemistry(form(molecule=key))
    assert params.electrons == electrons and params.basis_functions == nbf_sto3g
    assert params.title == MOLECULES[key].title and not params.open_shell


def test_the_basis_table_has_one_count_per_element():
    assert len(ELEMENTS) == 36 and ELEMENTS[-1] == "Kr"
    assert all(len(row) == len(ELEMENTS) for row in BASIS_FUNCTIONS.values())
    # Counted from PySCF: benzene with cc-pVTZ has 6 × 30 + 6 × 14 functions.
    assert check_chemistry(form(molecule="benzene", basis="cc-pvtz")).basis_functions == 264


def test_an_xyz_file_reads_like_the_built_in_molecule():
    text = (CAPTURES / "water.xyz").read_text()
    assert parse_xyz(text) == ("Water", MOLECULES["water"].atoms)
    params = check_chemistry(upload(text))
    assert params.atoms == MOLECULES["water"].atoms and params.title == "Water"
    assert to_xyz(params.title, params.atoms) == text


def test_xyz_files_from_other_programs_are_read():
    text = "3\r\n\r\no 0 0 0.1173\r\n1 0 0.7572 -0.4692\r\nh 0 -.7572 -4.692E-1\r\n\r\n\r\n"
    comment, atoms = parse_xyz(text)
    assert comment == "" and [a.symbol for a in atoms] == ["O", "H", "H"]
    assert atoms[2].z == pytest.approx(-0.4692)
    # No comment: the title is the formula.
    assert check_chemistry(upload(text)).title == "Uploaded molecule H2O"
    assert xyz_from_upload(("\ufeff" + text).encode()) == text  # a byte-order mark is dropped


WATER_LINES = ["O 0 0 0.1173", "H 0 0.7572 -0.4692", "H 0 -0.7572 -0.4692"]


def xyz(*atom_lines, count=None, comment="test"):
    count = len(atom_lines) if count is None else count
    return f"{count}\n{comment}\n" + "\n".join(atom_lines) + "\n"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("   \n\n", "empty"),
        ("water\nO 0 0 0\n", "line 1 must be the number of atoms"),
        ("3; rm -rf ~\nx\n" + "\n".join(WATER_LINES), "line 1 must be the number"),
        ("-1\nx\n", "line 1 must be the number"),
        ("³\nx\nO 0 0 0\n", "line 1 must be the number"),
        (xyz(count=0), "1 to 60 atoms"),
        (xyz(*WATER_LINES, count=61), "61 atoms; this app takes 1 to 60"),
        (xyz(*WATER_LINES, count=2), "line 1 says 2 atoms but the file has 3 atom lines"),
        (xyz(*WATER_LINES) + xyz(*WATER_LINES), "line 1 says 3 atoms but the file has 8"),
        (xyz("O 0 0 0.1173", "", "H 0 0.7572 -0.4692", count=2), "line 4 is empty"),
        (xyz("Xx 0 0 0"), "line 3: unknown element 'Xx'"),
        (xyz("Au 0 0 0"), "line 3: unknown element 'Au'; this app offers H to Kr"),
        (xyz("99 0 0 0"), "line 3: unknown element '99'"),
        (xyz("H1 0 0 0"), "line 3: unknown element 'H1'"),
        (xyz("O 0 0"), "line 3: expected 'Symbol x y z', found 3 fields"),
        (xyz("O 0 0 0 0.5"), "line 3: expected 'Symbol x y z', found 5 fields"),
        (xyz("H 0 0 0", "H 0 0 zero"), "line 4: z 'zero' is not a number"),
        (xyz("O nan 0 0"), "line 3: x 'nan' is not a number"),
        (xyz("O inf 0 0"), "line 3: x 'inf' is not a number"),
        (xyz("O 1_000 0 0"), "line 3: x '1_000' is not a number"),
        (xyz("O 0 ١ 0"), "line 3: y '١' is not a number"),
        (xyz("O 1e999 0 0"), "within ±1000 Å"),
        (xyz("O 1001 0 0"), "within ±1000 Å"),
        (xyz("O 0 0 0", "H 0 0 0.1"), "atoms 1 (O) and 2 (H) are 0.100 Å apart"),
        (xyz("O 0 0 0", "O 0 0 0"), "at least 0.4 Å apart"),
        (xyz("O 0 0 0", "H 0 0 0.0000001"), "0.000 Å apart"),
    ],
)
def test_a_bad_xyz_file_is_refused_naming_the_line(text, words):
    reason = refused("xyz", check_chemistry, upload(text))
    assert words in reason


def test_an_upload_must_be_small_text():
    assert "at most 64 KB" in refused("xyz", xyz_from_upload, b"1" * (MAX_XYZ_BYTES + 1))
    assert "not text" in refused("xyz", xyz_from_upload, b"\xff\xfe\x00\x81binary")
    assert "upload an .xyz file" in refused("xyz", check_chemistry, form(molecule="upload"))
    assert "upload" in refused("xyz", check_chemistry, upload(b"3\n\nO 0 0 0"))


def test_sixty_atoms_are_taken_and_sixty_one_are_not():
    lines = [f"H {2 * (i % 10)} {2 * (i // 10)} 0" for i in range(MAX_ATOMS + 1)]
    params = check_chemistry(upload(xyz(*lines[:MAX_ATOMS]), spin=0))
    assert len(params.atoms) == MAX_ATOMS
    refused("xyz", check_chemistry, upload(xyz(*lines)))


# --- the rest of the form ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"molecule": "caffeine"}, "molecule", "choose one of water, methane"),
        ({"molecule": None}, "molecule", "not offered"),
        ({"molecule": ["water"]}, "molecule", "not offered"),
        ({"method": "MP2"}, "method", "choose one of HF, LDA, PBE"),
        ({"method": "hf"}, "method", "'hf' is not offered"),
        ({"method": 1}, "method", "not offered"),
        ({"method": "B3LYP\nrm -rf ~"}, "method", "not offered"),
        ({"basis": "6-311++g(3df,3pd)"}, "basis", "choose one of sto-3g, 3-21g"),
        ({"basis": None}, "basis", "not offered"),
        ({"charge": True}, "charge", "whole number from -10 to 10"),
        ({"charge": 1.0}, "charge", "whole number"),
        ({"charge": "1"}, "charge", "whole number"),
        ({"charge": float("nan")}, "charge", "whole number"),
        ({"charge": 11}, "charge", "whole number"),
        ({"charge": 10}, "charge", "leaves 0 electrons"),
        ({"spin": -1}, "spin", "whole number from 0 to 10"),
        ({"spin": False}, "spin", "whole number"),
        ({"spin": 11}, "spin", "whole number"),
        ({"spin": 1}, "spin", "10 electrons, so the number of unpaired electrons 2S must be even"),
        ({"charge": 1}, "spin", "9 electrons, so the number of unpaired electrons 2S must be odd"),
        ({"charge": 9, "spin": 3}, "spin", "2S = 3 needs 3 unpaired electrons; the molecule has 1"),
    ],
)
def test_a_bad_choice_is_refused_naming_the_field(changes, field, words):
    assert words in refused(field, check_chemistry, form(**changes))


def test_open_shells_are_accepted_with_the_right_parity():
    cation = check_chemistry(form(molecule="ammonia", method="PBE", charge=1, spin=1))
    assert cation.electrons == 9 and cation.open_shell and cation.xc == "pbe"
    triplet = check_chemistry(form(spin=2))
    assert triplet.electrons == 10 and triplet.open_shell


def test_a_basis_without_functions_for_an_element_says_which_bases_fit():
    potassium_hydride = xyz("K 0 0 0", "H 0 0 2.24")
    reason = refused("basis", check_chemistry, upload(potassium_hydride, basis="cc-pvdz"))
    assert reason.startswith("cc-pvdz has no functions for K")
    assert "sto-3g" in reason and "def2-svp" in reason and "cc-pvtz" not in reason
    assert check_chemistry(upload(potassium_hydride, basis="def2-svp")).basis_functions == 29


def test_every_method_is_a_pyscf_functional_or_hartree_fock():
    assert METHODS["HF"] is None
    assert all(isinstance(xc, str) and "\n" not in xc for m, xc in METHODS.items() if m != "HF")


# --- size against the hours asked for ----------------------------------------------------------

# Run times measured with run.py on one core (PySCF 2.14, a shared 2-core VM, 7–10 cycles).
MEASURED = [
    ("benzene", "HF", "cc-pvtz", 263.4),
    ("benzene", "B3LYP", "cc-pvtz", 198.1),
    ("benzene", "B3LYP", "cc-pvdz", 10.7),
    ("benzene", "PBE", "def2-svp", 9.1),
    ("ethanol", "HF", "def2-tzvp", 3.1),
    ("water", "B3LYP", "cc-pvtz", 1.2),
]


def twenty_waters():
    lines = []
    for i in range(20):
        dx, dy, dz = 3.0 * (i % 3), 3.0 * ((i // 3) % 3), 3.0 * (i // 9)
        lines += [f"{a.symbol} {a.x + dx} {a.y + dy} {a.z + dz}" for a in MOLECULES["water"].atoms]
    return xyz(*lines)


@pytest.mark.parametrize(("molecule", "method", "basis", "seconds"), MEASURED)
def test_the_estimate_is_at_least_twice_a_measured_run(molecule, method, basis, seconds):
    params = check_chemistry(form(molecule=molecule, method=method, basis=basis))
    assert estimate_seconds(params, cores=1) >= 2 * seconds


def test_the_estimate_covers_sixty_atoms_on_a_dft_grid():
    measured = {("B3LYP", "sto-3g"): 93.6, ("HF", "6-31g"): 147.9}
    for (method, basis), seconds in measured.items():
        params = check_chemistry(upload(twenty_waters(), method=method, basis=basis))
        assert len(params.atoms) == 60
        assert estimate_seconds(params, cores=1) >= 2 * seconds


def test_open_shells_and_fewer_cores_take_longer():
    closed = check_chemistry(form(molecule="benzene", method="B3LYP", basis="cc-pvdz"))
    cation = check_chemistry(
        form(molecule="benzene", method="B3LYP", basis="cc-pvdz", charge=1, spin=1)
    )
    assert estimate_seconds(cation, 1) > estimate_seconds(closed, 1)
    assert estimate_seconds(closed, 1) > estimate_seconds(closed, 4) > estimate_seconds(closed, 8)


def test_a_request_that_fits_its_hours_is_accepted(site):
    request = check_resources(resources(), site)
    params = check_inputs(form(), request)
    assert params == check_chemistry(form())


def test_too_little_time_is_refused_with_the_estimate(site):
    request = check_resources(resources(walltime_hours=0.1), site)
    reason = refused(
        "walltime_hours",
        check_inputs,
        form(molecule="benzene", method="B3LYP", basis="cc-pvtz"),
        request,
    )
    assert "264 basis functions" in reason and "on 1 core;" in reason and "asked for 6" in reason
    # More cores and hours make the same molecule fit.
    request = check_resources(resources(cores=8, walltime_hours=1), site)
    check_inputs(form(molecule="benzene", method="B3LYP", basis="cc-pvtz"), request)


def test_too_many_basis_functions_are_refused_whatever_the_hours(site):
    request = check_resources(resources(cores=8, walltime_hours=12), site)
    reason = refused("basis", check_inputs, upload(twenty_waters(), basis="cc-pvtz"), request)
    assert "1160 basis functions" in reason and f"at most {MAX_BASIS_FUNCTIONS}" in reason


# --- params.json and the job -----------------------------------------------------------------


def test_params_round_trip_through_the_file_the_job_reads():
    for name in ("water-hf-sto3g", "ammonia-cation-pbe-def2svp"):
        data = json.loads((CAPTURES / f"{name}.params.json").read_text())
        params = params_from_json(data)
        assert params_from_json(json.loads(json_text(params.to_json()))) == params
    assert params_from_json(json.loads(json_text(check_chemistry(form()).to_json()))) == (
        check_chemistry(form())
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.update(atoms="O 0 0 0"), "params"),
        (lambda d: d.update(atoms=[["O", 0, 0]]), "xyz"),
        (lambda d: d.update(atoms=[["O", True, 0, 0]]), "xyz"),
        (lambda d: d.update(atoms=[["O", 10**400, 0, 0]]), "xyz"),
        (lambda d: d.update(atoms=[["O", "0", 0, 0]]), "xyz"),
        (lambda d: d.update(atoms=[["Og", 0, 0, 0]]), "xyz"),
        (lambda d: d.update(atoms=[]), "xyz"),
        (lambda d: d.update(method="exec"), "method"),
        (lambda d: d.update(basis="../../etc/passwd"), "basis"),
        (lambda d: d.update(spin=1), "spin"),
    ],
)
def test_an_edited_params_file_is_refused_by_the_job(change, field):
    data = json.loads((CAPTURES / "water-hf-sto3g.params.json").read_text())
    change(data)
    refused(field, params_from_json, data)
    refused("params", params_from_json, ["not", "an", "object"])


def test_the_job_runs_the_module_with_quoted_paths_and_one_thread_per_core(site):
    body = job_body("/opt/images/base/bin/python", "export PYTHONPATH=/opt/apps\n", "/home/a b/r'1")
    lines = body.splitlines()
    assert lines[0] == 'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"'
    assert lines[1] == "export PYTHONPATH=/opt/apps"
    assert lines[2] == (
        "exec /opt/images/base/bin/python -m voila_apps.pyscf_chem.run '/home/a b/r'\"'\"'1'"
    )
    request = check_resources(resources(cores=4), site)
    script = batch_script(request, name="pyscf-chem", workdir="/home/alice/run", body=body)
    assert "#SBATCH --cpus-per-task=4" in script and script.endswith(body)


def test_the_core_imports_nothing_heavy():
    code = (
        "import sys, voila_apps.pyscf_chem.core, voila_apps.pyscf_chem.molecules;"
        "heavy = {'numpy', 'pyscf', 'ipywidgets', 'bqplot'} & set(sys.modules); print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "set()"


# --- reading what a real run wrote -------------------------------------------------------------


def test_progress_of_a_real_run_is_read_cycle_by_cycle():
    cycles = parse_progress((CAPTURES / "water-hf-sto3g.progress.jsonl").read_text())
    assert [c.cycle for c in cycles] == [1, 2, 3, 4, 5, 6]
    assert cycles[0].energy == pytest.approx(-74.9128, abs=1e-4)
    assert all(b.energy <= a.energy + 1e-12 for a, b in itertools.pairwise(cycles))
    assert abs(cycles[-1].delta_e) < 1e-9 and cycles[-1].gradient < 1e-5
    result = parse_result((CAPTURES / "water-hf-sto3g.result.json").read_text())
    assert cycles[-1].energy == pytest.approx(result.energy, abs=1e-9)


def test_progress_is_read_while_the_last_line_is_still_being_written():
    text = (CAPTURES / "ammonia-cation-pbe-def2svp.progress.jsonl").read_text()
    whole = parse_progress(text)
    assert len(whole) == 8
    cut = text[: text.rindex('"gradient"')]  # the job was writing the last line
    assert parse_progress(cut) == whole[:-1]
    assert parse_progress("") == []


def test_bad_progress_lines_are_skipped():
    text = "\n".join(
        [
            progress_line(1, -1.0, -0.5, 0.1),
            "not json",
            "[1, 2]",
            '{"cycle": true, "energy": -1.1}',
            '{"cycle": 2, "energy": NaN}',
            '{"cycle": 2, "energy": 1' + "0" * 400 + "}",
            progress_line(2, float("nan"), 0.0, 0.0),
            '{"cycle": 3, "energy": -1.2, "delta_e": "x"}',
        ]
    )
    cycles = parse_progress(text)
    assert [(c.cycle, c.energy, c.delta_e) for c in cycles] == [(1, -1.0, -0.5), (3, -1.2, None)]


def test_a_closed_shell_result_is_read_with_full_precision():
    result = parse_result((CAPTURES / "water-hf-sto3g.result.json").read_text())
    assert result.energy == -74.96302313846125
    assert abs(result.energy - DIRECT_RHF_WATER_STO3G) < 1e-8
    assert result.converged and result.cycles == 6 and result.reference == "RHF"
    assert (result.method, result.basis, result.basis_functions) == ("HF", "sto-3g", 7)
    assert result.atoms == MOLECULES["water"].atoms and result.title == "Water"
    (orbitals,) = result.orbitals
    assert orbitals.channel == "restricted" and orbitals.occupations == (2,) * 5 + (0,) * 2
    assert orbitals.energies[0] == pytest.approx(-20.2419, abs=1e-4)  # oxygen 1s
    assert (result.homo, result.lumo) == frontier(result.orbitals)
    assert result.homo == orbitals.energies[4] and result.lumo == orbitals.energies[5]
    assert result.s_squared is None


def test_an_open_shell_result_has_two_channels_and_spin_contamination():
    result = parse_result((CAPTURES / "ammonia-cation-pbe-def2svp.result.json").read_text())
    assert result.reference == "UKS" and (result.charge, result.spin) == (1, 1)
    alpha, beta = result.orbitals
    assert (alpha.channel, sum(alpha.occupations)) == ("alpha", 5)
    assert (beta.channel, sum(beta.occupations)) == ("beta", 4)
    assert result.s_squared == pytest.approx(0.75, abs=0.01)
    assert (result.homo, result.lumo) == frontier(result.orbitals)


def test_a_result_still_being_written_or_damaged_is_not_read():
    text = (CAPTURES / "water-hf-sto3g.result.json").read_text()
    assert parse_result(text[: len(text) // 2]) is None
    assert parse_result("") is None and parse_result("[]") is None
    data = json.loads(text)
    data["orbitals"][0]["occupations"].pop()
    assert parse_result(json.dumps(data)) is None
    data = json.loads(text)
    data["energy"] = None
    assert parse_result(json.dumps(data)) is None


def test_the_summary_prints_the_energy_the_browser_test_reads():
    result = parse_result((CAPTURES / "water-hf-sto3g.result.json").read_text())
    lines = summary_lines(result)
    assert lines[0] == "Total energy: -74.9630231385 Ha"
    found = float(re.search(r"Total energy: (-?\d+\.\d{10}) Ha", "\n".join(lines)).group(1))
    assert abs(found - DIRECT_RHF_WATER_STO3G) < 1e-6
    assert "SCF converged after 6 cycles" in lines
    assert "HOMO: -0.391236 Ha (-10.646 eV)" in lines
    open_shell = summary_lines(
        parse_result((CAPTURES / "ammonia-cation-pbe-def2svp.result.json").read_text())
    )
    assert any(line.startswith("<S²>: 0.752") for line in open_shell)
    assert "charge +1, 2S = 1" in open_shell[1]


def test_the_orbital_plot_keeps_occupied_and_virtual_apart():
    result = parse_result((CAPTURES / "water-hf-sto3g.result.json").read_text())
    x, names, (occupied, virtual) = orbital_window(result.orbitals)
    assert names == ["occupied", "virtual"] and x == [1, 2, 3, 4, 5, 6, 7]
    assert occupied[:5] == list(result.orbitals[0].energies[:5]) and math.isnan(occupied[5])
    assert virtual[5:] == list(result.orbitals[0].energies[5:]) and math.isnan(virtual[0])
    x, _, _ = orbital_window(result.orbitals, around=2)
    assert x == [4, 5, 6, 7]  # HOMO−1, HOMO, LUMO, LUMO+1


def test_the_orbital_plot_of_an_open_shell_has_four_series():
    result = parse_result((CAPTURES / "ammonia-cation-pbe-def2svp.result.json").read_text())
    x, names, ys = orbital_window(result.orbitals, around=3)
    assert names == ["alpha occupied", "alpha virtual", "beta occupied", "beta virtual"]
    # Three below the highest HOMO (beta's, orbital 4) to three above the lowest LUMO (alpha's, 6).
    assert x == [2, 3, 4, 5, 6, 7, 8]
    assert all(len(series) == len(x) for series in ys)
    alpha_occupied, _, beta_occupied, beta_virtual = ys
    assert not math.isnan(alpha_occupied[3]) and math.isnan(beta_occupied[3])
    assert beta_virtual[3] == result.orbitals[1].energies[4]


def test_params_are_a_frozen_value():
    params = check_chemistry(form())
    assert isinstance(params, Params)
    with pytest.raises(AttributeError):
        params.basis = "cc-pvtz"
