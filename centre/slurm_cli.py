"""Run Slurm commands against one cluster, as argv lists and never through a local shell.

A cluster is reached with its own ``SLURM_CONF``, on this host or, for another centre, over
ssh to its login node (:func:`ssh_argv`) or another ``exec_prefix``: there one string goes
to the remote shell, so every word is quoted.  Commands that act for a person go through the
user prefix (``sudo -n -u {username}`` by default), so Slurm sees the person's
own Unix account.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .site import Cluster, SshTransport


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


# How corehour runs a command as a person (the sudo rule, deploy/sudoers/corehour.in), for
# cluster_argv's user_prefix.
AS_PERSON = ("sudo", "-n", "-u", "{username}")


def ssh_argv(ssh: SshTransport) -> list[str]:
    """ssh to the login node, trusting only the pinned host key and the site key.

    ``-F none``: no ssh_config of this host or account changes what is trusted.  The
    connection is shared (ControlMaster) by every command of this account to that login
    node, so only the first of a poll cycle pays for a handshake.
    """
    options = {
        "BatchMode": "yes",
        "IdentitiesOnly": "yes",
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": ssh.known_hosts,
        "GlobalKnownHostsFile": "/dev/null",
        "ConnectTimeout": str(ssh.connect_timeout_seconds),
        # A dead link is noticed within ~15 s instead of TCP's minutes.
        "ServerAliveInterval": "5",
        "ServerAliveCountMax": "3",
        "ControlMaster": "auto",
        "ControlPath": f"{ssh.control_dir}/%C",
        "ControlPersist": str(ssh.control_persist_seconds),
        "LogLevel": "ERROR",
    }
    if not ssh.control_persist_seconds:
        # Not even another process's connection: ControlMaster=no would still use one.
        options.update(ControlMaster="no", ControlPath="none", ControlPersist="no")
    argv = ["ssh", "-F", "none", "-i", ssh.identity_file, "-p", str(ssh.port), "-l", ssh.user]
    for name, value in options.items():
        argv += ["-o", f"{name}={value}"]
    return [*argv, "--", ssh.host]


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
    if cluster.ssh:
        return [*ssh_argv(cluster.ssh), shlex.join(command)]
    if cluster.exec_prefix:
        # ssh and friends hand one string to a remote shell: quote every word.
        return [*cluster.exec_prefix, shlex.join(command)]
    return command


def accounting_argv(name: str, cluster: Cluster, argv: Sequence[str]) -> list[str]:
    """The argv that runs an accounting command (``sacct``, ``sacctmgr``) for cluster
    ``name`` where its records are kept (``Cluster.accounting``).

    Its own slurmdbd: through the cluster's transport, as any of its commands.  The shared
    one: on the hub host, with ``sacct --clusters NAME`` (sacctmgr's arguments already name
    the cluster), so a remote cluster that reports to the hub host's slurmdbd costs no trip.
    """
    if cluster.accounting_source == "own":
        return cluster_argv(cluster, argv)
    command = list(argv)
    if command and command[0] == "sacct":
        command.insert(1, f"--clusters={name}")
    conf = cluster.accounting_slurm_conf or (None if cluster.remote else cluster.slurm_conf)
    return [*(["env", f"SLURM_CONF={conf}"] if conf else []), *command]


def control_dir_problem(name: str, ssh: SshTransport, uid: int | None = None) -> str | None:
    """What is wrong with a cluster's ``ssh.control_dir``, or None.

    Anyone who can reach a shared connection's socket runs commands as the portal's account
    at that centre, which may act as every person there: the folder must be this account's
    alone.
    """
    key = f"clusters.{name}.ssh.control_dir"
    try:
        info = os.stat(ssh.control_dir)
    except OSError as e:
        return f"{key}: {ssh.control_dir} cannot be used ({e.strerror}); make it, mode 0700"
    uid = os.getuid() if uid is None else uid
    if not stat.S_ISDIR(info.st_mode):
        return f"{key}: {ssh.control_dir} is not a folder"
    if info.st_mode & 0o077:
        return (
            f"{key}: {ssh.control_dir} is open to others (mode {info.st_mode & 0o777:o}); "
            "it must be 0700, or anyone could use the portal's connection to that centre"
        )
    if uid != 0 and info.st_uid != uid:
        return f"{key}: {ssh.control_dir} belongs to uid {info.st_uid}, not to this account"
    return None


# ssh's own exit status: the command never ran, the connection failed.
SSH_FAILED = 255


def failure_reason(cluster: Cluster, result: CommandResult) -> str:
    """Why a command on ``cluster`` failed, for people: ssh's failures name the login node."""
    lines = result.stderr.strip().splitlines()
    if cluster.ssh and result.returncode == SSH_FAILED:
        # ssh's last line is the cause ("connect to host gamma port 22: Network is
        # unreachable"); earlier ones are about the shared connection it tried first.
        cause = lines[-1].removeprefix("ssh: ") if lines else "no message"
        return f"ssh to {cluster.ssh.host} failed: {cause}"
    return (lines[-1] if lines else "") or f"exit status {result.returncode}"


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
