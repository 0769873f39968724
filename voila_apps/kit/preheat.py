"""Preheated kernels for an app server: Voila's first render without the kernel's start-up.

Voila's own ``preheat_kernel`` works only when Voila runs standalone; corehour runs it as a
jupyter-server extension so that hub auth stays intact.  This kernel manager is the
equivalent for that mode.  When the server starts it launches a kernel in the app's folder
and builds the app's widgets there (importing ipywidgets, bqplot and the app's core on the
way), so all of that is paid before anyone asks.  When Voila asks for a kernel in that folder, it gets
the waiting one (or waits for the one still warming, never slower than a cold start) and,
once the render is done, a new one warms up for the next render.  Any other kernel request is ordinary.
"""

from __future__ import annotations

import asyncio

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.ioloop import IOLoop
from traitlets import Float, Int, Unicode

from voila_apps.kit import APPS_ROOT


class PreheatedKernelManager(AsyncMappingKernelManager):
    preheat_path = Unicode(
        "",
        config=True,
        help="""The folder, relative to the server's root, whose notebooks get preheated
        kernels: the app's folder, e.g. corehour-apps/lammps-md.  Empty: no preheating.""",
    )
    preheat_module = Unicode(
        "",
        config=True,
        help="""The app's widget module (e.g. voila_apps.lammps_md.ui): every preheated kernel
        imports it and calls its build() ahead of time, so that rendering the app only hands
        out widgets that already exist (voila_apps/kit/prebuilt.py).""",
    )
    preheat_refill_seconds = Float(
        5.0,
        config=True,
        help="""How long after handing out a preheated kernel to start warming the next: not at
        once, so that the new kernel's start-up does not compete with the render in progress
        for the server's cores.""",
    )
    preheat_pool_size = Int(
        1,
        config=True,
        help="How many preheated kernels wait at once; one serves a person's app server.",
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._ready: list[str] = []
        self._warming: asyncio.Future | None = None
        if self.preheat_path:
            IOLoop.current().add_callback(self._fill)

    def _fill(self) -> asyncio.Future:
        if self._warming is None or self._warming.done():
            self._warming = asyncio.ensure_future(self._warm_up())
        return self._warming

    async def _warm_up(self) -> None:
        while len(self._ready) < self.preheat_pool_size:
            kernel_id = await super().start_kernel(path=self.preheat_path)
            try:
                await self._import_ahead(kernel_id)
            except Exception as e:  # a cold render still works; say why this one is not warm
                self.log.warning("preheating kernel %s: %s", kernel_id, e)
            self._ready.append(kernel_id)
            self.log.info("preheated kernel %s ready for %s", kernel_id, self.preheat_path)

    async def _import_ahead(self, kernel_id: str) -> None:
        if not self.preheat_module:
            return
        client = self.get_kernel(kernel_id).client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=60)
            module = self.preheat_module
            code = (
                f"import sys\nsys.path.insert(0, {str(APPS_ROOT)!r})\n"
                f"import {module}\nfrom voila_apps.kit.prebuilt import prebuild\n"
                f"prebuild({module!r}, {module}.build)\ndel sys, prebuild"
            )
            reply = await client.execute_interactive(code, store_history=False, timeout=60)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(
                    f"import {self.preheat_module}: {reply['content'].get('evalue')}"
                )
        finally:
            client.stop_channels()

    async def start_kernel(self, *args, kernel_id=None, path=None, **kwargs):
        name = kwargs.get("kernel_name") or self.default_kernel_name
        if (
            self.preheat_path
            and kernel_id is None
            and path == self.preheat_path
            and name == self.default_kernel_name
        ):
            if not self._ready:
                await self._fill()
            if self._ready:
                taken = self._ready.pop(0)
                IOLoop.current().call_later(self.preheat_refill_seconds, self._fill)
                self.log.info("serving %s with preheated kernel %s", path, taken)
                return taken
        return await super().start_kernel(*args, kernel_id=kernel_id, path=path, **kwargs)
