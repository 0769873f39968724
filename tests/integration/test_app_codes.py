"""The science apps' batch jobs, run for real in the images' own Python, as an ordinary user.

No hub and no Slurm here (the browser tests run the same jobs through both): these check
that what the images install runs, and that the jobs write what the apps' cores parse.
"""

import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from centre.site import load_site
from tests.harness import REPO
from voila_apps.kit.jobs import check_resources
from voila_apps.lammps_md import core as lammps
from voila_apps.pyscf_chem import core as pyscf_chem
from voila_apps.torch_train import core as torch_train
from voila_apps.torch_train.params import Params as TrainParams

pytestmark = pytest.mark.integration

IMAGES = Path("/opt/corehour/images")
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
SITE = load_site(REPO / "deploy" / "site.example.yaml")


@pytest.fixture
def run_dir():
    """A folder the job's user (nobody) may write, like a run folder in a person's home.

    Not under pytest's tmp_path: any pytest started meanwhile makes pytest's folder private
    to root again, and the job would find its folder gone."""
    folder = Path(tempfile.mkdtemp(prefix="corehour-app-run-"))
    os.chmod(folder, 0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def as_job(argv: list[str], cwd: Path, cores: int = 1, timeout: int = 300):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
        "PYTHONPATH": str(REPO),
        "SLURM_CPUS_PER_TASK": str(cores),
        "SLURM_JOB_ID": "0",
    }
    return subprocess.run(
        AS_NOBODY + argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_lammps_melts_a_small_crystal_and_writes_thermo_and_rdf(run_dir):
    request = check_resources({"profile": "cpu", "cluster": "alpha", "cores": 1}, SITE)
    params = lammps.check_inputs({"atoms": 256, "temperature": 3.0, "steps": 200}, request)
    (run_dir / "in.melt").write_text(lammps.render_deck(params))
    body = lammps.job_body(str(IMAGES / "base" / "bin" / "lmp"))
    result = as_job(["bash", "-c", body], run_dir)
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr[-1500:]
    log = (run_dir / "log.lammps").read_text()
    thermo = lammps.parse_thermo(log)
    assert thermo["Step"][0] == 0 and thermo["Step"][-1] == 200
    assert len(thermo["Step"]) == 200 // params.thermo_every + 1
    assert thermo["Temp"][0] == pytest.approx(3.0)
    assert all(math.isfinite(e) for e in thermo["TotEng"])
    summary = lammps.summarize_log(log)
    assert summary.error is None and summary.threads == 1 and summary.atoms == 256
    rdf = lammps.parse_rdf((run_dir / "rdf.dat").read_text())
    assert rdf is not None and len(rdf.r) == lammps.RDF_BINS and max(rdf.g) > 1


def test_training_runs_in_the_gpu_image_and_the_loss_falls(run_dir):
    (run_dir / torch_train.PARAMS).write_text(
        torch_train.params_json(TrainParams(model="cnn", epochs=3, batch_size=128))
    )
    python = str(IMAGES / "gpu" / "bin" / "python")
    result = as_job(["bash", "-c", torch_train.job_command(python, str(run_dir))], run_dir)
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr[-1500:]
    epochs = torch_train.parse_progress((run_dir / torch_train.PROGRESS).read_text())
    outcome = torch_train.parse_result((run_dir / torch_train.RESULT).read_text())
    assert [e.epoch for e in epochs] == [1, 2, 3] and outcome.epochs == 3
    assert all(math.isfinite(e.train_loss) for e in epochs)
    assert outcome.final_train_loss < outcome.first_train_loss
    assert outcome.device == "cpu" and "No GPU is visible" in outcome.note
    assert 0.5 < outcome.test_accuracy <= 1  # a fraction; the app shows it as a percentage
    assert (run_dir / torch_train.MODEL).stat().st_size > 0


def test_the_training_job_refuses_a_tampered_params_file(run_dir):
    (run_dir / torch_train.PARAMS).write_text(json.dumps({"epochs": 1e9}))
    python = str(IMAGES / "gpu" / "bin" / "python")
    result = as_job([python, "-m", "voila_apps.torch_train.run", str(run_dir)], run_dir)
    assert result.returncode == 2
    assert "epochs: a whole number from 1 to 500" in result.stderr
    assert not (run_dir / torch_train.PROGRESS).exists()


def test_the_gpu_check_trains_once_and_says_where(run_dir):
    python = str(IMAGES / "gpu" / "bin" / "python")
    result = as_job([python, "-m", "voila_apps.torch_train.gpu_check", "--epochs", "3"], run_dir)
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr[-1500:]
    assert "device: cpu" in result.stdout


WATER_DIRECT = """
from pyscf import gto, scf
mol = gto.M(atom={atoms!r}, basis="sto-3g", verbose=0)
print(repr(float(scf.RHF(mol).kernel())))
"""


def test_pyscf_gives_the_energy_pyscf_gives_directly(run_dir):
    params = pyscf_chem.check_chemistry(
        {"molecule": "water", "method": "HF", "basis": "sto-3g", "charge": 0, "spin": 0}
    )
    (run_dir / "params.json").write_text(pyscf_chem.json_text(params.to_json()))
    python = str(IMAGES / "base" / "bin" / "python")
    result = as_job(["bash", "-c", pyscf_chem.job_body(python, "", str(run_dir))], run_dir)
    assert result.returncode == 0, result.stdout[-1500:] + result.stderr[-1500:]
    outcome = pyscf_chem.parse_result((run_dir / "result.json").read_text())
    atoms = [(a.symbol, tuple(a[1:])) for a in params.atoms]
    direct = as_job([python, "-c", WATER_DIRECT.format(atoms=atoms)], run_dir)
    assert direct.returncode == 0, direct.stderr[-1500:]
    assert abs(outcome.energy - float(direct.stdout)) < 1e-8
    assert outcome.converged
    cycles = pyscf_chem.parse_progress((run_dir / "progress.jsonl").read_text())
    assert len(cycles) == outcome.cycles
    assert "converged SCF energy" in (run_dir / "pyscf.log").read_text()
