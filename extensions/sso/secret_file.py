"""The OIDC client secret, read from a file that only its owner can read.

The site YAML is readable by many (it is copied around and diffed), so it names the file
and never holds the secret.  A file that the group or others can read is refused: the hub
stops at start and says how to fix it, rather than run with a leaked secret.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class SecretFileError(ValueError):
    """The secret file is missing, empty or readable by others; the message says which."""


def read_secret_file(path: str | Path, key: str = "auth.client_secret_file") -> str:
    path = Path(path)
    try:
        with path.open() as f:
            mode = os.fstat(f.fileno()).st_mode
            secret = f.read().strip()
    except OSError as e:
        raise SecretFileError(f"{key}: cannot read {path}: {e.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(
            f"{key}: {path} can be read by others (mode {stat.S_IMODE(mode):04o}); "
            f"make it root-only with: chmod 600 {path}"
        )
    if not secret:
        raise SecretFileError(f"{key}: {path} is empty; put the provider's client secret in it")
    return secret
