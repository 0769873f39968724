"""Ledger work in the hub process: on threads of its own, and never waited on for long.

JupyterHub serves every page, API request and spawn from one event loop.  A ledger that
does not answer (a PostgreSQL host whose packets are dropped, a server that hangs, a SQLite
file held by a long write) must not stop that loop, so the hub's ledger calls run here: on
a small pool of threads, with engines whose connections, lock waits and statements time
out (``TIMEOUT_S``, see db.make_engine), and the loop gives up on a call at its deadline.
A thread stuck in a call its driver cannot interrupt stays stuck, but nobody waits for it.

After a failure or a missed deadline the ledger counts as quiet for ``QUIET_S``: pages and
the spawn form stop waiting for it and show what they have, until a call gets through.
Spawns still ask, each up to its deadline, so none is refused on an old failure.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from functools import partial

from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("corehour.billing")

# Connections, lock waits and statements of the hub's ledger engines end after this.
TIMEOUT_S = 4.0
# What a spawn waits for the ledger at most: under the hub's slow_spawn_timeout (10 s), so
# the person gets the refusal as the answer to their request.
DEADLINE_S = 6.0
# What the spawn form waits at most for accounts and balances; without them it still works.
FORM_DEADLINE_S = 1.0
# A page waits this long at most for a person's balances, and only while the ledger answers.
PAGE_WAIT_S = 0.25
# After a failure or a missed deadline, pages and the form stop waiting this long.
QUIET_S = 15.0
WORKERS = 8

UNREACHABLE = (
    "The billing ledger cannot be reached right now, so no server can be started or "
    "charged. Nothing was submitted; please try again in a minute."
)

_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="corehour-ledger")


class LedgerUnavailable(Exception):
    """The ledger failed or did not answer in time; the message is for people."""


class Health:
    """Whether the ledger has failed lately: quiet for ``quiet`` seconds after a failure
    or a missed deadline, until a call gets through."""

    def __init__(self, quiet: float = QUIET_S, clock: Callable[[], float] = time.monotonic):
        self.quiet_s, self.clock = quiet, clock
        self._until = 0.0

    def quiet(self) -> bool:
        return self.clock() < self._until

    def failed(self) -> None:
        self._until = max(self._until, self.clock() + self.quiet_s)

    def answered(self) -> None:
        self._until = 0.0

    def watch(self, future: Future) -> Future:
        """Let ``future``'s outcome, whenever it comes, say whether the ledger answers."""
        future.add_done_callback(self._outcome)
        return future

    def _outcome(self, future: Future) -> None:
        if future.cancelled():
            return
        if isinstance(future.exception(), SQLAlchemyError | LedgerUnavailable):
            self.failed()
        else:
            self.answered()


health = Health()


async def call(fn: Callable, *args, deadline: float = DEADLINE_S, wait_when_quiet: bool = True):
    """``fn(*args)`` on a ledger thread; LedgerUnavailable when it fails on the database or
    takes longer than ``deadline`` seconds, or at once while the ledger is quiet unless
    ``wait_when_quiet``.  Other exceptions pass through unchanged."""
    if not wait_when_quiet and health.quiet():
        raise LedgerUnavailable(UNREACHABLE)
    future = health.watch(_pool.submit(fn, *args))
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), deadline)
    except TimeoutError:
        health.failed()
        log.error("the billing ledger did not answer %s within %g s", _name(fn), deadline)
        raise LedgerUnavailable(UNREACHABLE) from None
    except SQLAlchemyError as e:
        log.error("the billing ledger failed in %s: %s", _name(fn), e)
        raise LedgerUnavailable(UNREACHABLE) from None


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", "?")


class Latest:
    """The newest values per key (a person's balances) for code that cannot await.

    JupyterHub calls ``template_vars`` functions synchronously, on its event loop, while it
    renders a page.  ``get`` fetches on a ledger thread and waits at most ``wait`` seconds;
    while the ledger is quiet (``health``) it waits not at all and gives the last values it
    has (or None).  One fetch per key at a time: a page never starts a second one.
    """

    def __init__(
        self,
        fetch: Callable[[str], object],
        wait: float = PAGE_WAIT_S,
        ledger: Health = health,
    ):
        self.fetch, self.wait, self.ledger = fetch, wait, ledger
        self._last: dict[str, object] = {}
        self._pending: dict[str, Future] = {}
        self._lock = threading.RLock()

    def __deepcopy__(self, _memo) -> Latest:
        # JupyterHub's config deep-copies template_vars; a copy would be a second cache.
        return self

    def get(self, key: str) -> tuple[object | None, bool]:
        """(values, current): the newest values known, and whether this call fetched them."""
        if self.ledger.quiet():
            return self._last.get(key), False
        try:
            return self._fetching(key).result(timeout=self.wait), True
        except FutureTimeout:
            self.ledger.failed()
        except Exception:  # _done logged it, and the ledger is quiet now
            pass
        return self._last.get(key), False

    def _fetching(self, key: str) -> Future:
        with self._lock:
            future = self._pending.get(key)
            if future is None:
                future = self._pending[key] = _pool.submit(self.fetch, key)
                future.add_done_callback(partial(self._done, key))
            return future

    def _done(self, key: str, future: Future) -> None:
        with self._lock:
            self._pending.pop(key, None)
            error = future.exception()
            if error is None:
                self._last[key] = future.result()
                self.ledger.answered()
                return
            self.ledger.failed()
        log.error("the billing ledger failed for %s: %s", key, error)
