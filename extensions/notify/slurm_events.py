"""``slurm-events``: where the clusters' ``MailProg`` (deploy/slurm/corehour-slurm-mail) hands
Slurm's mail events to the portal, instead of Slurm's own empty mails.

Only a caller with the portal's Slurm-events token gets in: the key is in the hub's state
folder, given to the billing service alone, and written root-only next to each cluster's
MailProg (docs/notifications.md).  An event is checked field by field, bounded in size, and
stored once per job and kind however often it comes; the mail itself is written later, by
the sender (sender.py), once Slurm's accounting and the ledger have the job's end.
"""

from __future__ import annotations

import hmac
import json
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from tornado import web

from billing_hooks.models import Membership
from centre.names import UNIX_NAME
from centre.site import Site

from .keys import job_end

MAX_BODY = 4096
_JOB_ID = re.compile(r"[0-9]{1,12}")
# Slurm's SLURM_JOB_MAIL_TYPE → corehour's event.  Others (Began, Requeued, Time reached
# 90%...) are kept for the notification list but not mailed yet.
ENDS = {"Ended": "job_ended", "Failed": "job_ended"}


class SlurmEventHandler(web.RequestHandler):
    def initialize(self, token: str, site: Site, sessions: sessionmaker[Session]) -> None:
        self.token = token
        self.site = site
        self.sessions = sessions

    def check_xsrf_cookie(self) -> None:
        # A program posts here with a token, never a browser with cookies.
        pass

    def post(self) -> None:
        sent = self.request.headers.get("Authorization", "").removeprefix("token ").strip()
        if not self.token or not hmac.compare_digest(sent.encode(), self.token.encode()):
            raise web.HTTPError(403)
        if len(self.request.body) > MAX_BODY:
            raise web.HTTPError(413)
        try:
            event = json.loads(self.request.body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._refuse("send a JSON object")
        if not isinstance(event, dict):
            self._refuse("send a JSON object")
        cluster, job_id, user = event.get("cluster"), event.get("job_id"), event.get("user")
        if cluster not in self.site.clusters:
            self._refuse(f"cluster: not a cluster of this portal: {str(cluster)[:40]!r}")
        if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            self._refuse("job_id: digits")
        if not isinstance(user, str) or not UNIX_NAME.fullmatch(user):
            self._refuse("user: an account name")
        if not self._knows(user):
            # Another portal on the same clusters, or someone who never used this one.
            self._answer(202, {"stored": False, "why": "not a person of this portal"})
            return
        if event.get("mail_type") not in ENDS:
            self._answer(202, {"stored": False, "why": "corehour mails a job's end only, for now"})
            return
        stored = self._store(cluster, job_id, user, _detail(event))
        self._answer(201 if stored else 200, {"stored": stored})

    def _knows(self, user: str) -> bool:
        with self.sessions() as session:
            return (
                session.scalar(select(Membership.id).where(Membership.username == user).limit(1))
                is not None
            )

    def _store(self, cluster: str, job_id: str, user: str, detail: dict) -> bool:
        try:
            with self.sessions.begin() as session:
                session.add(
                    job_end(cluster, job_id, user, {**detail, "mail": True, "source": "slurm"})
                )
        except IntegrityError:
            return False  # Slurm told us before (END and FAIL both, or a retry)
        return True

    def _refuse(self, message: str):
        self._answer(400, {"message": message})
        raise web.Finish()

    def _answer(self, status: int, data: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


def _detail(event: dict) -> dict:
    """What the sender needs that sacct does not keep: where the output went."""
    keep = {}
    for field in ("stdout", "workdir", "name"):
        value = event.get(field)
        if isinstance(value, str) and len(value) <= 1024 and "\0" not in value:
            keep[field] = value
    return keep
