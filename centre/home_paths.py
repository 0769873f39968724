"""A path inside a person's home on a cluster, as people type them: checked, never trusted.

Copies between clusters (extensions/transfers) and the public API's files
(extensions/public_api/files.py) take paths relative to the home, of plain names only: no
``..``, no absolute path, nothing a shell, tar or find would read as an option.  Whatever runs
on them runs as the person anyway; this keeps a request inside the home it names.
"""

from __future__ import annotations

import re

from centre.errors import FieldError

_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]{0,127}")
MAX_PATH = 1024


def home_path(field: str, value: object, *, home_itself: bool = False) -> str:
    """``a/b/c`` of plain names inside the home; with ``home_itself``, "" names the home."""
    if home_itself and value in ("", ".", "/"):
        return ""
    if not isinstance(value, str) or not value or len(value) > MAX_PATH:
        raise FieldError(field, "give a path inside your home, such as results/run1")
    parts = value.strip("/").split("/") if not value.startswith("/") else ["/"]
    for part in parts:
        if not _PART.fullmatch(part):
            raise FieldError(
                field,
                f"{value[:80]!r} is not a path inside your home: use names of letters, digits, "
                "'.', '_', '+' or '-' separated by '/', without '..' or a leading '/'",
            )
    return "/".join(parts)
