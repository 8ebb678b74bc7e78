"""The token-bucket limiter: bursts, refill, per-key buckets, bounded memory and the limit syntax."""

from __future__ import annotations

import pytest

from agentreg.api.ratelimit import Limit, RateLimiter, parse_limit, retry_after_header


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_burst_is_allowed_then_refused_with_the_time_until_the_next_token(clock: Clock) -> None:
    limiter = RateLimiter(Limit(rate=2.0, burst=5.0), clock=clock)
    assert [limiter.take("a") for _ in range(5)] == [None] * 5
    assert limiter.take("a") == pytest.approx(0.5)
    clock.advance(0.25)
    assert limiter.take("a") == pytest.approx(0.25)  # a refusal takes nothing


def test_tokens_refill_over_time_up_to_the_burst(clock: Clock) -> None:
    limiter = RateLimiter(Limit(rate=10.0, burst=20.0), clock=clock)
    assert all(limiter.take("a") is None for _ in range(20))
    wait = limiter.take("a")
    assert wait == pytest.approx(0.1)
    assert wait is not None
    clock.advance(wait)
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    clock.advance(0.5)
    assert [limiter.take("a") for _ in range(5)] == [None] * 5
    assert limiter.take("a") is not None
    clock.advance(3600)  # idle for long: a full bucket, not more
    assert all(limiter.take("a") is None for _ in range(20))
    assert limiter.take("a") is not None


def test_fractional_rates_allow_exactly_the_burst(clock: Clock) -> None:
    limiter = RateLimiter(Limit.parse("100/m:7"), clock=clock)
    clock.advance(0.001)
    assert sum(limiter.take("a") is None for _ in range(8)) == 7


def test_cost_takes_several_tokens(clock: Clock) -> None:
    limiter = RateLimiter(Limit(rate=1.0, burst=10.0), clock=clock)
    assert limiter.take("a", cost=8) is None
    assert limiter.take("a", cost=3) == pytest.approx(1.0)
    assert limiter.take("a", cost=2) is None
    with pytest.raises(ValueError, match="exceeds the burst"):
        limiter.take("a", cost=11)


def test_keys_have_independent_buckets(clock: Clock) -> None:
    limiter = RateLimiter(Limit(rate=1.0, burst=2.0), clock=clock)
    assert limiter.take("a") is None
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    assert limiter.take("b") is None
    assert limiter.take("b") is None
    assert limiter.take("b") is not None
    assert limiter.take("c") is None


def test_memory_is_bounded_under_a_flood_of_new_keys(clock: Clock) -> None:
    limiter = RateLimiter(Limit(rate=1.0, burst=3.0), max_keys=100, clock=clock)
    for key in range(10_000):
        assert limiter.take(f"flood-{key}") is None
        assert len(limiter) <= 100
    assert len(limiter) >= 50


def test_a_key_in_use_keeps_its_bucket_through_a_flood(clock: Clock) -> None:
    limiter = RateLimiter(Limit(rate=1.0, burst=2.0), max_keys=10, clock=clock)
    assert limiter.take("steady", cost=2) is None
    for key in range(1_000):
        limiter.take(f"flood-{key}")
        if key % 5 == 0:  # used at least once per max_keys // 2 other keys
            assert limiter.take("steady") is not None
    assert len(limiter) <= 10


def test_a_key_unused_for_long_enough_is_forgotten(clock: Clock) -> None:
    limiter = RateLimiter(Limit(rate=1.0, burst=1.0), max_keys=8, clock=clock)
    assert limiter.take("a") is None
    for key in range(3):
        limiter.take(f"other-{key}")
    assert limiter.take("a") is not None  # still remembered: empty
    for key in range(8):
        limiter.take(f"more-{key}")
    assert limiter.take("a") is None  # forgotten: a fresh, full bucket
    assert len(limiter) <= 8


def test_the_smallest_limiter_still_works(clock: Clock) -> None:
    limiter = RateLimiter(Limit(rate=1.0, burst=1.0), max_keys=2, clock=clock)
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    assert limiter.take("b") is None
    assert limiter.take("a") is not None
    assert len(limiter) == 2
    limiter.take("c")
    assert len(limiter) == 2


@pytest.mark.parametrize(
    ("text", "rate", "burst"),
    [
        ("100/s", 100.0, 100.0),
        ("6000/m", 100.0, 100.0),
        ("20/s:40", 20.0, 40.0),
        ("1/h", 1 / 3600, 1.0),
        ("86400/d", 1.0, 1.0),
        (" 5 / min : 10 ", 5 / 60, 10.0),
        ("2.5/S", 2.5, 2.5),
        ("30/m:1", 0.5, 1.0),
    ],
)
def test_parse_accepts_rate_per_unit_and_an_optional_burst(text: str, rate: float, burst: float) -> None:
    limit = Limit.parse(text)
    assert limit.rate == pytest.approx(rate)
    assert limit.burst == pytest.approx(burst)
    assert parse_limit(text) == limit


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("100", "expected COUNT/UNIT"),
        ("100/", "expected COUNT/UNIT"),
        ("100/fortnight", "expected COUNT/UNIT"),
        ("/s", "count '' is not a number"),
        ("lots/s", "count 'lots' is not a number"),
        ("-5/s", "finite number >= 0"),
        ("inf/s", "finite number >= 0"),
        ("nan/s", "finite number >= 0"),
        ("10/s:", "burst '' is not a number"),
        ("10/s:0.5", "burst must be at least 1"),
        ("10/s:x", "burst 'x' is not a number"),
        ("on", "expected COUNT/UNIT"),
    ],
)
def test_parse_rejects_malformed_limits_clearly(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_limit(text)
    assert repr(text) in str(info.value)
    with pytest.raises(ValueError, match=message):
        Limit.parse(text)


@pytest.mark.parametrize("text", ["off", "OFF", "0", "", "  ", "none", "disabled", "0/s", "0/m:10"])
def test_off_disables_limiting(text: str) -> None:
    assert parse_limit(text) is None
    with pytest.raises(ValueError, match="is off"):
        Limit.parse(text)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (-1.0, 1.0), (float("inf"), 1.0), (1.0, 0.5)])
def test_a_limit_must_be_positive_and_finite(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        Limit(rate=rate, burst=burst)


def test_max_keys_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_keys"):
        RateLimiter(Limit(rate=1.0, burst=1.0), max_keys=1)


@pytest.mark.parametrize(
    ("seconds", "header"),
    [(0.0, "1"), (0.001, "1"), (1.0, "1"), (1.0000000001, "1"), (1.2, "2"), (6.0, "6"), (59.5, "60")],
)
def test_retry_after_is_whole_seconds_rounded_up_at_least_one(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header


def test_retry_after_of_a_per_minute_limit_is_exact() -> None:
    clock = Clock()
    limiter = RateLimiter(Limit.parse("10/m:1"), clock=clock)
    assert limiter.take("a") is None
    wait = limiter.take("a")
    assert wait is not None
    assert retry_after_header(wait) == "6"


def test_a_limit_reads_back_as_per_second() -> None:
    assert str(Limit.parse("20/s:40")) == "20/s:40"
    assert str(Limit.parse("6000/m")) == "100/s:100"
