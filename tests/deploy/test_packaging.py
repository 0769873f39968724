"""corehour as a wheel: every file its packages open at run time goes into it, and its console
scripts are declared.  A production install is this wheel, not a checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.harness import REPO

pytestmark = pytest.mark.deploy

PACKAGES = ("centre", "spawners", "extensions", "billing_hooks", "voila_apps", "roots")
# Read by people, not by the code.
NOT_SHIPPED = {"README.md"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    # From a copy of the checkout's own files: setuptools reuses a build/ folder it finds, and
    # a file left there by an earlier build would hide one the wheel no longer gets.
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in git_files("--cached", "--others", "--exclude-standard"):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=out,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (path,) = out.glob("corehour-*.whl")
    return zipfile.ZipFile(path)


def git_files(*args: str) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", *args], capture_output=True, text=True, check=True, cwd=REPO
    )
    return listed.stdout.split()


def tracked_package_files() -> set[str]:
    listed = git_files("--cached", "--others", "--exclude-standard", *PACKAGES)
    return {
        name for name in listed if (REPO / name).is_file() and Path(name).name not in NOT_SHIPPED
    }


def test_the_wheel_holds_every_file_of_the_packages(wheel):
    missing = tracked_package_files() - set(wheel.namelist())
    assert not missing, f"files the code needs but the wheel lacks: {sorted(missing)}"


def test_the_wheel_holds_the_hub_config_and_the_ledger_migrations(wheel):
    names = set(wheel.namelist())
    assert "roots/jupyterhub_config.py" in names
    assert "billing_hooks/migrations/env.py" in names
    assert "extensions/templates/home.html" in names


def test_the_console_scripts_are_declared(wheel):
    (entry_points,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert "corehour-hub = roots.hub_main:main" in text
    assert "corehour-billing = roots.billing:run" in text
    assert "corehour-ops = roots.ops:main" in text


def test_production_requirements_carry_no_test_tools(wheel):
    (metadata,) = [n for n in wheel.namelist() if n.endswith("METADATA")]
    required = [
        line.split(":", 1)[1].strip()
        for line in wheel.read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]
    assert required, "the wheel declares no dependencies"
    for tool in ("pytest", "selenium", "ruff", "hypothesis", "joserfc"):
        assert not any(r.lower().startswith(tool) for r in required), required


@pytest.mark.parametrize("image", ["base", "gpu"])
def test_notebook_images_carry_no_batchspawner(image):
    """Jobs start through spawners/launch.py; batchspawner's wrapper is no longer in them."""
    python = Path("/opt/corehour/images") / image / "bin" / "python"
    assert python.exists(), f"TEST builds the images first: {python}"
    probe = subprocess.run([str(python), "-c", "import batchspawner"], capture_output=True)
    assert probe.returncode != 0, f"batchspawner is still installed in {image}"
    assert not (python.parent / "batchspawner-singleuser").exists()
