"""``/hub/api/corehour/files/<cluster>``: the public API's files in the person's home on a cluster.

``GET ?path=`` lists a folder (``path`` empty: the home), ``GET .../download?path=`` sends a
file, ``PUT ?path=`` writes one from the body.  Paths are relative to the home, plain names
only (centre/home_paths.py).  Every command runs as the person through the sudo rule and the
cluster's transport (``find`` and ``stat`` through ``env``, ``tail -c +1`` to read, ``dd`` to
write: it reads the hub's pipe as it is, where ``cp /dev/stdin`` would reopen it and be refused), so a person reads and writes only what their own account may, on a
remote centre as on a local cluster.  Downloads stream; uploads are bounded by
:data:`MAX_UPLOAD` before they are read.
"""

from __future__ import annotations

import asyncio
import posixpath
import pwd
from urllib.parse import quote

from tornado import web

from centre.api_scopes import FILES
from centre.errors import FieldError
from centre.home_paths import home_path
from centre.slurm_cli import CLEAN_ENV, run_command

from .base import ApiRefused, PublicApiHandler
from .jobs import CLUSTER

MAX_UPLOAD = 64 * 1024 * 1024
MAX_DOWNLOAD = 256 * 1024 * 1024
LISTED = 1000
TIMEOUT_S = 60.0
CHUNK = 256 * 1024


def file_handlers(site) -> list[tuple[str, type, dict]]:
    return [
        (rf"/api/corehour/files/{CLUSTER}", FilesHandler, {"site": site}),
        (rf"/api/corehour/files/{CLUSTER}/download", DownloadHandler, {"site": site}),
    ]


def listing(output: str) -> list[dict]:
    """``find -printf '%y\\t%s\\t%T@\\t%f\\0'`` → entries, folders first, then by name."""
    entries = []
    for record in output.split("\0"):
        parts = record.split("\t", 3)
        if len(parts) != 4:
            continue
        kind, size, modified, name = parts
        entries.append(
            {
                "name": name,
                "type": {"d": "folder", "f": "file", "l": "link"}.get(kind, "other"),
                "size": int(size) if size.isdigit() else 0,
                "modified": int(float(modified)) if modified.replace(".", "", 1).isdigit() else 0,
            }
        )
    return sorted(entries, key=lambda e: (e["type"] != "folder", e["name"]))


@web.stream_request_body
class _FilesHandler(PublicApiHandler):
    def initialize(self, site, **_settings) -> None:
        super().initialize(site)
        self._chunks: list[bytes] = []
        self._size = 0

    def prepare(self):
        declared = self.request.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > MAX_UPLOAD:
            raise ApiRefused(413, f"a file may be at most {MAX_UPLOAD // 2**20} MB", "body")
        return super().prepare()

    def data_received(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= MAX_UPLOAD:
            self._chunks.append(chunk)

    def target(self, cluster: str, *, home_itself: bool = False) -> tuple[str, str, str]:
        """(the person, the absolute path, the path as they gave it), after the scope check."""
        person = self.person(FILES)
        self.cluster(cluster)
        try:
            relative = home_path("path", self.get_argument("path", ""), home_itself=home_itself)
        except FieldError as e:
            raise ApiRefused(400, str(e), e.field) from None
        home = pwd.getpwnam(person).pw_dir
        return person, posixpath.join(home, relative) if relative else home, relative

    def refused_by_files(self, cluster: str, relative: str, stderr: str) -> ApiRefused:
        if "No such file" in stderr:
            return ApiRefused(404, f"there is no {relative or 'home'} in your home on {cluster}")
        if "Permission denied" in stderr:
            return ApiRefused(403, f"your account may not read {relative} on {cluster}")
        return ApiRefused(503, f"{cluster}: {stderr.strip()[:300] or 'the command failed'}")


class FilesHandler(_FilesHandler):
    async def get(self, cluster: str) -> None:
        person, path, relative = self.target(cluster, home_itself=True)
        argv = [
            "env",
            "find",
            path,
            "-mindepth",
            "1",
            "-maxdepth",
            "1",
            "-printf",
            "%y\\t%s\\t%T@\\t%f\\0",
        ]
        result = await run_command(self.as_person(cluster, person, argv), timeout=TIMEOUT_S)
        if not result.ok:
            raise self.refused_by_files(cluster, relative, result.stderr)
        entries = listing(result.stdout)
        self.send(
            {
                "cluster": cluster,
                "path": relative,
                "entries": entries[:LISTED],
                "truncated": len(entries) > LISTED,
            }
        )

    async def put(self, cluster: str) -> None:
        person, path, relative = self.target(cluster)
        if self._size > MAX_UPLOAD:
            raise ApiRefused(413, f"a file may be at most {MAX_UPLOAD // 2**20} MB", "body")
        folder = posixpath.dirname(path)
        made = await run_command(
            self.as_person(cluster, person, ["mkdir", "-p", folder]), timeout=TIMEOUT_S
        )
        if not made.ok:
            raise self.refused_by_files(cluster, relative, made.stderr)
        code, stderr = await _write(
            self.as_person(cluster, person, ["env", "dd", f"of={path}", "bs=1M", "status=none"]),
            b"".join(self._chunks),
        )
        if code != 0:
            raise self.refused_by_files(cluster, relative, stderr)
        self.log.info(
            "%s wrote %s (%d bytes) on %s through the API", person, relative, self._size, cluster
        )
        self.send({"cluster": cluster, "path": relative, "size": self._size}, status=201)


class DownloadHandler(_FilesHandler):
    async def get(self, cluster: str) -> None:
        person, path, relative = self.target(cluster)
        stat = await run_command(
            self.as_person(cluster, person, ["env", "stat", "-L", "-c", "%F\t%s", path]),
            timeout=TIMEOUT_S,
        )
        if not stat.ok:
            raise self.refused_by_files(cluster, relative, stat.stderr)
        kind, _, size = stat.stdout.strip().partition("\t")
        if kind != "regular file" and kind != "regular empty file":
            raise ApiRefused(400, f"{relative} is a {kind}, not a file: list it instead", "path")
        if int(size or 0) > MAX_DOWNLOAD:
            raise ApiRefused(
                413,
                f"{relative} is larger than {MAX_DOWNLOAD // 2**20} MB: copy it with a copy "
                "between clusters or scp instead",
                "path",
            )
        name = posixpath.basename(relative)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Disposition", f"attachment; filename*=UTF-8''{quote(name)}")
        self.set_header("Content-Length", size)
        await self._stream(self.as_person(cluster, person, ["tail", "-c", "+1", path]))

    async def _stream(self, argv: list[str]) -> None:
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(CLEAN_ENV),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            while chunk := await process.stdout.read(CHUNK):
                self.write(chunk)
                await self.flush()
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()


async def _write(argv: list[str], data: bytes) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(CLEAN_ENV),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(data), TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        return 124, f"the copy did not finish within {TIMEOUT_S:g} s"
    return process.returncode or 0, err.decode(errors="replace")
