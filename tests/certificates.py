"""A test certificate authority and a server certificate for 127.0.0.1, made with openssl: what
the deploy tier serves HTTPS with, and what its clients (requests, Chromium) trust."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_ca(work: Path) -> dict[str, Path]:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    new_key = ["req", "-newkey", "rsa:2048", "-nodes", "-subj"]
    openssl(*new_key, "/CN=corehour test CA", "-x509", "-days", "2",
            "-keyout", str(work / "ca.key"), "-out", str(work / "ca.crt"))  # fmt: skip
    openssl(*new_key, "/CN=127.0.0.1", "-keyout", str(work / "portal.key"),
            "-out", str(work / "portal.csr"))  # fmt: skip
    (work / "ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "extendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", str(work / "portal.csr"), "-CA", str(work / "ca.crt"),
            "-CAkey", str(work / "ca.key"), "-CAcreateserial", "-days", "2",
            "-extfile", str(work / "ext"), "-out", str(work / "portal.crt"))  # fmt: skip
    return {"ca": work / "ca.crt", "cert": work / "portal.crt", "key": work / "portal.key"}
