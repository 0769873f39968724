"""corehour-client: submit, follow and pay for batch jobs on a corehour portal from a terminal.

Sign in once with ``corehour-client login --url https://portal.example`` and a personal API
token from the portal's Token page (/hub/token); every other command uses what login saved,
unless --url/--token or COREHOUR_URL/COREHOUR_TOKEN say otherwise.  A job is named CLUSTER/ID,
e.g. beta/100003.  --json prints the portal's reply as it is, for scripts.

Exit codes:
  0    success
  1    the job failed or was cancelled (watch, submit --wait), or another failure
  2    usage: bad arguments, or not signed in (run corehour-client login --url URL first)
  3    the token is not valid (401): make a new one on the portal's Token page
  4    not allowed (403): the token lacks the scope the server names
  5    not found (404): no such job of yours, or no such cluster
  6    the portal refused what you sent (400, 402, 409, 413)
  7    the portal or a cluster is unavailable (unreachable, 5xx): try again later
  124  watch --timeout ran out before the job ended
  130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
from pathlib import Path

from client.api import SUBMISSION_FIELDS, UNREACHABLE, ApiError, Portal
from client.config import NotSignedIn, config_path, load_sign_in, save_sign_in
from client.render import balance_text, bill_text, jobs_text
from client.watch import WatchTimedOut, follow

PROG = "corehour-client"
EXIT_FOR_STATUS = {401: 3, 403: 4, 404: 5, 400: 6, 402: 6, 409: 6, 413: 6}
JOB_REF = re.compile(r"([a-z][a-z0-9_-]{0,31})/([0-9]{1,12})")
SIGN_IN_FIRST = f"not signed in: run {PROG} login --url URL first"


class UsageError(Exception):
    """Something to fix in the command line; exit code 2."""


def exit_code(status: int) -> int:
    if status == UNREACHABLE or status >= 500:
        return 7
    return EXIT_FOR_STATUS.get(status, 1)


def error_text(error: ApiError) -> str:
    text = f"{error.field}: {error.message}" if error.field else error.message
    if error.status == 401:
        text += f" (then sign in again: {PROG} login --url URL)"
    return text


def warn(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr)


def print_json(reply: object) -> None:
    print(json.dumps(reply, indent=2))


def job_ref(text: str) -> tuple[str, str]:
    match = JOB_REF.fullmatch(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not CLUSTER/ID, e.g. beta/100003")
    return match.group(1), match.group(2)


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def connect(args: argparse.Namespace) -> Portal:
    """The portal and token from --url/--token, else the environment, else login's file."""
    saved = load_sign_in(config_path())
    url = args.url or os.environ.get("COREHOUR_URL") or saved.get("url")
    token = args.token or os.environ.get("COREHOUR_TOKEN") or saved.get("token")
    if not url or not token:
        raise UsageError(SIGN_IN_FIRST)
    ca_file = args.ca_file or os.environ.get("COREHOUR_CA_FILE") or saved.get("ca_file")
    return Portal(url, token, verify_tls=ca_file or True)


def read_token(url: str) -> str:
    prompt = f"API token (make one at {url.rstrip('/')}/hub/token): "
    return getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline()


def login(args: argparse.Namespace) -> int:
    url = args.url or os.environ.get("COREHOUR_URL")
    if not url or not url.startswith(("https://", "http://")):
        raise UsageError(f"login needs the portal's address: {PROG} login --url https://portal")
    token = (args.token or os.environ.get("COREHOUR_TOKEN") or read_token(url)).strip()
    if not token:
        raise UsageError(f"no token given: make one at {url.rstrip('/')}/hub/token")
    ca_file = args.ca_file or os.environ.get("COREHOUR_CA_FILE")
    portal = Portal(url, token, verify_tls=ca_file or True)
    try:
        user = portal.whoami()
    except ApiError as e:
        if e.status != 404:
            raise
        raise ApiError(
            404,
            f"{portal.url} is not a portal's address (no /hub/api/user there); "
            "give the part before /hub",
        ) from None
    saved = {"url": portal.url, "token": portal.token}
    if ca_file:
        saved["ca_file"] = str(Path(ca_file).resolve())
    save_sign_in(config_path(), saved)
    if args.json:
        print_json(user)
    else:
        print(f"signed in to {portal.url} as {user.get('name')}")
    return 0


def jobs(args: argparse.Namespace) -> int:
    reply = connect(args).jobs()
    if args.json:
        print_json(reply)
        return 0
    print(jobs_text(reply))
    for problem in reply.get("problems") or []:
        warn(f"not shown: {problem}")
    return 0


def read_script(name: str) -> str:
    try:
        return sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read the script {name}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"the script {name} is not UTF-8 text") from None


def submit(args: argparse.Namespace) -> int:
    script = read_script(args.script)
    portal = connect(args)
    fields = {field: getattr(args, field) for field in SUBMISSION_FIELDS}
    reply = portal.submit(args.cluster, script, **fields)
    cluster, job_id = reply["cluster"], reply["job_id"]
    if args.json and not args.wait:
        print_json(reply)
    elif not args.json:
        print(f"submitted job {job_id} to {cluster} (output: {reply.get('output')})")
    return watch_job(portal, cluster, job_id, args, just_submitted=True) if args.wait else 0


def watch(args: argparse.Namespace) -> int:
    cluster, job_id = args.job
    return watch_job(connect(args), cluster, job_id, args)


def watch_job(
    portal: Portal, cluster: str, job_id: str, args: argparse.Namespace, just_submitted=False
) -> int:
    """Follows the job to its end: 0 when it COMPLETED, 1 when it ended otherwise."""
    try:
        job = follow(
            portal,
            cluster,
            job_id,
            interval=args.interval,
            timeout=args.timeout,
            just_submitted=just_submitted,
            say=(lambda line: None) if args.json else print,
            note=warn,
        )
    except WatchTimedOut as e:
        state = e.job.get("state", "unknown") if e.job else "not yet known to Slurm"
        warn(
            f"stopped watching after {args.timeout:g} s: job {cluster}/{job_id} is {state}; "
            f"it goes on (stop it with {PROG} cancel {cluster}/{job_id})"
        )
        return 124
    if args.json:
        print_json(job)
    return 0 if job.get("state") == "COMPLETED" else 1


def cancel(args: argparse.Namespace) -> int:
    cluster, job_id = args.job
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"cancel asks first and no one can answer here; to cancel job {job_id} on "
                f"{cluster} without asking, add --yes"
            )
        if not confirmed(f"Cancel job {job_id} on {cluster}? [y/N] "):
            print("not cancelled")
            return 1
    reply = connect(args).cancel(cluster, job_id)
    if args.json:
        print_json(reply)
    else:
        print(f"cancelling job {job_id} on {cluster}: Slurm is stopping it")
    return 0


def confirmed(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def output(args: argparse.Namespace) -> int:
    cluster, job_id = args.job
    reply = connect(args).output(cluster, job_id)
    if args.json:
        print_json(reply)
        return 0
    text = reply.get("text") or ""
    if reply.get("truncated"):
        warn(f"the end of {reply.get('path')} (the portal sends its last 64 KiB)")
    if not text:
        warn(f"job {job_id} has written nothing to {reply.get('path')} yet ({reply.get('state')})")
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return 0


def balance(args: argparse.Namespace) -> int:
    reply = connect(args).me()
    if args.json:
        print_json(reply)
    else:
        print(balance_text(reply))
    return 0


def bill(args: argparse.Namespace) -> int:
    reply = connect(args).bill(*args.job)
    if args.json:
        print_json(reply)
    else:
        print(bill_text(reply))
    return 0


def add_connection_options(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--url", default=default, help="the portal's address (COREHOUR_URL)")
    parser.add_argument(
        "--token",
        default=default,
        help="a personal API token; COREHOUR_TOKEN keeps it out of ps",
    )
    parser.add_argument(
        "--ca-file",
        default=default,
        metavar="PATH",
        help="the CA that signed the portal's certificate (COREHOUR_CA_FILE)",
    )
    parser.add_argument(
        "--json", action="store_true", default=default, help="print the reply's JSON as it is"
    )


def add_watch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--interval", type=positive, default=2.0, metavar="S", help="seconds between asks (2)"
    )
    parser.add_argument(
        "--timeout", type=positive, metavar="S", help="stop watching after S seconds (exit 124)"
    )


def add_submission_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", required=True, help="the cluster, as the spawn form names it")
    parser.add_argument("--profile", help="a profile of the spawn form; its limits apply")
    parser.add_argument("--cores", type=int)
    parser.add_argument("--memory-gb", type=int, metavar="N")
    parser.add_argument("--gpus", type=int)
    parser.add_argument("--walltime-hours", type=float, metavar="H")
    parser.add_argument("--tasks", type=int)
    parser.add_argument("--name", help="the job's name (job)")
    parser.add_argument("--account", help="the account to charge (your personal one)")
    parser.add_argument("--wait", action="store_true", help="then watch it to its end")
    parser.add_argument("script", metavar="SCRIPT", help='the job\'s script, or "-" for stdin')


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog="exit codes:" + __doc__.partition("Exit codes:")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_connection_options(top, default=None)
    top.set_defaults(json=False)
    # The same options after the command too; SUPPRESS keeps the top level's when absent.
    shared = argparse.ArgumentParser(add_help=False)
    add_connection_options(shared, default=argparse.SUPPRESS)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[shared], help=summary, description=summary)
        sub.set_defaults(handler=handler)
        return sub

    command("login", login, "check a token and save it with the portal's address")
    command("jobs", jobs, "your jobs of the last week on every cluster")
    submit_parser = command("submit", submit, "submit a batch script to a cluster")
    add_submission_options(submit_parser)
    add_watch_options(submit_parser)
    follow_parser = command("watch", watch, "follow a job until it ends")
    follow_parser.add_argument("job", type=job_ref, metavar="CLUSTER/ID")
    add_watch_options(follow_parser)
    cancel_parser = command("cancel", cancel, "cancel a job")
    cancel_parser.add_argument("job", type=job_ref, metavar="CLUSTER/ID")
    cancel_parser.add_argument("--yes", action="store_true", help="do not ask first")
    command("output", output, "print the end of a job's output").add_argument(
        "job", type=job_ref, metavar="CLUSTER/ID"
    )
    command("balance", balance, "your accounts and what is available in each")
    command("bill", bill, "what a job costs, final or so far").add_argument(
        "job", type=job_ref, metavar="CLUSTER/ID"
    )
    return top


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or argparse's usage error (already printed)
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2
    try:
        return args.handler(args)
    except ApiError as e:
        warn(error_text(e))
        return exit_code(e.status)
    except (UsageError, NotSignedIn) as e:
        warn(str(e))
        return 2
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
