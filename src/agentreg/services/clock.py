"""The one clock services read, so time-dependent behaviour (sunsets, minimum ages, exemption expiry, usage
windows, TTLs) can be tested by moving time rather than waiting for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

_frozen: datetime | None = None


def now() -> datetime:
    return _frozen if _frozen is not None else datetime.now(UTC)


def timestamp() -> float:
    """Seconds since the epoch on this clock (for cache expiry)."""
    return now().timestamp()


@contextmanager
def frozen(at: datetime) -> Iterator[FrozenClock]:
    """Stop the clock at ``at`` until the block ends; ``advance`` moves it."""
    global _frozen
    previous, _frozen = _frozen, at
    try:
        yield FrozenClock()
    finally:
        _frozen = previous


class FrozenClock:
    def advance(self, delta: timedelta) -> datetime:
        global _frozen
        assert _frozen is not None, "the clock is not frozen"
        _frozen += delta
        return _frozen

    @property
    def now(self) -> datetime:
        return now()
