"""How long the current request may spend waiting for storage (a restore, a first snapshot).

A Lambda invocation has a hard end (`context.get_remaining_time_in_millis()`), and API Gateway
gives up on a request after 30 s: past that, the caller gets a gateway timeout and learns
nothing. The handler sets the budget for each invocation (`time_budget`); storage stops waiting
at the deadline and says "still restoring, retry" instead, while the work carries on. Where no
handler set one (a local server) a default applies: the `replica_restore_wait_ms` setting.

The write function is invoked by its front (the read function), which stops waiting for it at a
deadline of its own: the front sends that deadline along (`DEADLINE_HEADER`, epoch milliseconds)
and the writer's budget ends no later (`seconds_until`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# Set by the front on every event it hands to the writer, whatever the client sent: when the
# front stops waiting for the writer's answer, in milliseconds since the epoch (an absolute
# time, so that the writer's cold start, which comes before its handler runs, is counted).
DEADLINE_HEADER = "x-lambdasette-deadline-ms"
# At most 16 digits: far beyond any real epoch-ms value, far below anything costly to parse.
_MAX_DIGITS = 16

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


def seconds_until(epoch_ms: str) -> float | None:
    """The seconds from now to `epoch_ms` (a `DEADLINE_HEADER` value), at least 0; None unless
    it is 1 to 16 ASCII digits (no sign, space, exponent or other script's digits). The value
    is only ever used to shorten a budget, so a wrong one can do no more than that."""
    if not 0 < len(epoch_ms) <= _MAX_DIGITS or not epoch_ms.isascii() or not epoch_ms.isdigit():
        return None
    return max(0.0, int(epoch_ms) / 1000 - time.time())
