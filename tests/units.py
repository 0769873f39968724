"""Starts a systemd unit's ExecStart as its User=, the way systemd would, on a machine where
systemd is not PID 1: its ExecStartPre= first (as root where prefixed with '+', else as
User=), its Environment= and EnvironmentFile= (read as root, as systemd does), User=, Group=,
SupplementaryGroups= and WorkingDirectory=.  Nothing else of the unit is
emulated (sandboxing, capabilities, restarts); the tests say so where it matters."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Unit:
    path: Path
    sections: dict[str, dict[str, list[str]]]

    def values(self, key: str, section: str = "Service") -> list[str]:
        return self.sections.get(section, {}).get(key, [])

    def value(self, key: str, section: str = "Service") -> str:
        values = self.values(key, section)
        return values[-1] if values else ""


def parse_unit(path: Path) -> Unit:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return Unit(path, sections)


def read_environment_file(path: Path) -> dict[str, str]:
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = " ".join(shlex.split(value)) if value else ""
    return env


def environment(unit: Unit) -> dict[str, str]:
    env: dict[str, str] = {}
    for assignments in unit.values("Environment"):
        for assignment in shlex.split(assignments):
            key, _, value = assignment.partition("=")
            env[key] = value
    for name in unit.values("EnvironmentFile"):
        optional = name.startswith("-")
        path = Path(name.lstrip("-"))
        if optional and not path.exists():
            continue
        env.update(read_environment_file(path))
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return env


def start(unit: Unit, log: Path) -> subprocess.Popen:
    for pre in unit.values("ExecStartPre"):
        as_root = pre.startswith("+")
        pre_argv = shlex.split(pre.lstrip("+"))
        assert pre_argv[0].startswith("/"), f"{unit.path}: ExecStartPre must be an absolute path"
        subprocess.run(
            pre_argv,
            user=None if as_root else unit.value("User") or None,
            env=environment(unit),
            check=True,
            timeout=60,
        )
    argv = shlex.split(unit.value("ExecStart"))
    assert argv and argv[0].startswith("/"), f"{unit.path}: ExecStart must be an absolute path"
    supplementary = unit.value("SupplementaryGroups").split()
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            user=unit.value("User") or None,
            group=unit.value("Group") or None,
            extra_groups=supplementary or [],
            env=environment(unit),
            cwd=unit.value("WorkingDirectory") or "/",
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
