"""Usage reports: parsing a batch from a gateway, and rolling stored buckets up into a summary. Pure.

A report counts one version's traffic in one time bucket as seen by one reporter: requests, errors, a
latency histogram over fixed bounds and a sketch of distinct callers. Fixed bounds make histograms add up, so
percentiles over any window come from the summed histogram; the sketches merge the same way (``domain.hll``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from agentreg.domain.errors import FieldIssue, Invalid, InvalidRequest, Malformed
from agentreg.domain.evidence import UsageSummary
from agentreg.domain.hll import HyperLogLog, merge_serialized, serialize_hashed
from agentreg.domain.names import Ref, SelectorType, parse_ref

# Upper bounds (inclusive, ms) of the latency buckets; one more bucket counts everything slower.
LATENCY_BOUNDS_MS: tuple[int, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
LATENCY_BUCKETS = len(LATENCY_BOUNDS_MS) + 1
BUCKET_SECONDS = (60, 300, 3600, 86400)
MAX_ITEMS = 1000
MAX_CALLER_IDS = 10_000
MAX_COUNT = 2**53 - 1  # exact in every JSON reader
MAX_WINDOW = timedelta(days=90)
# A bucket may start a little ahead of our clock (the reporter's runs fast), never further.
CLOCK_SKEW = timedelta(minutes=5)
MAX_PROBLEMS = 100  # per answer: a batch of 1000 bad items need not produce a megabyte of details

_ITEM_KEYS = ("ref", "bucketStart", "bucketSeconds", "requests", "errors", "latency", "callers")
_WINDOW_RE = re.compile(r"([1-9][0-9]{0,4})([dh])", re.ASCII)
_HEX_RE = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_EMPTY_LATENCY = (0,) * LATENCY_BUCKETS


@dataclass(frozen=True, slots=True)
class UsageItem:
    """One parsed report; ``callers`` is a serialized sketch (``HyperLogLog.to_bytes``)."""

    ref: Ref  # with a kind and an exact (or literal) version
    bucket_start: datetime
    bucket_seconds: int
    requests: int
    errors: int
    latency: tuple[int, ...]
    callers: bytes


class UsageBucket(Protocol):
    """A stored report, as ``summarize`` reads it (``store.evidence.UsageRow`` is one)."""

    @property
    def reporter(self) -> str: ...
    @property
    def bucket_start(self) -> datetime: ...
    @property
    def bucket_seconds(self) -> int: ...
    @property
    def requests(self) -> int: ...
    @property
    def errors(self) -> int: ...
    @property
    def latency(self) -> tuple[int, ...]: ...
    @property
    def callers(self) -> bytes: ...


# --- parsing a batch -----------------------------------------------------------------------------------


def decode_batch(body: bytes) -> Any:
    """A batch's JSON. Without ``streams.check_json``'s walk over every value, which took a third of the
    time of ingesting a batch: ``parse_batch`` checks every value it uses and refuses every key it does not
    know, so NaN, huge numbers, NUL and lone surrogates never get further than an error message."""
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except UnicodeDecodeError:
        raise Malformed("the body must be UTF-8") from None
    except json.JSONDecodeError as exc:
        raise Malformed(f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (RecursionError, ValueError):
        raise Malformed(
            "the JSON body cannot be read (nested too deeply, or a number out of range)"
        ) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def parse_batch(body: Any, now: datetime) -> list[UsageItem]:
    """``{items: [...]}``: every item checked before any is used; Invalid names every field at fault."""
    if not isinstance(body, dict):
        raise Invalid.at("", "the body must be a JSON object {items: [...]}")
    unknown = [FieldIssue(f"/{_pointer(k)}", "unknown field") for k in body if k != "items"]
    if unknown:
        raise Invalid.of(unknown)
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise Invalid.at("/items", "must be a non-empty list of usage reports")
    if len(items) > MAX_ITEMS:
        raise Invalid.at("/items", f"at most {MAX_ITEMS} reports per batch, not {len(items)}")
    parsed: list[UsageItem] = []
    problems: list[FieldIssue] = []
    for index, item in enumerate(items):
        at = f"/items/{index}"
        try:
            parsed.append(parse_item(item, at, now))
        except Invalid as exc:
            problems.extend(exc.details)
        if len(problems) >= MAX_PROBLEMS:
            break
    if problems:
        raise Invalid.of(problems[:MAX_PROBLEMS])
    return parsed


def parse_item(item: Any, at: str, now: datetime) -> UsageItem:
    if not isinstance(item, dict):
        raise Invalid.at(at, "must be an object")
    problems = [FieldIssue(f"{at}/{_pointer(k)}", "unknown field") for k in item if k not in _ITEM_KEYS]
    reader = _Reader(item, at, problems)
    ref = reader.ref()
    bucket_seconds = reader.choice("bucketSeconds", BUCKET_SECONDS)
    bucket_start = reader.bucket_start(bucket_seconds, now)
    requests = reader.count("requests", MAX_COUNT)
    errors = reader.count("errors", requests if requests is not None else MAX_COUNT)
    latency = reader.latency(requests)
    callers = reader.callers()
    if problems:
        raise Invalid.of(problems)
    assert ref is not None and bucket_seconds is not None and bucket_start is not None
    assert requests is not None and errors is not None and latency is not None and callers is not None
    return UsageItem(ref, bucket_start, bucket_seconds, requests, errors, latency, callers)


class _Reader:
    """Reads one item's fields, noting each problem instead of stopping at the first."""

    def __init__(self, item: dict[str, Any], at: str, problems: list[FieldIssue]) -> None:
        self.item, self.at, self.problems = item, at, problems

    def fail(self, key: str, issue: str) -> None:
        self.problems.append(FieldIssue(f"{self.at}/{key}", issue))

    def ref(self) -> Ref | None:
        text = self.item.get("ref")
        ref = _exact_ref(text) if isinstance(text, str) else _REF_SHAPE
        if isinstance(ref, str):
            self.fail("ref", ref)
            return None
        return ref

    def choice(self, key: str, choices: tuple[int, ...]) -> int | None:
        value: Any = self.item.get(key)
        if _is_int(value) and value in choices:
            return int(value)
        self.fail(key, f"must be one of {', '.join(map(str, choices))}")
        return None

    def bucket_start(self, seconds: int | None, now: datetime) -> datetime | None:
        text = self.item.get("bucketStart")
        start = _timestamp(text)
        if start is None:
            self.fail("bucketStart", "must be an RFC 3339 date-time with a time zone")
            return None
        if seconds is not None and (start.microsecond or int(start.timestamp()) % seconds):
            self.fail("bucketStart", f"must be aligned to the bucket size ({seconds} s since the epoch)")
            return None
        if start > now + CLOCK_SKEW:
            self.fail("bucketStart", "must not be in the future")
            return None
        return start

    def count(self, key: str, most: int) -> int | None:
        value: Any = self.item.get(key)
        if _is_int(value) and 0 <= value <= most:
            return int(value)
        self.fail(key, f"must be an integer from 0 to {most}")
        return None

    def latency(self, requests: int | None) -> tuple[int, ...] | None:
        value = self.item.get("latency")
        if value is None and requests == 0:
            return _EMPTY_LATENCY
        if not isinstance(value, dict):
            self.fail("latency", "must be an object {counts: [...]} (counts per fixed bound, then +Inf)")
            return None
        for key in value:
            if key not in ("bounds", "counts"):
                self.fail(f"latency/{_pointer(key)}", "unknown field")
        bounds = value.get("bounds")
        if bounds is not None and (
            not isinstance(bounds, list)
            or [b for b in bounds if not _is_number(b)]
            or tuple(bounds) != LATENCY_BOUNDS_MS
        ):
            self.fail("latency/bounds", f"if given, must be the fixed bounds {list(LATENCY_BOUNDS_MS)}")
        counts = value.get("counts")
        if (
            not isinstance(counts, list)
            or len(counts) != LATENCY_BUCKETS
            or not all(_is_int(c) and 0 <= c <= MAX_COUNT for c in counts)
        ):
            self.fail(
                "latency/counts",
                f"must be {LATENCY_BUCKETS} non-negative integers: one per bound "
                f"({', '.join(map(str, LATENCY_BOUNDS_MS))} ms), then one for slower",
            )
            return None
        if requests is not None and sum(counts) != requests:
            self.fail("latency/counts", f"must add up to requests ({requests}), not {sum(counts)}")
            return None
        return tuple(counts)

    def callers(self) -> bytes | None:
        value = self.item.get("callers")
        if value is None:
            return b""
        if not isinstance(value, dict) or len(value) != 1 or not {"hll", "ids"} >= value.keys():
            self.fail("callers", "must be {hll: <base64 sketch>} or {ids: [<hex sha256 of a caller id>]}")
            return None
        if "hll" in value:
            if not isinstance(value["hll"], str):
                self.fail("callers/hll", "must be a base64 string")
                return None
            try:
                return HyperLogLog.from_base64(value["hll"]).to_bytes()
            except ValueError as exc:
                self.fail("callers/hll", str(exc))
                return None
        ids = value["ids"]
        if not isinstance(ids, list) or len(ids) > MAX_CALLER_IDS:
            self.fail("callers/ids", f"must be a list of at most {MAX_CALLER_IDS} hex sha256 digests")
            return None
        for i, caller in enumerate(ids):
            if not isinstance(caller, str) or not _HEX_RE.fullmatch(caller):
                self.fail(f"callers/ids/{i}", "must be the hex sha256 of a caller id (64 hex digits)")
                return None
        return serialize_hashed(ids)


_REF_SHAPE = "must look like kind/namespace/name@version, e.g. agent/com.acme/bot@1.2.0"


@lru_cache(maxsize=4096)
def _exact_ref(text: str) -> Ref | str:
    """The ref, or what is wrong with it (cached: a gateway names the same few versions in every batch)."""
    if text.count("/") != 2 or "@" not in text or not text.isprintable():
        return _REF_SHAPE
    try:
        ref = parse_ref(text)
    except Invalid as exc:
        return exc.details[0].issue
    if ref.selector.type not in (SelectorType.EXACT, SelectorType.LITERAL):
        return "name an exact version, not a range, an alias or 'latest'"
    return ref


def _pointer(key: str) -> str:
    """A key as a JSON pointer segment, printable whatever it holds (lone surrogates, NUL)."""
    escaped = key.replace("~", "~0").replace("/", "~1")
    return escaped if escaped.isprintable() else escaped.encode("unicode_escape").decode("ascii")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timestamp(text: Any) -> datetime | None:
    if not isinstance(text, str) or len(text) > 40 or "T" not in text.upper():
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.astimezone(UTC) if value.tzinfo is not None else None


def parse_window(text: str, field: str = "/window") -> timedelta:
    """``<n>d`` or ``<n>h``, from one hour to 90 days."""
    match = _WINDOW_RE.fullmatch(text)
    window = None
    if match:
        amount = int(match.group(1))
        window = timedelta(days=amount) if match.group(2) == "d" else timedelta(hours=amount)
    if window is None or window > MAX_WINDOW:
        raise InvalidRequest.at(field, "must be <n>d or <n>h, from 1h to 90d (e.g. 30d, 12h)")
    return window


# --- rolling up ----------------------------------------------------------------------------------------


def percentile(counts: Sequence[int], quantile: float) -> float | None:
    """The ``quantile`` (0..1) of a histogram over ``LATENCY_BOUNDS_MS``, interpolated linearly inside its
    bucket (from the bucket's lower bound, or 0, to its upper bound; the last bound for the +Inf bucket)."""
    total = sum(counts)
    if not total:
        return None
    rank = quantile * total
    below = 0
    for index, count in enumerate(counts):
        if count and below + count >= rank:
            lower = LATENCY_BOUNDS_MS[index - 1] if index else 0
            upper = LATENCY_BOUNDS_MS[min(index, len(LATENCY_BOUNDS_MS) - 1)]
            return lower + (upper - lower) * max(rank - below, 0) / count
        below += count
    return float(LATENCY_BOUNDS_MS[-1])


def histogram(latencies_ms: Sequence[float]) -> tuple[int, ...]:
    """Counts per fixed bucket of some latencies (how a reporter builds ``latency.counts``)."""
    counts = [0] * LATENCY_BUCKETS
    for value in latencies_ms:
        counts[next((i for i, b in enumerate(LATENCY_BOUNDS_MS) if value <= b), LATENCY_BUCKETS - 1)] += 1
    return tuple(counts)


def merge_latency(histograms: Sequence[Sequence[int]]) -> tuple[int, ...]:
    return tuple(sum(column) for column in zip(*histograms, strict=True)) if histograms else _EMPTY_LATENCY


def summarize(
    rows: Sequence[UsageBucket], window_days: int, now: datetime, *, window: timedelta | None = None
) -> UsageSummary:
    """Usage in the buckets starting within ``window_days`` (or ``window``, if given) before ``now``,
    merged across reporters and buckets."""
    since = now - (window if window is not None else timedelta(days=window_days))
    kept = [r for r in rows if r.bucket_start >= since]
    busy = [r for r in kept if r.requests]
    latency = merge_latency([r.latency for r in kept])
    return UsageSummary(
        window_days=window_days,
        requests=sum(r.requests for r in kept),
        errors=sum(r.errors for r in kept),
        callers=merge_serialized(r.callers for r in kept).estimate(),
        first=min((r.bucket_start for r in busy), default=None),
        last=max((r.bucket_start + timedelta(seconds=r.bucket_seconds) for r in busy), default=None),
        p50_ms=percentile(latency, 0.50),
        p95_ms=percentile(latency, 0.95),
        p99_ms=percentile(latency, 0.99),
        reporters=len({r.reporter for r in kept}),
    )
