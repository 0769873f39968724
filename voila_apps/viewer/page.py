"""What the viewer's page is told about itself, and how it is written into the page."""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from voila_apps.viewer.files import kind_of


def page_data(relative: str, base_url: str, xsrf: str) -> dict:
    """The file (as asked for, relative to the home), where the API is, and the XSRF token
    JupyterHub wants beside a cookie on a script's request."""
    return {
        "path": relative,
        "name": PurePosixPath(relative).name,
        "kind": kind_of(relative),
        "api": base_url + "viewer/api/",
        "xsrf": xsrf,
    }


def script_json(data: dict) -> str:
    """JSON to put inside a <script> element: a path holding ``</script>`` stays a string."""
    text = json.dumps(data)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
