"""The production profile installed on this machine next to the demo, by the command a centre
runs (``./corehour install``): its own ports, PostgreSQL with a password, TLS from a test CA,
and the hub as the corehour account.  systemd is not PID 1 here, so each unit's ExecStart is
started as its User=, exactly as the unit says (tests/units.py); Chromium, trusting the test
CA, then logs in over HTTPS, spawns a server and reads My usage."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import stat
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import requests
import yaml
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import make_url

from tests.browser.helpers import chromium, shot
from tests.harness import DEPLOY, REPO, TEST_PASSWORD, alive_jobs, ensure_users, slurm
from tests.units import parse_unit, read_environment_file, start

pytestmark = pytest.mark.deploy

INSTANCE = "chdeploy"
HTTPS, REDIRECT, HUB, API, BILLING = 29443, 29080, 29081, 29001, 29091
URL = f"https://127.0.0.1:{HTTPS}"
ETC = Path("/etc") / INSTANCE
UNITS = [Path(f"/etc/systemd/system/{INSTANCE}-{name}.service") for name in ("proxy", "hub")]
PERSON = "chprod1"
HUB_ACCOUNT = "corehour"
# What marks a process as this instance's: its venv, its config, its proxy port.
MARKS = ("/opt/corehour/portal", str(ETC), f"--port={HTTPS}")


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kwargs)


def production_site(cert: Path, key: Path) -> dict:
    site = yaml.safe_load((DEPLOY / "site.example.yaml").read_text())
    site["hub"].update(
        bind_url=URL,
        hub_port=HUB,
        proxy_api_url=f"http://127.0.0.1:{API}",
        admin_users=["chadmin"],
        start_timeout=120,
        tls={"mode": "proxy", "certificate": str(cert), "key": str(key),
             "redirect_http_port": REDIRECT},
    )  # fmt: skip
    site["billing"].update(service_url=f"http://127.0.0.1:{BILLING}", meter_interval=2)
    return site


@pytest.fixture(scope="module")
def installed(ca, users, tmp_path_factory) -> str:
    """``./corehour install`` as a centre runs it; the output is what the install printed."""
    stop_instance()
    ensure_users(PERSON)
    # The certificate and key where a centre keeps them: the key readable by the hub's group.
    tls = ETC / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    run("install", "-m", "0644", str(ca["cert"]), str(tls / "portal.crt"), check=True)
    # install's -g needs the group; the install makes it, so run its account step first.
    run(str(DEPLOY / "sudo.sh"), "ensure", check=True)
    run("install", "-m", "0640", "-g", "corehour-hub", str(ca["key"]), str(tls / "portal.key"),
        check=True)  # fmt: skip
    site = tmp_path_factory.mktemp("site") / "site.yaml"
    site.write_text(yaml.safe_dump(production_site(tls / "portal.crt", tls / "portal.key")))
    done = run(str(REPO / "corehour"), "install", "--site", str(site), "--instance", INSTANCE,
               "--local-postgres", "--no-start")  # fmt: skip
    print(done.stdout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def instance_processes() -> list[tuple[int, int, str]]:
    """(pid, uid, command line) of every process of this instance."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            uid = entry.stat().st_uid
        except OSError:
            continue
        if any(mark in cmdline for mark in MARKS):
            found.append((int(entry.name), uid, cmdline))
    return found


def stop_instance() -> None:
    """Stops what a run of this module started (this run's or a killed earlier one's)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, _, _ in instance_processes():
            if pid != os.getpid():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + 15
        while instance_processes() and time.monotonic() < deadline:
            time.sleep(0.3)


@pytest.fixture(scope="module")
def production(installed, ca, tmp_path_factory):
    logs = tmp_path_factory.mktemp("logs")
    started = [start(parse_unit(unit), logs / f"{unit.stem}.log") for unit in UNITS]
    deadline = time.monotonic() + 90
    while True:
        try:
            if requests.get(f"{URL}/hub/health", verify=ca["ca"], timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, (logs / f"{INSTANCE}-hub.log").read_text()[-3000:]
        assert all(p.poll() is None for p in started), (logs / f"{INSTANCE}-hub.log").read_text()[
            -3000:
        ]
        time.sleep(0.5)
    yield logs
    for cluster in ("alpha", "beta"):
        for job in alive_jobs(cluster, PERSON):
            slurm(cluster, "scancel", str(job["job_id"]), check=False)
    stop_instance()


def test_the_install_printed_where_everything_is(installed):
    assert f"corehour ({INSTANCE}) is installed for {URL}" in installed
    assert f"run as {HUB_ACCOUNT}" in installed


def test_the_units_pass_systemd_analyze_verify(installed):
    for unit in UNITS:
        verified = run("systemd-analyze", "verify", str(unit))
        assert verified.returncode == 0, verified.stderr
        parsed = parse_unit(unit)
        assert parsed.value("User") == HUB_ACCOUNT
        assert parsed.value("ExecStart").startswith("/")
        assert parsed.value("Restart") in ("always", "on-failure")


def test_secrets_are_roots_alone_and_the_site_file_has_none(installed):
    secrets = ETC / "secrets"
    info = secrets.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o700)
    for name in ("portal.env", "proxy.env"):
        info = (secrets / name).stat()
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600), name
    env = read_environment_file(secrets / "portal.env")
    password = env["COREHOUR_PG_PASSWORD"]
    assert password and password not in (ETC / "site.yaml").read_text()
    for key in ("COREHOUR_BILLING_DB", "COREHOUR_HUB_DB_URL", "COREHOUR_IDENTITY_DB_URL"):
        assert env[key].startswith("postgresql+psycopg://"), key
    state = Path("/var/lib") / INSTANCE / "hub"
    info = state.stat()
    assert pwd.getpwuid(info.st_uid).pw_name == HUB_ACCOUNT
    assert stat.S_IMODE(info.st_mode) == 0o700


def test_the_production_environment_has_no_test_tools_and_no_browser(installed):
    venv = Path("/opt/corehour/portal")
    assert (venv / "bin" / "corehour-hub").exists()
    for tool in ("pytest", "selenium", "ruff"):
        probe = run(str(venv / "bin" / "python"), "-c", f"import {tool}")
        assert probe.returncode != 0, f"{tool} is in the production environment"


def test_plain_http_redirects_to_https(production):
    reply = requests.get(
        f"http://127.0.0.1:{REDIRECT}/hub/login", allow_redirects=False, timeout=10
    )
    assert reply.status_code in (301, 302, 307, 308)
    assert reply.headers["Location"] == f"{URL}/hub/login"


def test_https_sets_hsts_and_secure_cookies(production, ca):
    reply = requests.get(f"{URL}/hub/login", verify=ca["ca"], timeout=10)
    assert reply.status_code == 200
    assert reply.headers["Strict-Transport-Security"] == "max-age=31536000"
    cookies = list(reply.cookies)
    assert cookies and all(cookie.secure for cookie in cookies), [c.name for c in cookies]
    # Nobody trusts the certificate without the test CA.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{URL}/hub/login", timeout=10)


def trusting_chromium(ca_file: Path, home: Path):
    """Chromium reads the user's NSS database under $HOME: put the test CA there."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    run("certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password", check=True)
    run("certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n", "corehour test CA",
        "-i", str(ca_file), check=True)  # fmt: skip
    return chromium(env={**os.environ, "HOME": str(home)})


def test_chromium_logs_in_over_https_spawns_and_reads_my_usage(production, ca, tmp_path):
    browser = trusting_chromium(ca["ca"], tmp_path / "home")
    try:
        wait = WebDriverWait(browser, 120)
        browser.get(f"http://127.0.0.1:{REDIRECT}/hub/login")
        wait.until(ready.presence_of_element_located((By.ID, "username_input")))
        assert browser.current_url == f"{URL}/hub/login"
        browser.find_element(By.ID, "username_input").send_keys(PERSON)
        browser.find_element(By.ID, "password_input").send_keys(TEST_PASSWORD)
        browser.find_element(By.ID, "login_submit").click()
        wait.until(lambda d: "/hub/login" not in d.current_url)
        assert all(c["secure"] for c in browser.get_cookies()), browser.get_cookies()

        browser.get(f"{URL}/hub/spawn/{PERSON}")
        wait.until(ready.presence_of_element_located((By.ID, "corehour-spawn-form")))
        browser.find_element(
            By.CSS_SELECTOR, "form#spawn_form [type=submit], #spawn_form input[type=submit]"
        ).click()
        wait.until(lambda d: f"/user/{PERSON}/lab" in d.current_url)
        wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, ".jp-LabShell")))
        (job,) = [j for c in ("alpha", "beta") for j in alive_jobs(c, PERSON)]

        # The page lists the jobs the meter has seen (every 2 s here): reload until it has.
        row = f'#running tr[data-job="{job["cluster"]}:{job["job_id"]}"] .ch-cost'
        deadline = time.monotonic() + 60
        while True:
            browser.get(f"{URL}/services/billing/usage")
            if costs := browser.find_elements(By.CSS_SELECTOR, row):
                break
            assert time.monotonic() < deadline, browser.page_source[:2000]
            time.sleep(2)
        assert float(costs[0].text) >= 0
        shot(browser, "production-usage")

        # Meanwhile, nothing of this portal runs as root (see the test below for why sudo may).
        assert_no_root_processes()
    finally:
        browser.quit()


def assert_no_root_processes() -> None:
    processes = instance_processes()
    commands = " | ".join(cmd for _, _, cmd in processes)
    # The proxy, the hub, the billing service and the idle culler at least.
    assert len(processes) >= 4, commands
    as_root = [cmd for _, uid, cmd in processes if uid == 0 and not cmd.startswith("sudo ")]
    assert not as_root, f"corehour processes running as root: {as_root}"


def test_no_process_of_the_portal_runs_as_root(production):
    """docs/deploy.md: only sudo runs as root, for the moment it takes to start a Slurm
    command as a person under the sudo rule."""
    assert_no_root_processes()


def test_the_hub_and_the_ledger_are_in_postgresql(production):
    """The spawn above went into PostgreSQL: the hub's users and the person's ledger account."""
    env = read_environment_file(ETC / "secrets" / "portal.env")

    def query(key: str, sql: str) -> list[tuple]:
        url = make_url(env[key]).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), connect_timeout=10) as db:
            return db.execute(sql).fetchall()

    assert (PERSON,) in query("COREHOUR_HUB_DB_URL", "SELECT name FROM users")
    owners = query("COREHOUR_BILLING_DB", "SELECT owner FROM account")
    assert (PERSON,) in owners, owners
