"""Where ``corehour-client login`` keeps the portal's address and the token: one JSON file,
readable by its owner only, since the token acts as them."""

from __future__ import annotations

import json
import os
from pathlib import Path

CONFIG_ENV = "COREHOUR_CLIENT_CONFIG"


class NotSignedIn(Exception):
    """No usable saved sign-in; the message says what to run."""


def config_path() -> Path:
    """``$COREHOUR_CLIENT_CONFIG``, else ``~/.config/corehour/client.json``."""
    named = os.environ.get(CONFIG_ENV)
    return Path(named) if named else Path.home() / ".config" / "corehour" / "client.json"


def save_sign_in(path: Path, values: dict[str, str]) -> None:
    """Writes ``values`` to ``path`` with mode 0600 (its folder, when made here, 0700); the
    mode is set before the token is written, so no one else can read it at any moment."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.chmod(path, 0o600)  # a file that was there before keeps its old mode through open
        json.dump(values, file, indent=2)
        file.write("\n")


def load_sign_in(path: Path) -> dict[str, str]:
    """The saved values, or {} when no one has signed in here yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise NotSignedIn(f"cannot read {path}: {e.strerror}") from None
    try:
        values = json.loads(text)
    except ValueError:
        values = None
    if not isinstance(values, dict):
        raise NotSignedIn(
            f"{path} is not a corehour-client sign-in; run corehour-client login --url URL again"
        )
    return {k: v for k, v in values.items() if isinstance(v, str)}
