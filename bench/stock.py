"""The baseline of the spawn benchmarks: stock batchspawner's SlurmSpawner, set up the way
its README suggests for this cluster.

corehour's images no longer carry batchspawner (jobs start through spawners/launch.py), so
the baseline's jobs get batchspawner 1.3.0 from a folder of its own, on PYTHONPATH, next to
the same image: the same code batchspawner-singleuser ran, and nothing else changed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.harness import SLURM_CONF

IMAGE = "/opt/corehour/images/base"
BATCHSPAWNER = "batchspawner==1.3.0"
STOCK_PACKAGES = Path("/opt/corehour/bench/batchspawner-1.3.0")


def ensure_stock_batchspawner() -> Path:
    """batchspawner alone (its imports are all in the image), readable by every user."""
    if not (STOCK_PACKAGES / "batchspawner" / "singleuser.py").exists():
        subprocess.run(
            [f"{IMAGE}/bin/python", "-m", "pip", "install", "-q", "--no-deps",
             "--target", str(STOCK_PACKAGES), BATCHSPAWNER],
            check=True,
        )  # fmt: skip
        subprocess.run(["chmod", "-R", "u+rwX,go+rX,go-w", str(STOCK_PACKAGES)], check=True)
    return STOCK_PACKAGES


def stock_config() -> str:
    packages = ensure_stock_batchspawner()
    singleuser = f"env PYTHONPATH={packages} {IMAGE}/bin/python -m batchspawner.singleuser"
    return f"""
# Stock batchspawner, set up the way its README suggests for this cluster.
c.JupyterHub.spawner_class = "batchspawner.SlurmSpawner"
c.SlurmSpawner.exec_prefix = "sudo -E -u {{username}}"
c.SlurmSpawner.req_srun = ""
c.SlurmSpawner.req_partition = "cpu"
c.SlurmSpawner.req_nprocs = "1"
c.SlurmSpawner.req_memory = "2G"
c.SlurmSpawner.req_runtime = "02:00:00"
c.SlurmSpawner.batchspawner_singleuser_cmd = "{singleuser}"
c.SlurmSpawner.cmd = ["{IMAGE}/bin/jupyterhub-singleuser"]
c.SlurmSpawner.ip = "0.0.0.0"
c.Spawner.environment = {{"SLURM_CONF": "{SLURM_CONF["alpha"]}"}}
"""
