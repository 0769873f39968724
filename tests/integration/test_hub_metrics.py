"""The hub's /hub/metrics carries each cluster's queue and nodes by state, from the status
board's own squeue and sinfo: a scraper adds no Slurm query."""

import time

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import slurm
from tests.integration.test_billing_metrics import metrics_token, series

PERSON = "chtest1"


def test_a_running_server_shows_in_its_clusters_queue_on_hub_metrics(portal):
    scraper = metrics_token(portal)
    token = portal.user_token(PERSON)
    reply = portal.start_server(PERSON, token, cluster="alpha", profile="cpu")
    assert reply.status_code in (201, 202), reply.text
    portal.wait_ready(PERSON, timeout=90)
    deadline = time.monotonic() + 100
    while True:
        reply = requests.get(
            f"{portal.url}/hub/metrics", headers={"Authorization": f"token {scraper}"}, timeout=30
        )
        assert reply.status_code == 200, reply.text[:300]
        got = series(reply.text)
        running = got.get(("corehour_cluster_jobs", (("cluster", "alpha"), ("state", "RUNNING"))))
        total = got.get(("corehour_cluster_cpus", (("cluster", "alpha"), ("kind", "total"))))
        allocated = got.get(
            ("corehour_cluster_cpus", (("cluster", "alpha"), ("kind", "allocated")))
        )
        # sinfo is asked once a minute: the first answer may predate the job's start.
        if running and total and allocated:
            break
        assert time.monotonic() < deadline, sorted(k for k in got if "corehour" in k[0])
        time.sleep(1)
    assert running >= 1
    assert got["corehour_cluster_reachable", (("cluster", "alpha"),)] == 1
    assert got["corehour_cluster_queries_total", (("cluster", "alpha"),)] >= 1
    # The nodes as Slurm counts them: alpha's one node of 32 cores, the server's core in use.
    cpus = slurm("alpha", "sinfo", "-N", "-h", "-o", "%C").stdout.split()[0]
    total_cpus = int(cpus.split("/")[3])
    nodes = {k[1][1][1]: v for k, v in got.items() if k[0] == "corehour_cluster_nodes"}
    assert sum(nodes.values()) == 1, nodes
    assert total == total_cpus == 32
    # JupyterHub's own series are still there beside ours.
    names = {family.name for family in text_string_to_metric_families(reply.text)}
    assert "jupyterhub_running_servers" in names


def test_hub_metrics_refuse_a_persons_token(portal, tokens):
    reply = requests.get(
        f"{portal.url}/hub/metrics",
        headers={"Authorization": f"token {tokens[PERSON]}"},
        timeout=30,
    )
    assert reply.status_code == 403
