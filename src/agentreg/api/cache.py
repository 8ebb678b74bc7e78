"""An in-process LRU of rendered hot-path responses, trusted only while the store's change token holds.

Each entry remembers the change token read *before* its answer was computed, so a write that commits
while the answer is being computed makes the entry stale at once rather than cached wrong.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from agentreg.domain.errors import AgentRegError


@dataclass(frozen=True, slots=True)
class CachedResponse:
    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    etag: bytes | None
    token: int
    expires_at: float | None = None  # on the cache's clock; for answers that change with time alone
    error: AgentRegError | None = None  # rendered per request, so the body carries that request's id
    not_modified_headers: tuple[tuple[bytes, bytes], ...] = ()


class ResponseCache:
    """LRU bounded by entries and by bytes; a body larger than a sixteenth of the byte budget is not kept."""

    def __init__(
        self,
        max_entries: int,
        max_bytes: int = 256 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self._entries: OrderedDict[Hashable, CachedResponse] = OrderedDict()

    def get(self, key: Hashable, token: int) -> CachedResponse | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.token != token or (entry.expires_at is not None and entry.expires_at <= self.clock()):
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: Hashable, entry: CachedResponse) -> None:
        if self.max_entries <= 0 or len(entry.body) > self.max_bytes // 16:
            return
        self._drop(key)
        self._entries[key] = entry
        self.bytes += len(entry.body)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= len(evicted.body)

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= len(entry.body)

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)
