"""Run Slurm commands against one cluster, as argv lists and never through a shell.

A cluster is reached through its ``exec_prefix`` (e.g. ``ssh login.example.org``)
and its own ``SLURM_CONF``.  Commands that act for a person go through the
user prefix (``sudo -n -u {username}`` by default), so Slurm sees the person's
own Unix account.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .site import Cluster


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def cluster_argv(
    cluster: Cluster,
    argv: Sequence[str],
    *,
    username: str | None = None,
    user_prefix: Sequence[str] = (),
) -> list[str]:
    """The full argv that runs ``argv`` on ``cluster``, as ``username`` if given."""
    command: list[str] = []
    if username is not None:
        command += [part.format(username=username) for part in user_prefix]
    if cluster.slurm_conf:
        command += ["env", f"SLURM_CONF={cluster.slurm_conf}"]
    command += list(argv)
    if cluster.exec_prefix:
        # ssh and friends hand one string to a remote shell: quote every word.
        return [*cluster.exec_prefix, shlex.join(command)]
    return command


# Commands run as the person must not inherit the hub's environment (it holds the
# proxy's token, and a person can read the environment of their own processes).
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


async def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = 30.0,
) -> CommandResult:
    """Run ``argv``; a timeout or a missing program becomes a failed result, not an exception.

    Without ``env`` the command gets :data:`CLEAN_ENV`, never the hub's own environment.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env) if env is not None else dict(CLEAN_ENV),
            stdin=asyncio.subprocess.PIPE if input_text is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as e:
        return CommandResult(tuple(argv), 127, "", f"cannot run {argv[0]}: {e.strerror}")
    try:
        out, err = await asyncio.wait_for(
            proc.communicate(input_text.encode() if input_text is not None else None), timeout
        )
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return CommandResult(tuple(argv), 124, "", f"{argv[0]} did not answer within {timeout:g} s")
    return CommandResult(
        tuple(argv),
        proc.returncode or 0,
        out.decode(errors="replace"),
        err.decode(errors="replace"),
    )
