"""Run a copy between centres: the reading tar's output into the writing tar's input, through
the hub, counting the bytes (the thin shell around plan.py)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from centre.slurm_cli import CLEAN_ENV, run_command

from .plan import TransferCommands

CHUNK = 1 << 20


@dataclass
class Progress:
    """What a person sees of their copy; updated while it runs."""

    total_bytes: int = 0  # du -sb of the source; the tar stream is a little larger
    copied_bytes: int = 0
    state: str = "starting"  # starting, copying, done, failed
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None

    def as_json(self) -> dict:
        percent = (
            min(100, round(100 * self.copied_bytes / self.total_bytes)) if self.total_bytes else 0
        )
        if self.state == "done":
            percent = 100
        return {
            "state": self.state,
            "copied_bytes": self.copied_bytes,
            "total_bytes": self.total_bytes,
            "percent": percent,
            "error": self.error,
            "started": self.started,
            "finished": self.finished,
        }


async def run_copy(commands: TransferCommands, progress: Progress, timeout: float = 3600) -> None:
    """Copy; ``progress`` says how far, and why not if it fails.  Never raises."""
    try:
        await asyncio.wait_for(_copy(commands, progress), timeout)
        progress.state = "done"
    except TimeoutError:
        progress.state, progress.error = "failed", f"the copy took longer than {timeout:g} s"
    except CopyFailed as e:
        progress.state, progress.error = "failed", str(e)
    progress.finished = time.time()


class CopyFailed(RuntimeError):
    """One side of the copy refused or broke; the message is for the person."""


async def _copy(commands: TransferCommands, progress: Progress) -> None:
    size = await run_command(commands.size, timeout=120)
    if not size.ok:
        raise CopyFailed(f"the folder to copy cannot be read: {_last(size.stderr)}")
    progress.total_bytes = int(size.stdout.split()[0]) if size.stdout.split() else 0
    made = await run_command(commands.make, timeout=120)
    if not made.ok:
        raise CopyFailed(f"the destination cannot be made: {_last(made.stderr)}")
    progress.state = "copying"
    reader = await _spawn(commands.read, feeds_the_hub=True)
    writer = await _spawn(commands.write, feeds_the_hub=False)
    try:
        while chunk := await reader.stdout.read(CHUNK):
            writer.stdin.write(chunk)
            await writer.stdin.drain()
            progress.copied_bytes += len(chunk)
        writer.stdin.close()
        read_error = (await reader.stderr.read()).decode(errors="replace")
        write_error = (await writer.stderr.read()).decode(errors="replace")
        if await reader.wait() != 0:
            raise CopyFailed(f"reading the folder failed: {_last(read_error)}")
        if await writer.wait() != 0:
            raise CopyFailed(f"writing the copy failed: {_last(write_error)}")
    except (BrokenPipeError, ConnectionResetError):
        raise CopyFailed("the other side stopped taking the copy; is it reachable?") from None
    finally:
        for proc in (reader, writer):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _spawn(argv: list[str], feeds_the_hub: bool) -> asyncio.subprocess.Process:
    """The reading side writes to the hub; the writing side reads from it."""
    pipe, none = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
    return await asyncio.create_subprocess_exec(
        *argv,
        env=dict(CLEAN_ENV),
        stdin=none if feeds_the_hub else pipe,
        stdout=pipe if feeds_the_hub else none,
        stderr=pipe,
    )


def _last(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1][:300] if lines else "no message"
