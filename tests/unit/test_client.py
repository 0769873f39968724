"""corehour-client against a small local HTTP server that plays the portal."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from client.api import JUPYTERHUB_ROUTES, ROUTES, Portal
from client.cli import main
from tests.harness import free_port

pytestmark = [pytest.mark.unit, pytest.mark.timeout(30)]  # a watch that never ends fails

REPO = Path(__file__).resolve().parents[2]
JOB_PATH = "/hub/api/corehour/jobs/beta/100003"
TOKEN = "s3cret"


class FakePortal(BaseHTTPRequestHandler):
    """Answers (method, path) with the next of its scripted replies; the last one repeats."""

    answers: dict[tuple[str, str], list[tuple[int, object]]] = {}
    seen: list[tuple[str, str, str, object]] = []

    def do_GET(self):
        self.answer()

    def do_POST(self):
        self.answer()

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.seen.append(
            (self.command, self.path, self.headers["Authorization"], json.loads(raw or "null"))
        )
        replies = self.answers.get((self.command, self.path), [(404, {"message": "no route"})])
        status, reply = replies.pop(0) if len(replies) > 1 else replies[0]
        data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_portal(tmp_path, monkeypatch):
    """The fake portal's URL, with a sign-in saved for it and a clean environment."""
    for name in ("COREHOUR_URL", "COREHOUR_TOKEN", "COREHOUR_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "corehour" / "client.json"
    monkeypatch.setenv("COREHOUR_CLIENT_CONFIG", str(config))
    FakePortal.answers, FakePortal.seen = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), FakePortal)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    yield url
    server.shutdown()
    server.server_close()


@pytest.fixture
def signed_in(fake_portal, tmp_path):
    config = tmp_path / "corehour" / "client.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"url": fake_portal, "token": TOKEN}))
    return fake_portal


def answer(method: str, path: str, *replies: tuple[int, object]) -> None:
    FakePortal.answers[(method, path)] = list(replies)


def job(state: str, **values) -> dict:
    ended = state not in ("PENDING", "RUNNING")
    base = {"cluster": "beta", "job_id": "100003", "name": "train", "user": "alice"}
    return {**base, "partition": "cpu", "state": state, "ended": ended, **values}


def test_login_checks_the_token_and_saves_it_for_the_owner_only(fake_portal, tmp_path, capsys):
    config = tmp_path / "corehour" / "client.json"
    answer("GET", "/hub/api/user", (200, {"name": "alice", "kind": "user"}))
    assert main(["login", "--url", fake_portal + "/", "--token", TOKEN]) == 0
    assert capsys.readouterr().out == f"signed in to {fake_portal} as alice\n"
    assert FakePortal.seen == [("GET", "/hub/api/user", f"token {TOKEN}", None)]
    assert json.loads(config.read_text()) == {"url": fake_portal, "token": TOKEN}
    assert config.stat().st_mode & 0o777 == 0o600
    assert config.parent.stat().st_mode & 0o777 == 0o700

    config.chmod(0o644)  # a file left readable by an older copy is closed on the next login
    assert main(["login", "--url", fake_portal, "--token", "n3w"]) == 0
    assert config.stat().st_mode & 0o777 == 0o600
    assert json.loads(config.read_text())["token"] == "n3w"


def test_login_reads_a_piped_token_and_saves_nothing_the_portal_refuses(
    fake_portal, tmp_path, monkeypatch, capsys
):
    answer("GET", "/hub/api/user", (401, {"status": 401, "message": "this API token is not valid"}))
    monkeypatch.setattr(sys, "stdin", io.StringIO("typo\n"))
    assert main(["login", "--url", fake_portal]) == 3
    assert FakePortal.seen[0][2] == "token typo"
    assert "this API token is not valid" in capsys.readouterr().err
    assert not (tmp_path / "corehour" / "client.json").exists()


def test_without_a_sign_in_a_command_says_to_log_in_first(fake_portal, capsys):
    assert main(["jobs"]) == 2
    assert "run corehour-client login --url URL first" in capsys.readouterr().err
    assert FakePortal.seen == []


def test_the_environment_overrides_the_saved_sign_in(fake_portal, tmp_path, monkeypatch, capsys):
    config = tmp_path / "corehour" / "client.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"url": f"http://127.0.0.1:{free_port()}", "token": "old"}))
    monkeypatch.setenv("COREHOUR_URL", fake_portal)
    monkeypatch.setenv("COREHOUR_TOKEN", "from-env")
    answer("GET", "/hub/api/corehour/jobs", (200, {"jobs": [], "problems": []}))
    assert main(["jobs"]) == 0
    assert FakePortal.seen[0][2] == "token from-env"
    assert capsys.readouterr().out == "no jobs in the last week\n"


def test_submit_posts_the_script_and_the_given_fields_to_the_clusters_path(
    signed_in, tmp_path, capsys
):
    script = tmp_path / "train.sh"
    script.write_text("srun python train.py\n")
    output = "/home/alice/train-100003.out"
    submitted = {"cluster": "beta", "job_id": "100003", "name": "train", "output": output}
    answer("POST", "/hub/api/corehour/jobs/beta", (201, submitted))
    argv = ["submit", "--cluster", "beta", "--cores", "4", "--walltime-hours", "1.5"]
    assert main([*argv, "--name", "train", str(script)]) == 0
    body = {"script": "srun python train.py\n", "cores": 4, "walltime_hours": 1.5, "name": "train"}
    assert FakePortal.seen == [("POST", "/hub/api/corehour/jobs/beta", f"token {TOKEN}", body)]
    assert capsys.readouterr().out == f"submitted job 100003 to beta (output: {output})\n"


def test_submit_wait_follows_a_job_slurm_does_not_know_yet(signed_in, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("hostname\n"))
    submitted = {"cluster": "beta", "job_id": "100003", "name": "job", "output": "/h/job.out"}
    answer("POST", "/hub/api/corehour/jobs/beta", (201, submitted))
    answer(
        "GET",
        JOB_PATH,
        (404, {"status": 404, "message": "you have no job 100003 on beta"}),
        (200, job("COMPLETED", exit_code=0)),
    )
    assert main(["submit", "--cluster", "beta", "--wait", "--interval", "0.01", "-"]) == 0
    assert FakePortal.seen[0][3] == {"script": "hostname\n"}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "submitted job 100003 to beta (output: /h/job.out)"
    assert lines[1].endswith(" COMPLETED, exit code 0")


def test_watch_prints_a_line_each_time_the_job_moves_and_ends_0_when_it_completed(
    signed_in, capsys
):
    start = int(time.time()) + 60
    waiting = job("PENDING", reason="Resources", queue_position=2, start=start)
    answer(
        "GET",
        JOB_PATH,
        (200, waiting),
        (200, waiting),
        (200, {**waiting, "queue_position": 1}),
        (200, job("RUNNING", elapsed_s=65)),
        (200, job("COMPLETED", exit_code=0)),
    )
    assert main(["watch", "beta/100003", "--interval", "0.01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(FakePortal.seen) == 5
    assert [line[:9].count(":") for line in lines] == [2, 2, 2, 2]  # each begins HH:MM:SS
    expected_start = time.strftime("%H:%M", time.localtime(start))
    assert lines[0][9:].startswith("PENDING (Resources), position 2, expected start ")
    assert expected_start in lines[0]
    assert "PENDING (Resources), position 1, " in lines[1]
    assert lines[2][9:] == "RUNNING on partition cpu of beta, elapsed 0:01:05"
    assert lines[3][9:] == "COMPLETED, exit code 0"


def test_watch_ends_1_when_the_job_failed(signed_in, capsys):
    answer("GET", JOB_PATH, (200, job("RUNNING")), (200, job("FAILED", exit_code=2)))
    assert main(["watch", "beta/100003", "--interval", "0.01"]) == 1
    assert capsys.readouterr().out.splitlines()[-1][9:] == "FAILED, exit code 2"


def test_watch_rides_out_a_cluster_that_stops_answering_for_a_while(signed_in, capsys):
    down = (503, {"status": 503, "message": "beta: slurmctld is not answering"})
    answer("GET", JOB_PATH, (200, job("RUNNING")), down, down, (200, job("COMPLETED", exit_code=0)))
    assert main(["watch", "beta/100003", "--interval", "0.01"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[-1].endswith(" COMPLETED, exit code 0")
    assert captured.err.count("slurmctld is not answering; asking again") == 1


def test_watch_of_a_job_it_never_saw_ends_at_the_first_refusal(signed_in, capsys):
    answer("GET", JOB_PATH, (503, {"status": 503, "message": "beta: slurmctld is down"}))
    assert main(["watch", "beta/100003", "--interval", "0.01"]) == 7
    assert len(FakePortal.seen) == 1
    assert "beta: slurmctld is down" in capsys.readouterr().err


def test_watch_stops_with_124_when_its_time_runs_out(signed_in, capsys):
    answer("GET", JOB_PATH, (200, job("RUNNING")))
    assert main(["watch", "beta/100003", "--interval", "0.01", "--timeout", "0.1"]) == 124
    err = capsys.readouterr().err
    assert "stopped watching after 0.1 s: job beta/100003 is RUNNING" in err
    assert "corehour-client cancel beta/100003" in err


def test_json_prints_the_reply_as_it_is_before_or_after_the_command(signed_in, capsys):
    reply = {"jobs": [{"cluster": "beta", "job_id": "7", "efficiency": None}], "problems": []}
    answer("GET", "/hub/api/corehour/jobs", (200, reply))
    assert main(["--json", "jobs"]) == 0
    assert json.loads(capsys.readouterr().out) == reply
    assert main(["jobs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == reply


def test_jobs_is_a_table_with_efficiency_where_known_and_names_a_silent_cluster(signed_in, capsys):
    row = {"cluster": "beta", "job_id": "7", "name": "train", "state": "COMPLETED"}
    jobs = [
        {**row, "elapsed": "2 hours", "cores": 8, "efficiency": {"cpu_percent": 87.5}},
        {**row, "job_id": "8", "elapsed": "1 minute", "cores": 1, "efficiency": None},
    ]
    answer("GET", "/hub/api/corehour/jobs", (200, {"jobs": jobs, "problems": ["alpha: down"]}))
    assert main(["jobs"]) == 0
    captured = capsys.readouterr()
    header, first, second = captured.out.splitlines()
    assert header.split() == ["CLUSTER", "JOB", "ID", "NAME", "STATE", "ELAPSED", "CORES", "CPU"]
    assert first.split() == ["beta", "7", "train", "COMPLETED", "2", "hours", "8", "87.5%"]
    assert second.split() == ["beta", "8", "train", "COMPLETED", "1", "minute", "1"]
    assert "alpha: down" in captured.err


@pytest.mark.parametrize(
    ("status", "body", "code", "said"),
    [
        (401, {"status": 401, "message": "this API token is not valid"}, 3, "not valid"),
        (
            403,
            {"status": 403, "message": "needs scope custom:corehour:jobs"},
            4,
            "custom:corehour:jobs",
        ),
        (404, {"status": 404, "message": "you have no job 100003 on beta"}, 5, "no job 100003"),
        (400, {"status": 400, "message": "is empty", "field": "script"}, 6, "script: is empty"),
        (402, {"status": 402, "message": "u-alice has 0.00 credits"}, 6, "0.00 credits"),
        (503, {"status": 503, "message": "beta: slurmctld is down"}, 7, "slurmctld is down"),
        (502, b"<html>Bad Gateway</html>", 7, "HTTP 502 Bad Gateway"),
    ],
)
def test_a_refusal_has_its_exit_code_and_the_portals_words_on_stderr(
    signed_in, tmp_path, capsys, status, body, code, said
):
    (tmp_path / "job.sh").write_text("true\n")
    answer("POST", "/hub/api/corehour/jobs/beta", (status, body))
    assert main(["submit", "--cluster", "beta", str(tmp_path / "job.sh")]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("corehour-client: ")
    assert said in captured.err


def test_a_portal_that_does_not_listen_is_unavailable(fake_portal, capsys):
    dead = f"http://127.0.0.1:{free_port()}"
    assert main(["--url", dead, "--token", TOKEN, "balance"]) == 7
    assert f"cannot reach the portal at {dead}: " in capsys.readouterr().err


def test_cancel_asks_first_and_a_pipe_cannot_answer(signed_in, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    assert main(["cancel", "beta/100003"]) == 2
    assert "add --yes" in capsys.readouterr().err
    assert FakePortal.seen == []


def test_cancel_yes_cancels_without_asking(signed_in, capsys):
    answer("POST", JOB_PATH + "/cancel", (202, {"cluster": "beta", "job_id": "100003"}))
    assert main(["cancel", "--yes", "beta/100003"]) == 0
    assert [(m, p) for m, p, *_ in FakePortal.seen] == [("POST", JOB_PATH + "/cancel")]
    assert "cancelling job 100003 on beta" in capsys.readouterr().out


@pytest.mark.parametrize("ref", ["beta", "beta/12a", "Beta/1", "beta/1/2"])
def test_a_job_that_is_not_cluster_slash_id_is_a_usage_error(signed_in, capsys, ref):
    assert main(["output", ref]) == 2
    assert "argument CLUSTER/ID" in capsys.readouterr().err
    assert FakePortal.seen == []


@pytest.mark.parametrize(("text", "printed"), [("a\nb\n", "a\nb\n"), ("50%", "50%\n")])
def test_output_prints_the_text_as_it_is_ending_in_one_newline(signed_in, capsys, text, printed):
    reply = {"path": "/h/train.out", "state": "RUNNING", "text": text, "truncated": False}
    answer("GET", JOB_PATH + "/output", (200, reply))
    assert main(["output", "beta/100003"]) == 0
    assert capsys.readouterr().out == printed


def test_balance_lists_each_account_with_what_is_available(signed_in, capsys):
    account = {"name": "u-alice", "display_name": "Alice", "kind": "personal", "status": "active"}
    money = {"balance": "50.00", "credit_limit": "10.00", "available": "60.00"}
    answer("GET", "/services/billing/api/me", (200, {"accounts": [{**account, **money}]}))
    assert main(["balance"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:3] == ["ACCOUNT", "NAME", "AVAILABLE"]
    assert row.split() == ["u-alice", "Alice", "60.00", "50.00", "10.00", "active"]


@pytest.mark.parametrize(("final", "word"), [(True, "final"), (False, "so far")])
def test_bill_shows_the_job_its_hours_and_whether_the_amount_is_final(
    signed_in, capsys, final, word
):
    bill = {"cluster": "beta", "job_id": "100003", "job_name": "train", "account": "u-alice"}
    money = {"core_hours": "8.0", "gpu_hours": "0.0", "amount": "12.50", "currency": "credits"}
    answer(
        "GET",
        "/services/billing/api/jobs/beta/100003/bill",
        (200, {**bill, **money, "final": final}),
    )
    assert main(["bill", "beta/100003"]) == 0
    lines = [line.split(None, 1) for line in capsys.readouterr().out.splitlines()]
    assert lines == [
        ["job", "train (beta/100003)"],
        ["account", "u-alice"],
        ["core-hours", "8.0"],
        ["GPU-hours", "0.0"],
        ["amount", f"12.50 credits ({word})"],
    ]


def test_path_parts_are_quoted_so_they_cannot_leave_their_route(fake_portal):
    answer("GET", "/hub/api/corehour/jobs/beta/1%2F..%2Fcancel", (200, {"ok": True}))
    assert Portal(fake_portal, TOKEN).job("beta", "1/../cancel") == {"ok": True}
    assert FakePortal.seen[0][:2] == ("GET", "/hub/api/corehour/jobs/beta/1%2F..%2Fcancel")


def test_every_route_but_jupyterhubs_own_is_in_the_public_api_document():
    document = yaml.safe_load((REPO / "extensions/public_api/openapi.yaml").read_text())
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert {"whoami"} == JUPYTERHUB_ROUTES
    for name, route in ROUTES.items():
        if name not in JUPYTERHUB_ROUTES:
            assert route in documented, f"{name}: {route} is not in openapi.yaml"


def test_the_saved_sign_in_is_not_readable_by_others_even_with_a_loose_umask(fake_portal, tmp_path):
    previous = os.umask(0)
    try:
        answer("GET", "/hub/api/user", (200, {"name": "alice"}))
        assert main(["login", "--url", fake_portal, "--token", TOKEN]) == 0
    finally:
        os.umask(previous)
    config = tmp_path / "corehour" / "client.json"
    assert config.stat().st_mode & 0o777 == 0o600
    assert config.parent.stat().st_mode & 0o777 == 0o700
