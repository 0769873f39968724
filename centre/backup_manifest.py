"""The manifest of a backup folder, and which copy goes back into which database.

A backup is a folder with one file per database and ``manifest.json``, which says what each
file is, where it came from (the URL without its password), the ledger's schema revision and
when it was made.  A restore reads the manifest first and refuses, before it touches anything,
when one is missing or when a copy would go into a database of another kind.

Pure apart from :func:`read` and :func:`write`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .db_copy import CopyError, display_url, kind_of

NAME = "manifest.json"
FORMAT = 1
SUFFIX = {"sqlite": "sqlite", "postgresql": "pgdump"}


@dataclass(frozen=True)
class Copy:
    """One database's copy in a backup folder."""

    name: str
    file: str
    kind: str
    source: str
    revision: str | None = None


def copy_of(name: str, url: str, revision: str | None = None) -> Copy:
    kind = kind_of(url)
    return Copy(name, f"{name}.{SUFFIX[kind]}", kind, display_url(url), revision)


def to_json(copies: list[Copy], skipped: dict[str, str], made_at: str) -> dict:
    return {
        "format": FORMAT,
        "made_at": made_at,
        "databases": {c.name: {k: v for k, v in vars(c).items() if k != "name"} for c in copies},
        "skipped": skipped,
    }


def from_json(data: object, folder: Path) -> list[Copy]:
    """The copies a manifest lists; refuses one this corehour cannot read."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CopyError(
            f"{folder / NAME} is not a corehour backup manifest of format {FORMAT}; "
            "restore it with the corehour version that made it"
        )
    try:
        copies = [Copy(name, **fields) for name, fields in data["databases"].items()]
    except (KeyError, TypeError, AttributeError):
        raise CopyError(f"{folder / NAME} is damaged: its database list cannot be read") from None
    for copy in copies:
        # Only the names backup writes: a manifest never sends a restore outside its folder.
        if copy.kind not in SUFFIX or copy.file != f"{copy.name}.{SUFFIX[copy.kind]}":
            raise CopyError(
                f"{folder / NAME} is damaged: {copy.name} is listed as {copy.file!r} "
                f"of kind {copy.kind!r}"
            )
    return copies


def restore_plan(copies: list[Copy], targets: dict[str, str | None]) -> list[tuple[Copy, str]]:
    """Each copy with the URL it goes back to; refuses a copy with no target or of another
    kind than its target, so nothing is restored unless everything can be."""
    plan = []
    for copy in copies:
        url = targets.get(copy.name)
        if url is None:
            raise CopyError(
                f"the backup holds the {copy.name} database but this site has none to restore "
                "it into; check the site file and the database URLs in the environment"
            )
        if kind_of(url) != copy.kind:
            raise CopyError(
                f"the backup's {copy.name} database is {copy.kind} ({copy.source}) but the "
                f"target {display_url(url)} is {kind_of(url)}: corehour restores only into a "
                "database of the same kind; point the site at one"
            )
        plan.append((copy, url))
    return plan


def write(folder: Path, manifest: dict) -> None:
    fd = os.open(folder / NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def read(folder: Path) -> list[Copy]:
    path = folder / NAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CopyError(
            f"{path} is missing: {folder} is not a corehour backup (make one with "
            "`./corehour backup DIR`)"
        ) from None
    except (OSError, ValueError) as e:
        raise CopyError(f"{path} cannot be read: {e}") from None
    copies = from_json(data, folder)
    for copy in copies:
        if not (folder / copy.file).is_file():
            raise CopyError(f"{folder / copy.file} is missing: the backup is incomplete")
    return copies
