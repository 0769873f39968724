"""What a copy between centres runs: checked paths, and the command lines (pure).

A person copies ``from_path`` in their home on ``from_cluster`` to ``to_path`` in their home
on ``to_cluster``.  Both ends run as the person, through the same runner and sudo rule as
their jobs (centre/slurm_cli.py): ``tar`` reads on one side, ``tar`` writes on the other, and
the hub carries the bytes between them, so neither side needs to trust the other and the
portal's ssh key never reaches a person's process.  Paths are relative to the home, plain
names only: no ``..``, no absolute path, nothing a shell or tar would read as an option.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from centre.errors import FieldError
from centre.home_paths import home_path
from centre.site import Site
from centre.slurm_cli import cluster_argv

FIELDS = ("from_cluster", "from_path", "to_cluster", "to_path")


@dataclass(frozen=True)
class TransferRequest:
    from_cluster: str
    from_path: str
    to_cluster: str
    to_path: str


def check_request(raw: Mapping[str, object], site: Site) -> TransferRequest:
    """The request's fields, each checked; the first bad one names itself."""
    if not isinstance(raw, Mapping):
        raise FieldError("body", "send a JSON object with " + ", ".join(FIELDS))
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise FieldError(unknown[0], "is not a field of a copy; give " + ", ".join(FIELDS))
    clusters = sorted(site.clusters)
    for field in ("from_cluster", "to_cluster"):
        if raw.get(field) not in site.clusters:
            raise FieldError(field, f"choose one of {', '.join(clusters)}")
    request = TransferRequest(
        from_cluster=str(raw["from_cluster"]),
        from_path=home_path("from_path", raw.get("from_path")),
        to_cluster=str(raw["to_cluster"]),
        to_path=home_path("to_path", raw.get("to_path")),
    )
    if (request.from_cluster, request.from_path) == (request.to_cluster, request.to_path):
        raise FieldError("to_path", "is the folder being copied; choose another")
    return request


@dataclass(frozen=True)
class TransferCommands:
    size: list[str]  # du -sb of the source, as the person
    read: list[str]  # tar writing the source folder to stdout, as the person
    make: list[str]  # mkdir -p of the destination, as the person
    write: list[str]  # tar reading stdin into the destination, as the person


def commands(
    site: Site, person: str, home: str, request: TransferRequest, user_prefix: Sequence[str]
) -> TransferCommands:
    source = f"{home}/{request.from_path}"
    target = f"{home}/{request.to_path}"

    def on(cluster: str, argv: list[str]) -> list[str]:
        return cluster_argv(site.clusters[cluster], argv, username=person, user_prefix=user_prefix)

    return TransferCommands(
        size=on(request.from_cluster, ["du", "-sb", "--", source]),
        read=on(request.from_cluster, ["tar", "-C", source, "-cf", "-", "."]),
        make=on(request.to_cluster, ["mkdir", "-p", "--", target]),
        write=on(request.to_cluster, ["tar", "-C", target, "-xf", "-"]),
    )
