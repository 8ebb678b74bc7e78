"""``UsageReport``: what a gateway counts per version and time bucket, as ``POST /v1/usage`` items."""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agentreg.domain.errors import Invalid
from agentreg.domain.hll import HyperLogLog
from agentreg.domain.names import SelectorType, parse_ref
from agentreg.domain.usage import BUCKET_SECONDS, LATENCY_BOUNDS_MS, LATENCY_BUCKETS


@dataclass
class _Bucket:
    requests: int = 0
    errors: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * LATENCY_BUCKETS)
    callers: HyperLogLog | None = None


class UsageReport:
    """Counts traffic per (version, time bucket): requests, errors, a latency histogram and distinct callers.

    A gateway records each request it forwards, and now and then sends what it counted::

        report = UsageReport(bucket_seconds=300)
        report.record("agent/com.acme/support-bot@1.2.0", latency_ms=84.0, caller="user-42")
        report.record("agent/com.acme/support-bot@1.2.0", latency_ms=1200.0, error=True)
        ...
        items = report.items()        # every minute or so
        client.report_usage(items)
        report.forget_sent(items)     # drops the buckets that are over and were sent in full

    The registry keeps one report per (reporter, version, bucket), and a report sent again *replaces* the
    earlier one. The reporter is the principal the client authenticates as: give each gateway replica its
    own key, or the replicas' reports of a bucket replace each other. So the counts of a bucket are cumulative: a bucket still open is sent again, with all it
    counted so far, until it has ended and been sent once more; if a send fails, nothing is lost (send the
    next ``items()``). Record with ``at`` (default: now) in a bucket already forgotten and its next report
    replaces the full one: report late traffic before forgetting its bucket.

    Latencies land in the registry's fixed buckets (``agentreg.domain.usage.LATENCY_BOUNDS_MS``), so
    percentiles merge across reporters; callers go into a HyperLogLog sketch (``agentreg.domain.hll``): only
    a hash of each caller id leaves the process. A ref names a kind and an exact version
    (``kind/namespace/name@1.2.0``). Safe to use from several threads.
    """

    def __init__(self, bucket_seconds: int = 300) -> None:
        if bucket_seconds not in BUCKET_SECONDS:
            raise ValueError(f"bucket_seconds must be one of {', '.join(map(str, BUCKET_SECONDS))}")
        self.bucket_seconds = bucket_seconds
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        self._refs: set[str] = set()
        self._lock = threading.Lock()

    def record(
        self,
        ref: str,
        latency_ms: float,
        *,
        error: bool = False,
        caller: str | None = None,
        at: datetime | None = None,
    ) -> None:
        """Count one request to ``ref`` that took ``latency_ms`` (an error if ``error``), by ``caller``."""
        self._check_ref(ref)
        if not latency_ms >= 0:  # also NaN
            raise ValueError("latency_ms must be a number of milliseconds, not negative")
        moment = at if at is not None else datetime.now(UTC)
        if moment.tzinfo is None:
            raise ValueError("at must have a time zone")
        start = int(moment.timestamp()) // self.bucket_seconds * self.bucket_seconds
        slot = bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)  # the first bound >= the latency, or +Inf
        with self._lock:
            bucket = self._buckets.setdefault((ref, start), _Bucket())
            bucket.requests += 1
            bucket.errors += bool(error)
            bucket.latency[slot] += 1
            if caller is not None:
                if bucket.callers is None:
                    bucket.callers = HyperLogLog()
                bucket.callers.add(caller)

    def items(self) -> list[dict[str, Any]]:
        """Every bucket counted so far, as ``POST /v1/usage`` items (oldest first); nothing is forgotten."""
        with self._lock:
            return [self._item(ref, start, b) for (ref, start), b in sorted(self._buckets.items())]

    def forget_sent(self, items: list[dict[str, Any]], now: datetime | None = None) -> None:
        """Forget the buckets of ``items`` (as sent) that ended by ``now`` and counted nothing since."""
        cutoff = (now if now is not None else datetime.now(UTC)).timestamp()
        with self._lock:
            for item in items:
                start = int(datetime.fromisoformat(item["bucketStart"]).timestamp())
                key = (item["ref"], start)
                bucket = self._buckets.get(key)
                ended = start + int(item["bucketSeconds"]) <= cutoff
                if bucket is not None and ended and bucket.requests == item["requests"]:
                    del self._buckets[key]

    def __len__(self) -> int:
        """Buckets held."""
        return len(self._buckets)

    def _item(self, ref: str, start: int, bucket: _Bucket) -> dict[str, Any]:
        item: dict[str, Any] = {
            "ref": ref,
            "bucketStart": datetime.fromtimestamp(start, UTC).isoformat(),
            "bucketSeconds": self.bucket_seconds,
            "requests": bucket.requests,
            "errors": bucket.errors,
            "latency": {"counts": list(bucket.latency)},
        }
        if bucket.callers is not None:
            item["callers"] = {"hll": bucket.callers.to_base64()}
        return item

    def _check_ref(self, ref: str) -> None:
        if ref in self._refs:
            return
        try:
            parsed = parse_ref(ref, "ref")
        except Invalid as exc:
            raise ValueError(exc.details[0].issue if exc.details else exc.message) from None
        exact = "@" in ref and parsed.selector.type in (SelectorType.EXACT, SelectorType.LITERAL)
        if parsed.kind is None or not exact:
            raise ValueError(f"ref {ref!r} must look like kind/namespace/name@version, with an exact version")
        self._refs.add(ref)
