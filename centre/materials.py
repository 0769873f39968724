"""Course materials in a student's home: what to run, as the student, before their server.

Pure.  Materials land in ``~/<course slug>``.  A folder is copied file by file, and only
files the student does not have yet are copied, so their edits are never overwritten and
new files from the instructor still arrive.  A git repository is pulled with nbgitpuller
(in the image), which merges the instructor's changes and keeps the student's.
"""

from __future__ import annotations

from dataclasses import dataclass

# Copies what is missing, never what exists: new folders, then new files.  "$1" is the
# source, "$2" the target; nothing from the course's settings is pasted into the script.
COPY_MISSING = (
    'set -e; mkdir -p "$2"; cd "$1"; '
    'find . -type d -exec mkdir -p "$2/{}" \\; ; '
    'find . -type f -exec sh -c \'[ -e "$2/$1" ] || cp -p "$1" "$2/$1"\' copy {} "$2" \\;'
)


@dataclass(frozen=True)
class Materials:
    course: str
    kind: str  # "folder" or "git"
    source: str
    branch: str = "main"

    @classmethod
    def from_settings(cls, course: str, settings: dict | None) -> Materials | None:
        if not settings:
            return None
        return cls(course, settings["kind"], settings["source"], settings.get("branch", "main"))


def target(home: str, materials: Materials) -> str:
    return f"{home}/{materials.course}"


def place_argv(materials: Materials, home: str, image_prefix: str) -> list[str]:
    """The command that brings ``materials`` into ``home``, run as the student.

    It starts in ``home``: the hub's own working directory is not the student's to read,
    and git gives up in a directory it cannot read."""
    where = target(home, materials)
    if materials.kind == "folder":
        command = ["sh", "-c", COPY_MISSING, "place-materials", materials.source, where]
    else:
        command = [f"{image_prefix}/bin/gitpuller", materials.source, materials.branch, where]
    return ["env", "-C", home, *command]


def default_url(materials: Materials) -> str:
    """Course servers open on the materials folder."""
    return f"/lab/tree/{materials.course}"
