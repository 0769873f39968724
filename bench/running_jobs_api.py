"""``GET api/jobs/running`` for one person, with a million charge rows of other people.

    /opt/corehour/hub/bin/python -m bench.running_jobs_api [--people 2000] [--jobs 10]
        [--rows 50] [--runs 30]

Makes a fresh PostgreSQL ledger (tests.ledger_db: 127.0.0.1:5432, all migrations) and COPYs
``people`` × ``jobs`` metered jobs of ``rows`` hourly charge rows each (1,000,000 by
default) into the others' personal accounts, a fifth of the jobs still running; the person
asking has two running jobs of their own.  ANALYZE, then the billing service's real route,
``RunningHandler`` served by tornado in this process with the hub's login stood in for,
is asked over HTTP, alternating:

- ours: the handler as it is (reports.running_jobs: the person's running jobs, then only
  their charge rows);
- baseline: the same handler with 8efa8d7's ``billing_hooks/reports.py``, read from git
  (``git show 8efa8d7:billing_hooks/reports.py``) into a module that is never saved: its
  query sums the whole charge table by job before it picks the person's jobs.

Both must give the same answer.  Writes bench/results/running_jobs_api.json and drops the
database, also when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import psycopg
import requests
from sqlalchemy import text
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from bench.report import write_result
from billing_hooks.db import make_engine, session_factory
from billing_hooks.ledger import NewAccount, create_account
from billing_hooks.service import api
from billing_hooks.service.base import BaseHandler
from tests.ledger_db import drop_postgres, postgres_url

REPO = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "8efa8d7"
PERSON = "ann"
TARGET_S = 0.05
MY_ROWS = 24  # the asker's two jobs have run a day each
T0 = 1_800_000_000
CHARGE_COLUMNS = (
    "idempotency_key", "account_id", "username", "cluster", "partition", "job_id", "job_name",
    "job_start", "interval_start", "interval_end", "cpus", "gpus", "mem_mb", "cpu_seconds",
    "gpu_seconds", "mem_mb_seconds", "amount_mc", "closed",
)  # fmt: skip
JOB_COLUMNS = (
    "cluster", "job_id", "job_start", "account_id", "username", "partition", "open_from",
    "open_amount_mc", "charged_until", "finished",
)  # fmt: skip


def baseline_reports() -> types.ModuleType:
    """8efa8d7's reports.py as a module of its own, straight from git."""
    source = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{BASELINE_COMMIT}:billing_hooks/reports.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType(f"reports_{BASELINE_COMMIT}")
    sys.modules[module.__name__] = module  # its dataclasses look themselves up there
    exec(compile(source, f"{BASELINE_COMMIT}:billing_hooks/reports.py", "exec"), module.__dict__)
    return module


@dataclass(frozen=True)
class Job:
    k: int
    account_id: int
    username: str
    rows: int
    running: bool

    @property
    def job_id(self) -> str:
        return str(1_000_000 + self.k)

    @property
    def start(self) -> int:
        return T0 + self.k * 7

    def metered_row(self) -> tuple:
        end = self.start + self.rows * 3600
        return (
            "alpha", self.job_id, self.start, self.account_id, self.username, "cpu", end, 0,
            end, not self.running,
        )  # fmt: skip

    def charge_rows(self) -> Iterator[tuple]:
        for h in range(self.rows):
            begin = self.start + h * 3600
            yield (
                f"bench:alpha:{self.job_id}:{self.start}:{h}", self.account_id, self.username,
                "alpha", "cpu", self.job_id, "sim", self.start, begin, begin + 3600, 4, 0,
                16384, 14400, 0, 14400 * 16384, 200 + self.k % 7, True,
            )  # fmt: skip


def all_jobs(others: list[tuple[int, str]], mine: int, jobs: int, rows: int) -> Iterator[Job]:
    """Each other person's ``jobs`` (every fifth still running), then the asker's two."""
    k = 0
    for account_id, name in others:
        for j in range(jobs):
            k += 1
            yield Job(k, account_id, name, rows, running=j % 5 == 0)
    for _ in range(2):
        k += 1
        yield Job(k, mine, PERSON, MY_ROWS, running=True)


def load(url: str, sessions, people: int, jobs: int, rows: int) -> None:
    """Everyone's accounts, metered jobs and charge rows, COPYed in and analysed."""
    with sessions.begin() as session:
        others = [
            (create_account(session, NewAccount(f"u-{name}", "personal", name), "bench").id, name)
            for name in (f"p{i}" for i in range(people))
        ]
        mine = create_account(session, NewAccount(f"u-{PERSON}", "personal", PERSON), "bench").id
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        cursor = conn.cursor()
        with cursor.copy(f"COPY metered_job ({', '.join(JOB_COLUMNS)}) FROM STDIN") as copy:
            for job in all_jobs(others, mine, jobs, rows):
                copy.write_row(job.metered_row())
        with cursor.copy(f"COPY charge ({', '.join(CHARGE_COLUMNS)}) FROM STDIN") as copy:
            for job in all_jobs(others, mine, jobs, rows):
                for row in job.charge_rows():
                    copy.write_row(row)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


class Service:
    """RunningHandler on a tornado server in its own thread; the person is logged in."""

    def __init__(self, sessions):
        ctx = SimpleNamespace(sessions=sessions, hub=SimpleNamespace(is_admin=self._not_admin))
        self.app = web.Application([("/api/jobs/running", api.RunningHandler, {"ctx": ctx})])
        self.port = 0
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True).start()
        ready.wait(30)
        self.http = requests.Session()

    @staticmethod
    async def _not_admin(_name: str) -> bool:
        return False

    def _serve(self, ready: threading.Event) -> None:
        async def serve():
            sockets = bind_sockets(0, "127.0.0.1")
            self.port = sockets[0].getsockname()[1]
            HTTPServer(self.app).add_sockets(sockets)
            ready.set()
            await asyncio.Event().wait()

        asyncio.run(serve())

    def running(self) -> tuple[float, list]:
        started = time.perf_counter()
        reply = self.http.get(
            f"http://127.0.0.1:{self.port}/api/jobs/running",
            headers={"Authorization": "token bench"},
            timeout=300,
        )
        seconds = time.perf_counter() - started
        reply.raise_for_status()
        return seconds, reply.json()["jobs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=10, help="metered jobs per person")
    parser.add_argument("--rows", type=int, default=50, help="charge rows per job")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    baseline_module = baseline_reports()

    url = postgres_url()
    engine = make_engine(url)
    try:
        sessions = session_factory(engine)
        started = time.perf_counter()
        load(url, sessions, args.people, args.jobs, args.rows)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM charge")).scalar_one()
            server = conn.exec_driver_sql("SHOW server_version").scalar()
        print(f"loaded {rows:,} charge rows in {time.perf_counter() - started:.1f} s")

        login = mock.patch.object(BaseHandler, "get_current_user", lambda _h: {"name": PERSON})
        with login:
            service = Service(sessions)
            sides = {"ours": api.reports, "baseline": baseline_module}
            times: dict[str, list[float]] = {side: [] for side in sides}
            answers = {}
            for run in range(args.runs + 1):  # the first run of each side warms up
                for side in sides if run % 2 == 0 else reversed(list(sides)):
                    with mock.patch.object(api, "reports", sides[side]):
                        seconds, answers[side] = service.running()
                    if run:
                        times[side].append(seconds)
        if answers["ours"] != answers["baseline"] or len(answers["ours"]) != 2:
            raise SystemExit(f"the two queries disagree: {answers}")
        ours_s = statistics.median(times["ours"])
        write_result(
            "running_jobs_api",
            f"GET api/jobs/running for one person (median over HTTP), {rows:,} charge rows, all "
            "but 48 in other accounts, PostgreSQL",
            "s",
            ours_s,
            statistics.median(times["baseline"]),
            charge_rows=rows,
            people=args.people + 1,
            target=f"≤ {TARGET_S} s",
            within_target=ours_s <= TARGET_S,
            ours_p95=round(sorted(times["ours"])[int(0.95 * len(times["ours"])) - 1], 4),
            ours_all=[round(s, 4) for s in times["ours"]],
            baseline_all=[round(s, 4) for s in times["baseline"]],
            baseline_is=f"the same handler with {BASELINE_COMMIT}'s reports.running_jobs",
            machine=f"{os.cpu_count()} CPUs, PostgreSQL {server}, server settings as installed",
        )
    finally:
        engine.dispose()
        drop_postgres(url)


if __name__ == "__main__":
    main()
