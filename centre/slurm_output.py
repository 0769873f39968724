"""Where a Slurm job's output goes, from its ``--output`` pattern: pure."""

from __future__ import annotations

import re

_PATTERN = re.compile(r"%(%|[jAxu])")


def output_path(pattern: str, workdir: str, job_id: str, name: str, user: str) -> str:
    """Slurm's output pattern with the job's values (the replacements corehour's scripts and
    most people's use); a relative one is in the working directory."""
    values = {"%": "%", "j": job_id, "A": job_id, "x": name, "u": user}
    path = _PATTERN.sub(lambda m: values[m.group(1)], pattern)
    if path and not path.startswith("/") and workdir:
        path = f"{workdir.rstrip('/')}/{path}"
    return path if path.startswith("/") else ""
