"""Config values that every spawner shares instead of copying.

traitlets deep-copies each config value into every object it configures, and JupyterHub
makes a spawner per person: the site and the app catalogue as plain data would be copied
once per spawner (about 20 KB each, kept for the life of the hub). A :class:`SharedDict`
copies as itself, and refuses changes, so that sharing it is safe.
"""

from __future__ import annotations

import json
from functools import cached_property


class SharedDict(dict):
    """A read-only dict (its nested dicts too) whose deep copy is itself.

    Lists in it are shared as they are: nothing that reads the site or the catalogue
    changes them.
    """

    def __deepcopy__(self, _memo) -> SharedDict:
        return self

    def __copy__(self) -> SharedDict:
        return self

    def __reduce__(self):
        # cached_property keeps its value in __dict__: pickle the data alone.
        return (shared, (dict(self),))

    @cached_property
    def fingerprint(self) -> str:
        """The content as canonical JSON: equal values have equal fingerprints."""
        return json.dumps(self, sort_keys=True)

    def _read_only(self, *_args, **_kwargs):
        raise TypeError("this config value is shared by every spawner and cannot be changed")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only


def shared(value: dict) -> SharedDict:
    """``value`` with each dict in it, at any depth, made a :class:`SharedDict`."""
    return SharedDict({key: _shared_items(item) for key, item in value.items()})


def _shared_items(value):
    if isinstance(value, dict):
        return shared(value)
    if isinstance(value, list):
        return [_shared_items(item) for item in value]
    return value
