"""Running Slurm commands as the person, from their app server (this process is theirs).

One cluster at a time, through the kernel's command line (its SLURM_CONF or its exec
prefix; a cluster at another centre only from a server running there); argv lists only,
never a shell.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time

from centre.job_samples import KEY_VARIABLE, KEYS_VARIABLE, key_for_cluster
from centre.people import account_of, job_refusal
from centre.site import Site, parse_site
from centre.slurm_cli import cluster_argv
from centre.slurm_sstat import JobNow, parse_sstat, sstat_argv
from voila_apps.kit.jobs import JobState, job_state


class SlurmError(RuntimeError):
    """Slurm refused or did not answer; the message is Slurm's own, shortened."""


def load_site() -> Site:
    """The site the hub runs with, passed to every server in its environment."""
    return parse_site(json.loads(os.environ["COREHOUR_SITE_JSON"]), "COREHOUR_SITE_JSON")


def person_argv(site: Site, cluster: str, argv: list[str]) -> list[str]:
    """``argv`` on ``cluster`` as this process's person (centre/slurm_cli.py's command line).

    A cluster at another centre is reached over ssh with the portal's key, which is not the
    person's: from a server running on that cluster its Slurm is simply local; from anywhere
    else the person is told to start the app there.
    """
    target = site.clusters[cluster]
    if target.ssh is None:
        return cluster_argv(target, argv)
    if os.environ.get("SLURM_CLUSTER_NAME") == cluster:
        return cluster_argv(target.model_copy(update={"ssh": None}), argv)
    raise SlurmError(
        f"Cluster {cluster} is at another centre: start this app on {cluster} "
        "to run its jobs there."
    )


def slurm(
    site: Site,
    cluster: str,
    argv: list[str],
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """``argv`` on ``cluster`` as this process's person (:func:`person_argv`)."""
    return subprocess.run(
        person_argv(site, cluster, argv),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def batch_environment(environ: dict[str, str], cluster: str) -> dict[str, str]:
    """This server's environment, which sbatch hands to the job, with the person's usage key
    for ``cluster`` (the server's own is for the cluster it runs on), or none."""
    env = {k: v for k, v in environ.items() if k not in (KEY_VARIABLE, KEYS_VARIABLE)}
    key = key_for_cluster(environ.get(KEYS_VARIABLE, ""), cluster)
    if key:
        env[KEY_VARIABLE] = key
    return env


def refuse_unsafe_person(site: Site, uid: int | None = None) -> None:
    """An app never submits as a system account or someone outside the portal, even if its
    server somehow started as one (the spawner refuses that first; centre/people.py)."""
    name = pwd.getpwuid(os.getuid() if uid is None else uid).pw_name
    refusal = job_refusal(account_of(name), site.hub.person_rules())
    if refusal is not None:
        raise SlurmError(f"No job was submitted: {refusal}.")


def submit(site: Site, cluster: str, script: str) -> str:
    refuse_unsafe_person(site)
    environment = batch_environment(dict(os.environ), cluster)
    result = slurm(site, cluster, ["sbatch", "--parsable"], script, env=environment)
    if result.returncode != 0:
        raise SlurmError(f"Slurm on {cluster} refused the job: {result.stderr.strip()[-300:]}")
    return result.stdout.strip().splitlines()[-1].split(";")[0]


def state(site: Site, cluster: str, job_id: str) -> JobState:
    squeue = slurm(site, cluster, ["squeue", "--json", "--jobs", job_id]).stdout
    found = job_state(squeue, "", job_id, int(time.time()))
    if found.state != "UNKNOWN":
        return found
    sacct = slurm(site, cluster, ["sacct", "--json", "--jobs", job_id]).stdout
    return job_state("", sacct, job_id, int(time.time()))


def use_now(site: Site, cluster: str, job_id: str) -> JobNow | None:
    """The running job's use as Slurm last read it (sstat, as its owner), or None."""
    result = slurm(site, cluster, sstat_argv([job_id]))
    if result.returncode != 0:
        return None
    return parse_sstat(result.stdout).get(job_id)


def cancel(site: Site, cluster: str, job_id: str) -> str:
    result = slurm(site, cluster, ["scancel", job_id])
    if result.returncode != 0:
        raise SlurmError(result.stderr.strip()[-300:] or f"scancel {job_id} failed")
    return f"Cancelled job {job_id} on {cluster}."
