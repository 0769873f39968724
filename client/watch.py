"""Following a job until it ends: a line each time where it stands changes."""

from __future__ import annotations

import time
from collections.abc import Callable

from client.api import UNREACHABLE, ApiError, Portal
from client.render import change_key, job_state

# A cluster, the hub or the network coming back within this does not end a watch.
UNAVAILABLE_GRACE_S = 300
# Slurm's answers can lag a submission by a few seconds: the new job is "not found" till then.
JUST_SUBMITTED_GRACE_S = 30


class WatchTimedOut(Exception):
    """The watch's time ran out before the job ended; ``job`` is its last reply, if any."""

    def __init__(self, job: dict | None):
        super().__init__("the job had not ended")
        self.job = job


def worth_waiting(error: ApiError, seen: bool, just_submitted: bool, waited_s: float) -> bool:
    """Whether an error while following is likely to pass, so the watch asks again."""
    if error.status == 404:
        return just_submitted and not seen and waited_s < JUST_SUBMITTED_GRACE_S
    unavailable = error.status == UNREACHABLE or error.status >= 500
    return unavailable and seen and waited_s < UNAVAILABLE_GRACE_S


def follow(
    portal: Portal,
    cluster: str,
    job_id: str,
    *,
    interval: float,
    timeout: float | None = None,
    just_submitted: bool = False,
    say: Callable[[str], None] = print,
    note: Callable[[str], None] = print,
) -> dict:
    """Asks for the job every ``interval`` seconds until it has ended, and returns its last
    reply; ``say`` gets a line each time its state, reason or place in the queue changes,
    ``note`` a line when the portal stops answering for a while."""
    began = time.monotonic()
    last, failing_since = None, None
    while True:
        try:
            job = portal.job(cluster, job_id)
        except ApiError as e:
            first = failing_since is None
            failing_since = time.monotonic() if first else failing_since
            if not worth_waiting(
                e, last is not None, just_submitted, time.monotonic() - failing_since
            ):
                raise
            if first and e.status != 404:
                note(f"{e.message}; asking again for up to {UNAVAILABLE_GRACE_S // 60} minutes")
        else:
            failing_since = None
            if last is None or change_key(job) != change_key(last):
                now = time.time()
                say(f"{time.strftime('%H:%M:%S', time.localtime(now))} {job_state(job, now)}")
            last = job
            if job.get("ended"):
                return job
        left = None if timeout is None else timeout - (time.monotonic() - began)
        if left is not None and left <= 0:
            raise WatchTimedOut(last)
        time.sleep(interval if left is None else min(interval, left))
