#!/usr/bin/python3
"""Re-resolve an image's pinned requirements.

    images/relock.py NAME [NAME...]   rewrite the resolved part of images/NAME/requirements.txt
    images/relock.py --cuda gpu       rewrite images/gpu/cuda-constraints.txt

An image's requirements.txt has two parts. Above the marker line are the top-level
requirements a person chose (exact pins, comments, `-r`/`-c` lines). Below it is their
resolved closure, which this script writes: it installs the top part into a scratch venv made
from /usr/bin/python3 (the interpreter deploy/envs.sh uses), with the pip version envs.sh pins,
and lists every package pip installed that neither the top part nor an included (`-r`) file
already pins. Run it after changing a top-level pin, then rebuild with `deploy/envs.sh images`.

--cuda resolves the image for CPython 3.13 on manylinux x86_64 from package metadata only
(nothing is downloaded or installed) and writes, as constraints, the packages that resolution
adds: the CUDA wheels that PyPI's torch build pulls in where the local CPU wheel does not apply.
"""

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

IMAGES = Path(__file__).resolve().parent
ENVS_SH = IMAGES.parent / "deploy" / "envs.sh"
PYTHON = "/usr/bin/python3"
MARKER = "# ---- resolved closure: written by images/relock.py, do not edit below this line ----"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
QUIET = ["--progress-bar", "off", "-q"]
CUDA_TARGET = [
    "--python-version=3.13",
    "--implementation=cp",
    "--abi=cp313",
    "--only-binary=:all:",
    *(f"--platform=manylinux_2_{minor}_x86_64" for minor in range(17, 42)),
    "--platform=manylinux2014_x86_64",
]
CUDA_HEADER = """\
# Constraints, not requirements: the exact CUDA wheels that PyPI's torch build pulls in on Linux
# x86_64 (Debian 13's Python 3.13, container builds). The CPU wheel deploy/envs.sh uses on
# CPython 3.11 needs none of them, and pip ignores constraints on what it does not install.
# Written by `images/relock.py --cuda gpu` (a resolution for CPython 3.13, manylinux x86_64).
"""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pip_version() -> str:
    match = re.search(r"^PIP_VERSION=(\S+)$", ENVS_SH.read_text(), re.MULTILINE)
    if not match:
        sys.exit(f"corehour: error: no PIP_VERSION= line in {ENVS_SH}")
    return match.group(1)


def pinned_names(text: str, folder: Path) -> set[str]:
    """Names pinned in requirements text (from a file in folder) and in the files it includes."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("-r ", "--requirement ")):
            included = (folder / line.split(None, 1)[1]).resolve()
            names |= pinned_names(included.read_text(), included.parent)
        elif match := PIN.match(line):
            names.add(canonical(match.group(1)))
    return names


def resolve(requirements: Path, *pip_args: str) -> list[tuple[str, str]]:
    """(name, version) of everything `pip install -r requirements` installs in a fresh venv."""
    with tempfile.TemporaryDirectory(prefix="corehour-relock-") as scratch:
        venv, report = Path(scratch, "venv"), Path(scratch, "report.json")
        pip = [str(venv / "bin" / "python"), "-m", "pip"]
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, "install", *QUIET, f"pip=={pip_version()}"], check=True)
        install = [*pip, "install", *QUIET, "--ignore-installed", "--report", str(report)]
        subprocess.run([*install, *pip_args, "-r", str(requirements)], check=True)
        if "--dry-run" not in pip_args:
            subprocess.run([*pip, "check"], check=True)
        installed = json.loads(report.read_text())["install"]
    return [(item["metadata"]["name"], item["metadata"]["version"]) for item in installed]


def pin_lines(pins: list[tuple[str, str]], leave_out: set[str]) -> str:
    kept = sorted(
        (p for p in pins if canonical(p[0]) not in leave_out), key=lambda p: canonical(p[0])
    )
    return "".join(f"{name}=={version}\n" for name, version in kept)


def relock(name: str) -> None:
    req = IMAGES / name / "requirements.txt"
    top = req.read_text().split(MARKER, 1)[0].rstrip() + "\n"
    # The top part goes next to the real file, so that its relative -r/-c lines still work.
    top_file = req.with_name(".relock-top.txt")
    top_file.write_text(top)
    try:
        pins = resolve(top_file)
    finally:
        top_file.unlink()
    body = pin_lines(pins, pinned_names(top, req.parent))
    req.write_text(f"{top}\n{MARKER}\n{body}")
    print(f"corehour: {req.relative_to(IMAGES.parent)}: {body.count(chr(10))} resolved pins")


def relock_cuda(name: str) -> None:
    req = IMAGES / name / "requirements.txt"
    constraints = req.with_name("cuda-constraints.txt")
    constraints.write_text(CUDA_HEADER)  # resolve without the old constraints
    with tempfile.TemporaryDirectory(prefix="corehour-relock-target-") as target:
        pins = resolve(req, "--dry-run", f"--target={target}", *CUDA_TARGET)
    body = pin_lines(pins, pinned_names(req.read_text(), req.parent))
    constraints.write_text(CUDA_HEADER + body)
    print(f"corehour: {constraints.relative_to(IMAGES.parent)}: {body.count(chr(10))} constraints")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--cuda"] and len(args) == 2:
        relock_cuda(args[1])
    elif args and not args[0].startswith("-"):
        for image in args:
            relock(image)
    else:
        sys.exit(__doc__)
