"""Spawn admission: the steps a start passes before anything reaches Slurm.

The spawner runs the steps it is given (``CorehourSpawner.admission``), in order, and knows
none of them.  The hub's composition root (``roots/hub.py``) assembles the list: billing
chooses the account the person may charge, courses applies a course's own rules (term,
profiles, images, the student's cap, its materials), and billing checks the money and tells
Slurm.  Each step returns the admission with what it decided filled in, or raises
:class:`AdmissionRefused` with what the person must know; the spawner then takes its
account and materials from the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from centre.materials import Materials
from centre.options import SpawnRequest


@dataclass(frozen=True)
class Admission:
    username: str
    request: SpawnRequest
    # The ledger and Slurm account the job is charged to; empty where nothing bills.
    account: str = ""
    # What kind of account it is ("personal", "project", "course"), so a later step can
    # tell whether it has anything to say.
    account_kind: str = ""
    materials: Materials | None = None


class AdmissionRefused(Exception):
    """A start that may not go ahead; ``status`` is the HTTP status the hub answers with,
    ``field`` the form field the person should change."""

    def __init__(self, status: int, field: str, message: str):
        super().__init__(message)
        self.status = status
        self.field = field


AdmissionStep = Callable[[Admission], Awaitable[Admission]]


class SharedStep:
    """Base for a step that holds the site's ledger connections.

    traitlets deep-copies every config value into each spawner it makes; a step must stay
    one object per hub, so that every spawner shares its database engines and caches.
    """

    def __deepcopy__(self, memo) -> SharedStep:
        return self


async def admit(steps: Iterable[AdmissionStep], admission: Admission) -> Admission:
    for step in steps:
        admission = await step(admission)
    return admission
