"""The test provider (tests/oidc_provider.py) as a subprocess, and its login form filled in."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

REPO = Path(__file__).resolve().parents[1]


class OIDCProvider:
    """tests/oidc_provider.py as a subprocess; ``start`` returns once discovery answers."""

    def __init__(
        self,
        workdir: Path,
        port: int,
        users: list[dict],
        client_id: str,
        client_secret_file: Path,
        redirect_uris: list[str],
    ):
        self.workdir = workdir
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.log_path = workdir / "oidc_provider.log"
        self.users_file = workdir / "oidc_users.json"
        workdir.mkdir(parents=True, exist_ok=True)
        self.set_users(users)
        self.argv = [
            sys.executable,
            "-m",
            "tests.oidc_provider",
            f"--port={port}",
            f"--users={self.users_file}",
            f"--client-id={client_id}",
            f"--client-secret-file={client_secret_file}",
            *(f"--redirect-uri={uri}" for uri in redirect_uris),
        ]
        self.process: subprocess.Popen | None = None

    def set_users(self, users: list[dict]) -> None:
        """Who the provider knows from the next sign-in on (it reads the file each time)."""
        partial = self.users_file.with_suffix(".partial")
        partial.write_text(json.dumps(users))
        partial.replace(self.users_file)

    def start(self) -> OIDCProvider:
        self.process = subprocess.Popen(
            self.argv,
            cwd=REPO,
            stdout=open(self.log_path, "ab"),  # noqa: SIM115 (the child keeps it)
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the OIDC provider exited:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).ok:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the OIDC provider did not answer:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no provider log)"


def submit_login_form(
    session: requests.Session, form_page: requests.Response, username: str, password: str
) -> requests.Response:
    """Fill in and send the provider's login form, as a browser would; the redirect is
    returned, not followed."""
    request_id = re.search(r'name="request" value="([^"]+)"', form_page.text)
    assert request_id, f"no login form at {form_page.url}:\n{form_page.text[:500]}"
    action = re.search(r'<form method="post" action="([^"]+)"', form_page.text)[1]
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(form_page.url))
    return session.post(
        origin + action,
        data={"request": html.unescape(request_id[1]), "username": username, "password": password},
        allow_redirects=False,
        timeout=30,
    )
