"""The admins' cluster overview, from what sinfo and squeue said."""

from centre.slurm_json import JobInfo, NodeInfo
from extensions.monitoring.overview import cluster_view, network_view, wait_in_words

NOW = 1_800_000_000


def job(job_id, state, submitted_ago=0):
    return JobInfo(job_id, state, "", "ann", "cpu", "", None, NOW - submitted_ago, 1)


NODES = [
    NodeInfo("n1", "idle", ("cpu",), 32, 0),
    NodeInfo("n2", "mixed", ("cpu", "gpu"), 32, 8),
    NodeInfo("n3", "drained", ("gpu",), 16, 0),
]
JOBS = {
    "1": job("1", "RUNNING"),
    "2": job("2", "PENDING", submitted_ago=600),
    "3": job("3", "PENDING", submitted_ago=60),
    "4": job("4", "PENDING", submitted_ago=7200),
    "5": job("5", "COMPLETED"),
}


def test_a_cluster_by_node_state_partition_queue_and_use():
    view = cluster_view("alpha", NODES, JOBS, NOW)
    assert view.nodes_by_state == {"idle": 1, "mixed": 1, "drained": 1}
    assert view.partitions == {"cpu": {"idle": 1, "mixed": 1}, "gpu": {"mixed": 1, "drained": 1}}
    assert (view.cpus, view.cpus_in_use) == (80, 8)
    assert view.use_percent == 10.0
    assert (view.running, view.pending) == (1, 3)
    assert (view.longest_wait_s, view.median_wait_s) == (7200, 600)


def test_the_network_adds_up_its_clusters():
    alpha = cluster_view("alpha", NODES, JOBS, NOW)
    beta = cluster_view("beta", [NodeInfo("b1", "idle", ("cpu",), 32, 32)], {}, NOW)
    down = cluster_view("gamma", None, None, NOW, error="ssh to gamma failed: timed out")
    total = network_view([alpha, beta, down])
    assert total.nodes_by_state == {"idle": 2, "mixed": 1, "drained": 1}
    assert (total.cpus, total.cpus_in_use, total.pending) == (112, 40, 3)
    assert total.longest_wait_s == 7200
    assert down.error and down.cpus == 0


def test_waits_in_words():
    assert [wait_in_words(s) for s in (5, 600, 7200)] == ["5 s", "10 min", "2.0 h"]
