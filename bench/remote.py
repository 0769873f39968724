"""Remote-centre benchmarks: servers on gamma (reached over ssh) against local ones, and the
cost of watching them, in one run.

    /opt/corehour/hub/bin/python -m bench.remote [--runs 20] [--servers 10]

Needs what `./corehour test` sets up, gamma included (deploy/gamma.sh).

* ``spawn_latency_remote``: p50 seconds from the start request to a ready server, on gamma
  over ssh against beta on this host, alternating, from one portal.
* ``remote_poll_cost``: per poll cycle with ``--servers`` running on gamma, the Slurm job
  queries gamma's slurmctld served (sdiag), the ssh sessions gamma's sshd opened, and the new
  ssh handshakes (its log). Ours is the portal's status board. The baseline is stock
  batchspawner 1.3.0's poll, as JupyterHub runs it every poll interval for each server: its
  own command, ``exec_prefix + batch_query_cmd`` formatted by batchspawner's own
  ``format_template`` and run through a shell as its ``run_command`` does, with the same
  exec_prefix as ours (the ssh command line of centre/slurm_cli.ssh_argv, shared connection
  included) followed by the sudo prefix. Its jobs are ours, queried by id.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from batchspawner.batchspawner import format_template

from bench.report import write_result
from centre.site import SshTransport
from centre.slurm_cli import ssh_argv
from tests.gamma import GAMMA_SLURM_CONF, LOGIN_ACCOUNT, gamma_site, on_gamma
from tests.harness import TEST_ADMIN, Portal, ensure_users

PORT = 29500
POLL_SECONDS = 10.0
CYCLES = 3
SSHD_LOG = Path("/var/log/corehour/gamma-sshd.log")
# batchspawner 1.3.0's SlurmSpawner.batch_query_cmd, "squeue -h -j {job_id} -o '%T %B'",
# quoted once more, as a site must when its exec_prefix is ssh: the remote shell splits the
# command line again, and the stock one fails there ("Unrecognized option: %B").
STOCK_QUERY = "squeue -h -j {job_id} -o \"'%T %B'\""


def spawn_seconds(portal: Portal, user: str, token: str, cluster: str, pause: float) -> float:
    # slurmctld allocates on its own once-a-second tick: a random pause before each request
    # spreads the requests over the tick's phase instead of landing on the same one each time.
    time.sleep(pause)
    started = time.monotonic()
    reply = portal.start_server(user, token, cluster=cluster, profile="cpu", cores=1, memory_gb=2)
    if reply.status_code not in (201, 202):
        raise RuntimeError(f"{user} on {cluster}: {reply.status_code} {reply.text[:200]}")
    portal.wait_ready(user, timeout=120)
    seconds = time.monotonic() - started
    portal.stop_server(user)
    portal.wait_gone(user, timeout=60)
    return seconds


def sshd_counts() -> tuple[int, int]:
    """(handshakes, sessions) in gamma's sshd log so far."""
    text = SSHD_LOG.read_text(errors="replace")
    return text.count(f"Accepted publickey for {LOGIN_ACCOUNT}"), text.count("Starting session")


def job_queries() -> int:
    """Job-information RPCs gamma's slurmctld served since the last `sdiag -r`."""
    text = on_gamma("sdiag").stdout
    section = text.split("Remote Procedure Call statistics by message type", 1)[1]
    section = section.split("Remote Procedure Call statistics by user", 1)[0]
    return sum(
        int(n) for n in re.findall(r"REQUEST_JOB_INFO\w*\s*\(\s*\d+\)\s+count:(\d+)", section)
    )


def close_shared_connections() -> None:
    """Shared connections opened before gamma's sshd logged sessions would hide them."""
    for socket in Path(SshTransport(host="gamma", user=LOGIN_ACCOUNT).control_dir).iterdir():
        subprocess.run(["ssh", "-S", str(socket), "-O", "exit", "gamma"], capture_output=True)


def measure(window: float, during=None) -> dict:
    """Queries, sessions and handshakes over ``window`` seconds (our own reads excluded)."""
    on_gamma("sdiag", "-r")
    handshakes, sessions = sshd_counts()
    if during is None:
        time.sleep(window)
    else:
        during(window)
    handshakes_after, sessions_after = sshd_counts()
    queries = job_queries()  # after the counts: its own session is not counted
    cycles = window / POLL_SECONDS
    return {
        "queries": queries / cycles,
        "sessions": (sessions_after - sessions) / cycles,
        "handshakes": (handshakes_after - handshakes) / cycles,
    }


def stock_polls(job_ids: dict[str, str], exec_prefix: str, window: float) -> None:
    """What JupyterHub does with batchspawner each poll interval: poll every server."""

    async def poll(user: str, job_id: str) -> None:
        subvars = {"username": user, "job_id": job_id}
        cmd = " ".join(
            (format_template(exec_prefix, **subvars), format_template(STOCK_QUERY, **subvars))
        )
        proc = await asyncio.create_subprocess_shell(
            cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        await proc.communicate()

    async def cycles() -> None:
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
            await asyncio.gather(*(poll(u, j) for u, j in job_ids.items()))

    asyncio.run(cycles())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--servers", type=int, default=10)
    args = parser.parse_args()
    users = [f"chbench{i:02d}" for i in range(1, args.servers + 1)]
    ensure_users(*users, TEST_ADMIN)
    close_shared_connections()
    with tempfile.TemporaryDirectory(prefix="corehour-bench-") as tmp:
        site = gamma_site(PORT, Path(tmp))
        site["hub"]["poll_interval"] = POLL_SECONDS
        site["billing"]["meter_interval"] = 3600.0  # its squeue would count as polling
        portal = Portal(Path(tmp), PORT, site=site).start()
        try:
            tokens = {u: portal.user_token(u) for u in users}
            spawns = {"gamma": [], "beta": []}
            jitter = random.Random(15)
            for run in range(args.runs):
                for cluster in ("beta", "gamma") if run % 2 else ("gamma", "beta"):
                    pause = jitter.uniform(0, 1)
                    spawns[cluster].append(
                        spawn_seconds(portal, users[0], tokens[users[0]], cluster, pause)
                    )
            print("spawn seconds:", spawns)

            for user in users:
                reply = portal.start_server(
                    user, tokens[user], cluster="gamma", profile="cpu", cores=1, memory_gb=2
                )
                assert reply.status_code in (201, 202), reply.text
            job_ids = {u: portal.wait_ready(u, timeout=180)["state"]["job_id"] for u in users}
            time.sleep(POLL_SECONDS)  # the board's cycle is running
            ours = measure(CYCLES * POLL_SECONDS)
            transport = SshTransport(host="gamma", user=LOGIN_ACCOUNT)
            exec_prefix = shlex.join(ssh_argv(transport)) + (
                f" sudo -n -u {{username}} env SLURM_CONF={GAMMA_SLURM_CONF}"
            )
            with_portal = measure(
                CYCLES * POLL_SECONDS, lambda w: stock_polls(job_ids, exec_prefix, w)
            )
            # The portal keeps watching its servers meanwhile: its own share is taken out.
            stock = {k: with_portal[k] - ours[k] for k in ours}
            print("ours:", ours, "stock:", stock)
        finally:
            portal.stop_all(users)
            portal.stop()
    gamma_p50, beta_p50 = (statistics.median(spawns[c]) for c in ("gamma", "beta"))
    write_result(
        "spawn_latency_remote",
        f"p50 seconds from start request to a ready server over {args.runs} spawns each",
        "s",
        gamma_p50,
        beta_p50,
        ours_is="gamma, another centre reached over ssh (deploy/gamma.sh)",
        baseline_is="beta, a cluster on the hub host",
        target="ratio <= 1.25",
        runs={c: [round(s, 3) for s in v] for c, v in spawns.items()},
    )
    write_result(
        "remote_poll_cost",
        f"Slurm job queries per poll cycle with {args.servers} running servers on gamma "
        f"(poll every {POLL_SECONDS:g} s, counted over {CYCLES} cycles)",
        "queries per cluster per cycle",
        ours["queries"],
        stock["queries"],
        ssh_sessions_per_cycle={"ours": ours["sessions"], "baseline": stock["sessions"]},
        new_ssh_handshakes_per_cycle={
            "ours": ours["handshakes"],
            "baseline": stock["handshakes"],
        },
        baseline_is="stock batchspawner 1.3.0's poll command per server, with the same "
        "exec_prefix (ssh with a shared connection)",
        target="ours <= 1 query per cluster and 0 new ssh handshakes",
    )


if __name__ == "__main__":
    main()
