"""An app's widgets built ahead of time in a preheated kernel, handed to the first render.

The preheating kernel manager (preheat.py) calls ``prebuild`` with the app's ``build`` as the
server starts; the notebook's ``main()`` calls ``take``, which hands out those widgets once
and builds fresh ones after that.  Widgets made before the page connects are fine: the page
asks the kernel for every widget's state when it connects.
"""

from __future__ import annotations

from collections.abc import Callable

_built: dict[str, object] = {}


def prebuild(key: str, build: Callable[[], object]) -> None:
    _built[key] = build()


def take(key: str, build: Callable[[], object]) -> object:
    return _built.pop(key) if key in _built else build()
