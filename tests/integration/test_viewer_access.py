"""The results viewer reads a person's files only for that person: another portal user's token
is refused, a path or link out of the home is refused, and no page can frame the viewer."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.integration

OWNER, OTHER = "chtest3", "chtest2"
PROBE = "viewer-probe"
# A 2×2×2 grid with both signs, as a cube file; the atom is an oxygen at the origin.
CUBE = """probe
made by the viewer's access test
    1    0.000000    0.000000    0.000000
    2    0.500000    0.000000    0.000000
    2    0.000000    0.500000    0.000000
    2    0.000000    0.000000    0.500000
    8    8.000000    0.000000    0.000000    0.000000
 -1.0 -0.5 -0.2 0.1 0.3 0.5 0.8 1.0
"""


def owner_file(name: str, text: str | None = None, link_to: str | None = None) -> None:
    user = pwd.getpwnam(OWNER)
    folder = Path(user.pw_dir, PROBE)
    folder.mkdir(exist_ok=True)
    os.chown(folder, user.pw_uid, user.pw_gid)
    path = folder / name
    path.unlink(missing_ok=True)
    if link_to:
        path.symlink_to(link_to)
        os.lchown(path, user.pw_uid, user.pw_gid)
    else:
        path.write_text(text or "")
        os.chown(path, user.pw_uid, user.pw_gid)


def test_the_viewer_answers_its_owner_only_and_only_below_their_home(portal, tokens):
    reply = portal.start_server(OWNER, tokens[OWNER], profile="cpu", image="base", cores=1)
    assert reply.status_code in (201, 202), reply.text
    portal.wait_ready(OWNER, timeout=180)
    owner_file("probe.cube", CUBE)
    owner_file("shadow.cube", link_to="/etc/shadow")
    api = f"{portal.url}/user/{OWNER}/viewer/api/scene"

    def ask(token: str, path: str) -> requests.Response:
        return requests.get(
            api,
            params={"path": path, "iso": "0.4"},
            headers={"Authorization": f"token {token}"},
            timeout=60,
            allow_redirects=False,
        )

    mine = ask(tokens[OWNER], f"{PROBE}/probe.cube")
    assert mine.status_code == 200, mine.text
    scene = mine.json()
    assert scene["kind"] == "cube" and scene["molecule"]["symbols"] == ["O"]
    assert [s["name"] for s in scene["surfaces"]] == ["positive", "negative"]

    # Another portal user with a valid token of their own: the server does not answer them.
    theirs = ask(tokens[OTHER], f"{PROBE}/probe.cube")
    assert theirs.status_code in (302, 403), theirs.status_code
    assert "surfaces" not in theirs.text

    # The owner's own server still reads nothing outside the home, by path or by link.
    for path in ("../../etc/shadow.cube", f"{PROBE}/shadow.cube", "/etc/passwd.cube"):
        refused = ask(tokens[OWNER], path)
        assert refused.status_code == 400, (path, refused.text)
        assert refused.json()["field"] == "path", refused.text
        assert "root:" not in refused.text

    # The page keeps JupyterHub's rule that no page frames a person's server.
    page = requests.get(
        f"{portal.url}/user/{OWNER}/viewer/",
        params={"path": f"{PROBE}/probe.cube"},
        headers={"Authorization": f"token {tokens[OWNER]}"},
        timeout=60,
    )
    assert page.status_code == 200 and "probe.cube" in page.text
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    portal.stop_server(OWNER)
