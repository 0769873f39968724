"""The admins' overview at site scale: 10,000 queued jobs and 1,000 nodes, ours against stdlib JSON.

    /opt/corehour/hub/bin/python -m bench.overview_render [--runs 9]

The inputs are real captures scaled up: ``sinfo --json`` and ``squeue --all --json`` from the
test bed's alpha, with one running and one held job of root's in it, each entry copied with new
names, ids, states and submit times until there are 1,000 nodes and 10,000 jobs (a quarter
running).  Timed is what one page view does with them after Slurm answered: decode both,
build the cluster and network views (extensions/monitoring/overview.py) and render the page's
own template (extensions/templates/corehour-overview.html, inside a bare page).

- ours: the page's own path, ``parse_squeue_json`` (msgspec, only the fields it reads) and
  ``parse_sinfo_json``;
- baseline: the same views and template from ``json.loads`` of the whole squeue document, every
  field of every job built as Python objects, which is what a page without a decoder of its
  own does.

Target: ours ≤ 0.3 s.  Writes bench/results/overview_render.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import jinja2

from bench.report import write_result
from centre.slurm_json import parse_job, parse_sinfo_json, parse_squeue_json
from extensions.monitoring.overview import cluster_view, network_view, wait_in_words
from tests.harness import job_state, slurm

REPO = Path(__file__).resolve().parents[1]
NODES, JOBS = 1_000, 10_000
TARGET_S = 0.3


def alpha(*argv: str) -> str:
    return slurm("alpha", *argv).stdout


def capture() -> tuple[dict, dict]:
    """Real answers from alpha, with a running and a held job in its queue."""
    running = alpha("sbatch", "--parsable", "-o", "/dev/null", "--wrap", "sleep 120").strip()
    held = alpha("sbatch", "--parsable", "--hold", "-o", "/dev/null", "--wrap", "true").strip()
    try:
        deadline = time.monotonic() + 60
        while "RUNNING" not in alpha("squeue", "-h", "-j", running, "-o", "%T"):
            assert time.monotonic() < deadline, "the capture's job did not start on alpha"
            time.sleep(0.5)
        return json.loads(alpha("sinfo", "--json")), json.loads(alpha("squeue", "--all", "--json"))
    finally:
        alpha("scancel", running, held)


def _set_number(entry: dict, key: str, value: int) -> None:
    """Both shapes Slurm prints: plain (22.05) or {"set", "number"} (23.02 and later)."""
    if isinstance(entry.get(key), dict):
        entry[key] = {**entry[key], "set": True, "number": value}
    else:
        entry[key] = value


def scale(sinfo: dict, squeue: dict, now: int) -> tuple[str, str]:
    """1,000 nodes and 10,000 jobs copied from the captures, with their own names and states."""
    node_states = ["IDLE", "MIXED", "ALLOCATED", "ALLOCATED", "DOWN"]
    sinfo = copy.deepcopy(sinfo)
    if "nodes" in sinfo:  # 22.05: one entry per node
        template = sinfo["nodes"][0]
        sinfo["nodes"] = []
        for i in range(NODES):
            node = copy.deepcopy(template)
            node["name"] = node["hostname"] = f"n{i:04d}"
            node["state"] = node_states[i % len(node_states)].lower()
            node["partitions"] = ["cpu"] if i % 10 else ["cpu", "gpu"]
            sinfo["nodes"].append(node)
    else:  # 23.02 and later: one row per partition and state, naming its nodes
        row = sinfo["sinfo"][0]
        sinfo["sinfo"] = []
        for s, state in enumerate(node_states):
            copied = copy.deepcopy(row)
            copied["nodes"]["nodes"] = [f"n{i:04d}" for i in range(s, NODES, len(node_states))]
            copied["node"]["state"] = [state]
            sinfo["sinfo"].append(copied)
    by_state = {job_state(job): job for job in squeue["jobs"]}
    running, pending = by_state["RUNNING"], by_state["PENDING"]
    jobs = []
    for i in range(JOBS):
        job = copy.deepcopy(running if i % 4 == 0 else pending)
        _set_number(job, "job_id", 1_000_000 + i)
        _set_number(job, "submit_time", now - (i * 37) % 86_400)
        job["user_name"] = f"person{i % 500:03d}"
        jobs.append(job)
    squeue = {**squeue, "jobs": jobs}
    return json.dumps(sinfo), json.dumps(squeue)


def template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.ChoiceLoader(
            [
                # The hub's page around it is JupyterHub's; only the overview's own part is timed.
                jinja2.DictLoader({"page.html": "<html>{% block main %}{% endblock %}</html>"}),
                jinja2.FileSystemLoader(REPO / "extensions" / "templates"),
            ]
        ),
        autoescape=True,
    )
    return environment.get_template("corehour-overview.html")


def ours(sinfo_text: str, squeue_text: str, page: jinja2.Template, now: int) -> str:
    view = cluster_view("alpha", parse_sinfo_json(sinfo_text), parse_squeue_json(squeue_text), now)
    return page.render(clusters=[view], network=network_view([view]), wait_in_words=wait_in_words)


def baseline(sinfo_text: str, squeue_text: str, page: jinja2.Template, now: int) -> str:
    document = json.loads(squeue_text)
    jobs = {str(job["job_id"]): parse_job(job) for job in document["jobs"]}
    view = cluster_view("alpha", parse_sinfo_json(sinfo_text), jobs, now)
    return page.render(clusters=[view], network=network_view([view]), wait_in_words=wait_in_words)


def timed(function, *args, runs: int) -> tuple[float, str]:
    times, html = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        html = function(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times), html


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    now = int(time.time())
    sinfo_text, squeue_text = scale(*capture(), now)
    page = template()
    ours_s, ours_html = timed(ours, sinfo_text, squeue_text, page, now, runs=args.runs)
    base_s, base_html = timed(baseline, sinfo_text, squeue_text, page, now, runs=args.runs)
    assert ours_html == base_html, "ours and the baseline drew different pages"
    assert f"{JOBS * 3 // 4}" in ours_html, "the page does not show the 7,500 waiting jobs"
    write_result(
        "overview_render",
        "one overview page from Slurm's answers: decode, views, template (median)",
        "s",
        ours_s,
        base_s,
        target_s=TARGET_S,
        nodes=NODES,
        jobs=JOBS,
        squeue_json_mb=round(len(squeue_text) / 1e6, 1),
        runs=args.runs,
    )


if __name__ == "__main__":
    main()
