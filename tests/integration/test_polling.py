"""Job states come from one squeue per cluster per cycle, however many servers run."""

import os
import re
import signal
import time

from tests.harness import slurm


def job_info_rpcs(cluster):
    text = slurm(cluster, "sdiag").stdout
    by_type = text.split("Remote Procedure Call statistics by message type", 1)[1]
    by_type = by_type.split("Remote Procedure Call statistics by user", 1)[0]
    return sum(
        int(n) for n in re.findall(r"REQUEST_JOB_INFO\w*\s*\(\s*\d+\)\s+count:(\d+)", by_type)
    )


def test_four_servers_cost_one_job_query_per_cycle(portal, tokens):
    servers = [("chtest1", ""), ("chtest1", "b"), ("chtest2", ""), ("chtest3", "")]
    portal.start_and_wait(servers, tokens, cluster="alpha")
    cycle = portal.site["hub"]["poll_interval"]
    time.sleep(cycle)  # let every server settle into the regular cycle

    # The billing meter reads squeue too (once per cluster per metering cycle); paused for
    # the count, so that only the spawners' status queries are measured.
    meter = portal.billing_service_pid()
    os.kill(meter, signal.SIGSTOP)
    try:
        slurm("alpha", "sdiag", "-r")
        time.sleep(cycle * 3)
        queries = job_info_rpcs("alpha")
    finally:
        os.kill(meter, signal.SIGCONT)

    # Three cycles: three shared queries (one more if a cycle boundary falls inside the
    # window). Stock batchspawner would make one per server per cycle: twelve.
    assert 1 <= queries <= 4, f"{queries} job queries in 3 cycles with 4 servers"
    for user, name in servers:
        assert portal.server_model(user, name)["ready"]
