"""A Jupyter server extension: the results viewer at ``viewer/`` in every notebook and app server.

``viewer/?path=<file>`` is a page that draws a cube file (isosurfaces, a 2D slice, a line
profile) or a LAMMPS dump (atoms by type or speed, frame by frame) with plotly.js in the
browser.  The server does the heavy part, in a thread so the notebook keeps answering: it
parses the file once (kept while the file is unchanged), runs marching cubes on a grid
averaged down to what a browser draws at once, and sends at most so many atoms a frame.
``viewer/`` without a path lists the files it can open.  It reads as the person, below their
home only (files.py), behind the server's own login.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import mmap
import os
from functools import lru_cache
from pathlib import Path

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.application import ExtensionApp, ExtensionAppJinjaMixin
from jupyter_server.extension.handler import ExtensionHandlerJinjaMixin, ExtensionHandlerMixin
from tornado import web
from traitlets import default

from centre.errors import FieldError
from voila_apps.viewer import scene
from voila_apps.viewer.cube import Cube, parse_cube
from voila_apps.viewer.files import checked_path, kind_of, siblings
from voila_apps.viewer.page import page_data, script_json
from voila_apps.viewer.trajectory import frame_offsets, parse_frame

HERE = Path(__file__).resolve().parent
MAX_CUBE_BYTES = 1 << 30
LISTED_MOST = 200
LISTED_DEPTH = 6
LISTED_FOLDERS = 5000  # a home of many small folders is listed in part, not for minutes


def plotly_js_folder() -> str:
    """plotly.js as the plotly package ships it, found without importing plotly."""
    spec = importlib.util.find_spec("plotly")
    return str(Path(spec.submodule_search_locations[0]) / "package_data")


@lru_cache(maxsize=4)
def _cube(path: str, size: int, mtime_ns: int) -> Cube:
    if size > MAX_CUBE_BYTES:
        raise FieldError("path", f"the cube file has {size / 2**20:,.0f} MiB; at most 1 GiB")
    with open(path, "rb") as f:
        return parse_cube(f.read())


@lru_cache(maxsize=8)
def _offsets(path: str, size: int, mtime_ns: int) -> tuple[int, ...]:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return tuple(frame_offsets(data))


def _stamp(path: str) -> tuple[str, int, int]:
    """The file and its size and change time: a cached parse is used only while they hold."""
    stat = os.stat(path)
    return path, stat.st_size, stat.st_mtime_ns


def cube_scene(path: str, iso: float | None) -> dict:
    cube = _cube(*_stamp(path))
    default_iso = scene.default_iso(cube)
    return {
        "kind": "cube",
        "comment": cube.comment,
        "signed": cube.signed,
        "shape": list(cube.values.shape),
        "default_iso": default_iso,
        "molecule": scene.molecule(cube),
        **scene.isosurfaces(cube, default_iso if iso is None else iso),
        "fields": siblings(os.listdir(os.path.dirname(path))),
    }


def cube_slice(path: str, axis: str, index: int | None) -> dict:
    cube = _cube(*_stamp(path))
    if index is None and axis in scene.AXES:
        index = cube.values.shape[scene.AXES.index(axis)] // 2
    return scene.grid_slice(cube, axis, -1 if index is None else index)


def trajectory_frame(path: str, number: int | None, colour: str) -> dict:
    offsets = _offsets(*_stamp(path))
    if not offsets:
        raise FieldError("path", "the dump has no complete frame yet")
    number = len(offsets) - 1 if number is None else number
    if not 0 <= number < len(offsets):
        raise FieldError("frame", f"a frame from 0 to {len(offsets) - 1}; got {number}")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        end = offsets[number + 1] if number + 1 < len(offsets) else len(data)
        frame = parse_frame(data[offsets[number] : end])
    return {
        "kind": "trajectory",
        "frame": number,
        "frames": len(offsets),
        **scene.frame_scene(frame, colour),
    }


def listing(root: str) -> list[str]:
    """Files the viewer opens below ``root``, newest first, skipping hidden folders."""
    found: list[tuple[float, str]] = []
    for visited, (folder, folders, names) in enumerate(os.walk(root)):
        if visited >= LISTED_FOLDERS:
            break
        depth = os.path.relpath(folder, root).count(os.sep)
        folders[:] = [] if depth >= LISTED_DEPTH else [d for d in folders if not d.startswith(".")]
        for name in names:
            if kind_of(name):
                path = os.path.join(folder, name)
                try:
                    found.append((os.stat(path).st_mtime, os.path.relpath(path, root)))
                except OSError:
                    continue
        if len(found) >= LISTED_MOST:
            break
    return [path for _, path in sorted(found, reverse=True)]


class ViewerHandler(ExtensionHandlerJinjaMixin, ExtensionHandlerMixin, JupyterHandler):
    auth_resource = "contents"

    @property
    def root(self) -> str:
        return self.settings["server_root_dir"]

    def query_number(self, name: str, kind: type) -> float | int | None:
        raw = self.get_query_argument(name, "")
        if raw == "":
            return None
        try:
            return kind(raw)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise FieldError(name, f"{what}; got {raw[:40]!r}") from None


class PageHandler(ViewerHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        relative = self.get_query_argument("path", "")
        self.set_header("Cache-Control", "no-store")
        if not relative:
            files = await asyncio.to_thread(listing, self.root)
            self.finish(self.render_template("viewer-list.html", files=files))
            return
        try:
            checked_path(self.root, relative)  # refused here, before any page is drawn
        except FieldError as e:
            self.set_status(404 if "does not exist" in e.reason else 400)
            self.finish(self.render_template("viewer-list.html", files=[], error=e.reason))
            return
        page = page_data(relative, self.base_url, self.xsrf_token.decode("ascii"))
        self.finish(self.render_template("viewer.html", page=page, page_json=script_json(page)))


class SceneHandler(ViewerHandler):
    """``viewer/api/scene`` (a cube's surfaces, or a dump's frame) and ``viewer/api/slice``."""

    @web.authenticated
    @authorized
    async def get(self, what: str) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        relative = self.get_query_argument("path", "")
        try:
            path = checked_path(self.root, relative)
            if what == "slice":
                axis = self.get_query_argument("axis", "z")
                answer = await asyncio.to_thread(
                    cube_slice, path, axis, self.query_number("index", int)
                )
            elif kind_of(relative) == "cube":
                answer = await asyncio.to_thread(cube_scene, path, self.query_number("iso", float))
            else:
                colour = self.get_query_argument("colour", "type")
                number = self.query_number("frame", int)
                answer = await asyncio.to_thread(trajectory_frame, path, number, colour)
        except FieldError as e:
            self.set_status(400)
            self.finish(json.dumps({"field": e.field, "message": e.reason}))
            return
        self.finish(json.dumps(answer, separators=(",", ":")))


class ViewerExtension(ExtensionAppJinjaMixin, ExtensionApp):
    name = "corehour_viewer"
    load_other_extensions = True

    @default("static_paths")
    def _plotly_beside_ours(self) -> list[str]:
        return [str(HERE / "static"), plotly_js_folder()]

    @default("template_paths")
    def _our_templates(self) -> list[str]:
        return [str(HERE / "templates")]

    def initialize_handlers(self) -> None:
        self.handlers.extend(
            [
                (r"/viewer/?", PageHandler),
                (r"/viewer/api/(scene|slice)", SceneHandler),
            ]
        )


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": __name__, "app": ViewerExtension}]
