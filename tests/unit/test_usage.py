"""Usage reports: parsing a batch (every field at fault named) and rolling buckets up (percentiles merge)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentreg.domain.errors import FieldIssue, Invalid, Malformed
from agentreg.domain.hll import HyperLogLog
from agentreg.domain.usage import (
    LATENCY_BOUNDS_MS,
    LATENCY_BUCKETS,
    MAX_ITEMS,
    decode_batch,
    histogram,
    parse_batch,
    parse_window,
    percentile,
    summarize,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Bucket:
    reporter: str
    bucket_start: datetime
    bucket_seconds: int
    requests: int
    errors: int
    latency: tuple[int, ...]
    callers: bytes


def bucket(
    start: datetime,
    latencies: list[float],
    *,
    errors: int = 0,
    reporter: str = "gw",
    callers: list[str] = (),  # type: ignore[assignment]
    seconds: int = 3600,
) -> Bucket:
    return Bucket(
        reporter,
        start,
        seconds,
        len(latencies),
        errors,
        histogram(latencies),
        HyperLogLog.of(callers).to_bytes(),
    )


def item(**changes: Any) -> dict[str, Any]:
    counts = [0] * LATENCY_BUCKETS
    counts[3] = 10
    value: dict[str, Any] = {
        "ref": "agent/com.acme/bot@1.2.0",
        "bucketStart": "2026-03-01T11:00:00Z",
        "bucketSeconds": 3600,
        "requests": 10,
        "errors": 1,
        "latency": {"counts": counts},
        "callers": {"ids": [hashlib.sha256(b"alice").hexdigest()]},
    }
    for key, change in changes.items():
        if change is ...:
            del value[key]
        else:
            value[key] = change
    return value


def fields(exc: pytest.ExceptionInfo[Invalid]) -> list[str]:
    return [d.field for d in exc.value.details]


# --- parsing -----------------------------------------------------------------------------------------------


def test_a_valid_report_parses() -> None:
    (parsed,) = parse_batch({"items": [item()]}, NOW)
    assert str(parsed.ref) == "agent/com.acme/bot@1.2.0"
    assert parsed.bucket_start == datetime(2026, 3, 1, 11, tzinfo=UTC)
    assert (parsed.requests, parsed.errors, parsed.latency[3]) == (10, 1, 10)
    assert HyperLogLog.from_bytes(parsed.callers) == HyperLogLog.of(["alice"])


def test_parsing_is_deterministic_and_ids_match_a_sketch_of_the_same_callers() -> None:
    by_ids = parse_batch({"items": [item()]}, NOW)
    assert parse_batch({"items": [item()]}, NOW) == by_ids
    sketch = HyperLogLog.of(["alice"]).to_base64()
    by_sketch = parse_batch({"items": [item(callers={"hll": sketch})]}, NOW)
    assert by_sketch == by_ids


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"errors": 11}, "/items/0/errors"),
        ({"requests": -1}, "/items/0/requests"),
        ({"requests": True}, "/items/0/requests"),
        ({"requests": 11}, "/items/0/latency/counts"),  # counts no longer add up
        ({"latency": {"counts": [1, 2]}}, "/items/0/latency/counts"),
        ({"latency": {"counts": [10] + [0] * 13, "bounds": [1, 2]}}, "/items/0/latency/bounds"),
        ({"latency": {"counts": [10] + [0] * 13, "unit": "s"}}, "/items/0/latency/unit"),
        ({"latency": ...}, "/items/0/latency"),
        ({"bucketStart": "2026-03-01T11:00:30Z"}, "/items/0/bucketStart"),  # not aligned
        ({"bucketStart": "2026-03-01T11:00:00"}, "/items/0/bucketStart"),  # no time zone
        ({"bucketStart": "2026-03-02T11:00:00Z"}, "/items/0/bucketStart"),  # in the future
        ({"bucketStart": "yesterday"}, "/items/0/bucketStart"),
        ({"bucketSeconds": 120}, "/items/0/bucketSeconds"),
        ({"ref": "agent/com.acme/bot@^1"}, "/items/0/ref"),  # a range
        ({"ref": "agent/com.acme/bot"}, "/items/0/ref"),  # no version
        ({"ref": "com.acme/bot@1.0.0"}, "/items/0/ref"),  # no kind
        ({"ref": "robot/com.acme/bot@1.0.0"}, "/items/0/ref"),  # no such kind
        ({"callers": {"hll": "AAAA"}}, "/items/0/callers/hll"),  # 3 bytes of zeros: a zero rank
        ({"callers": {"hll": "%%%"}}, "/items/0/callers/hll"),
        ({"callers": {"ids": ["alice"]}}, "/items/0/callers/ids/0"),
        ({"callers": {"ids": [], "hll": ""}}, "/items/0/callers"),
        ({"color": "red"}, "/items/0/color"),
    ],
)
def test_a_bad_field_is_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as exc:
        parse_batch({"items": [item(**change)]}, NOW)
    assert field in fields(exc)


@pytest.mark.parametrize(
    ("key", "field"),
    [("a/b~c", "/items/0/a~1b~0c"), ("\ud800", "/items/0/\\ud800"), ("\x00", "/items/0/\\x00")],
)
def test_an_unknown_key_is_named_printably(key: str, field: str) -> None:
    with pytest.raises(Invalid) as exc:
        parse_batch({"items": [{**item(), key: 1}]}, NOW)
    assert fields(exc) == [field]


@pytest.mark.parametrize(
    "ref", ["agent/com.acme/bot@1.0.\x00", "agent/com.acme/bot@\ud800", "agent/com.acme/bot@ 1"]
)
def test_a_ref_must_be_printable(ref: str) -> None:
    with pytest.raises(Invalid) as exc:
        parse_batch({"items": [item(ref=ref)]}, NOW)
    assert fields(exc) == ["/items/0/ref"]


@pytest.mark.parametrize(
    "body", [b"{", b'{"items": NaN}', b"\xff\xfe\x00", b"[" * 100_000 + b"]" * 100_000, b'{"a": 1e999999}']
)
def test_a_batch_that_is_not_json_is_malformed(body: bytes) -> None:
    with pytest.raises(Malformed):
        decode_batch(body)


def test_a_batch_decodes_as_json() -> None:
    assert decode_batch(b'{"items": [{"requests": 1}]}') == {"items": [{"requests": 1}]}


def test_every_bad_item_is_named_and_good_ones_are_not() -> None:
    with pytest.raises(Invalid) as exc:
        parse_batch({"items": [item(), item(errors=99), item(), item(bucketSeconds=7)]}, NOW)
    assert fields(exc) == ["/items/1/errors", "/items/3/bucketSeconds"]


@pytest.mark.parametrize(
    ("body", "field"),
    [([], ""), ({"items": []}, "/items"), ({"items": [item()], "x": 1}, "/x"), ({"items": [1]}, "/items/0")],
)
def test_the_batch_shape_is_checked(body: Any, field: str) -> None:
    with pytest.raises(Invalid) as exc:
        parse_batch(body, NOW)
    assert fields(exc) == [field]


def test_a_batch_holds_at_most_a_thousand_reports() -> None:
    assert len(parse_batch({"items": [item()] * MAX_ITEMS}, NOW)) == MAX_ITEMS
    with pytest.raises(Invalid, match="at most"):
        parse_batch({"items": [item()] * (MAX_ITEMS + 1)}, NOW)


def test_a_report_without_traffic_needs_no_latency_or_callers() -> None:
    (parsed,) = parse_batch({"items": [item(requests=0, errors=0, latency=..., callers=...)]}, NOW)
    assert parsed.latency == (0,) * LATENCY_BUCKETS and parsed.callers == b""


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(list(item())), json_values, max_size=7))
def test_any_item_either_parses_or_is_invalid(changes: dict[str, Any]) -> None:
    problems: tuple[FieldIssue, ...] = ()
    try:
        parse_batch({"items": [item(**changes)]}, NOW)
    except Invalid as exc:
        problems = exc.details or (FieldIssue("?", "an Invalid without details"),)
    assert all(p.field.startswith("/items/0/") for p in problems), problems


@pytest.mark.parametrize(
    ("text", "hours"), [("30d", 720), ("1h", 1), ("12h", 12), ("90d", 2160), ("2160h", 2160)]
)
def test_windows_parse(text: str, hours: int) -> None:
    assert parse_window(text) == timedelta(hours=hours)


@pytest.mark.parametrize("text", ["0d", "0h", "91d", "2161h", "2w", "d", "30", "-1d", "1.5d", " 30d"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(Invalid) as exc:
        parse_window(text)
    assert fields(exc) == ["/window"]


# --- rolling up ----------------------------------------------------------------------------------------------


def test_percentiles_interpolate_inside_the_bucket() -> None:
    counts = [0] * LATENCY_BUCKETS
    counts[2] = 4  # (10, 25] ms
    assert percentile(counts, 0.5) == pytest.approx(17.5)
    assert percentile(counts, 1.0) == pytest.approx(25)
    slow = [0] * (LATENCY_BUCKETS - 1) + [3]  # all slower than the last bound
    assert percentile(slow, 0.99) == LATENCY_BOUNDS_MS[-1]
    assert percentile([0] * LATENCY_BUCKETS, 0.5) is None


latency_lists = st.lists(
    st.lists(st.floats(min_value=0, max_value=120_000, allow_nan=False), min_size=0, max_size=40),
    min_size=1,
    max_size=6,
)


@given(latency_lists, st.sampled_from([0.5, 0.95, 0.99]))
def test_percentiles_merged_across_buckets_equal_those_of_the_merged_data(
    per_bucket: list[list[float]], quantile: float
) -> None:
    rows = [bucket(NOW - (i + 1) * HOUR, latencies) for i, latencies in enumerate(per_bucket)]
    summary = summarize(rows, 30, NOW)
    every = [x for latencies in per_bucket for x in latencies]
    expected = percentile(histogram(every), quantile)
    got = {0.5: summary.p50_ms, 0.95: summary.p95_ms, 0.99: summary.p99_ms}[quantile]
    assert got == expected
    assert summary.requests == len(every)


def test_summary_merges_reporters_and_counts_distinct_callers_once() -> None:
    rows = [
        bucket(NOW - 2 * HOUR, [20.0] * 10, errors=1, reporter="gw-a", callers=[f"u{i}" for i in range(100)]),
        bucket(
            NOW - 2 * HOUR, [20.0] * 30, errors=2, reporter="gw-b", callers=[f"u{i}" for i in range(50, 200)]
        ),
        bucket(NOW - HOUR, [400.0] * 10, reporter="gw-a", callers=[f"u{i}" for i in range(150, 250)]),
    ]
    summary = summarize(rows, 30, NOW)
    assert (summary.requests, summary.errors, summary.reporters) == (50, 3, 2)
    assert summary.error_rate == pytest.approx(0.06)
    assert abs(summary.callers - 250) <= 5
    assert summary.first == NOW - 2 * HOUR and summary.last == NOW
    assert summary.p50_ms is not None and summary.p50_ms <= 25 and summary.p99_ms is not None
    assert summary.p99_ms > 250


def test_summary_reads_only_buckets_inside_the_window() -> None:
    old = bucket(NOW - timedelta(days=8), [5.0] * 100, callers=["old"])
    new = bucket(NOW - timedelta(days=1), [5.0] * 7, callers=["new"])
    week = summarize([old, new], 7, NOW)
    assert (week.requests, week.callers, week.first) == (7, 1, new.bucket_start)
    assert summarize([old, new], 30, NOW).requests == 107
    assert summarize([old, new], 30, NOW, window=timedelta(hours=12)).requests == 0


def test_an_empty_window_summarizes_to_nothing() -> None:
    quiet = replace(bucket(NOW - HOUR, []), reporter="gw")
    summary = summarize([quiet], 30, NOW)
    assert (summary.requests, summary.callers, summary.first, summary.p95_ms) == (0, 0, None, None)
    assert summary.error_rate is None and summary.reporters == 1
