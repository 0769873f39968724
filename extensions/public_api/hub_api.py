"""The public API's routes in the hub: batch jobs (jobs.py), files (files.py) and the OpenAPI
document that describes the whole public API, hub and billing service alike (openapi.yaml)."""

from __future__ import annotations

from pathlib import Path

from jupyterhub.apihandlers.base import APIHandler

from centre.admission import AdmissionStep
from centre.site import Site

from .files import file_handlers
from .jobs import LiveQueue, job_handlers

OPENAPI = Path(__file__).with_name("openapi.yaml")
OPENAPI_PATH = "api/corehour/openapi.yaml"


class OpenApiHandler(APIHandler):
    """The document itself is public: it holds no one's data."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/yaml")
        self.finish(OPENAPI.read_text())


def public_api_handlers(
    site: Site, admission: list[AdmissionStep], live_queue: LiveQueue
) -> list[tuple[str, type, dict]]:
    return [
        (f"/{OPENAPI_PATH}", OpenApiHandler, {}),
        *job_handlers(site, admission, live_queue),
        *file_handlers(site),
    ]
