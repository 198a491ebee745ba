"""How long the current request may spend waiting for storage (a restore, a first snapshot).

A Lambda invocation has a hard end (`context.get_remaining_time_in_millis()`), and API Gateway
gives up on a request after 30 s: past that, the caller gets a gateway timeout and learns
nothing. The handler sets the budget for each invocation (`time_budget`); storage stops waiting
at the deadline and says "still restoring, retry" instead, while the work carries on. Where no
handler set one (a local server) a default applies: the `replica_restore_wait_ms` setting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("lambdasette_storage_deadline", default=None)


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Within the block, storage waits at most `seconds` (from now) for anything."""
    token = _deadline.set(time.monotonic() + max(0.0, seconds))
    try:
        yield
    finally:
        _deadline.reset(token)


def deadline(default_s: float) -> float:
    """The monotonic time by which the current request must stop waiting: the handler's
    budget, or `default_s` from now, whichever comes first."""
    default = time.monotonic() + default_s
    current = _deadline.get()
    return default if current is None else min(current, default)
