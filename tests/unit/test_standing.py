"""Which versions latest, ranges and aliases may still pick, and in which order they are tried."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from agentreg.domain.names import parse_selector
from agentreg.domain.resolution import latest, preference, select
from agentreg.domain.standing import Standing, StatusFacts, changes_at, standing

NOW = datetime(2026, 11, 23, tzinfo=UTC)


@dataclass(frozen=True)
class V:
    version: str
    id: int


def test_standing_of_each_state() -> None:
    assert standing(StatusFacts("certified", False, None), NOW) is Standing.ACTIVE
    assert standing(StatusFacts("certified", True, None), NOW) is Standing.BLOCKED
    assert standing(StatusFacts("retired", False, None), NOW) is Standing.RETIRED
    assert standing(StatusFacts("deprecated", False, None), NOW) is Standing.ACTIVE
    soon = NOW + timedelta(days=1)
    assert standing(StatusFacts("deprecated", False, soon), NOW) is Standing.ACTIVE
    assert changes_at(StatusFacts("deprecated", False, soon), NOW) == soon
    assert standing(StatusFacts("deprecated", False, soon), soon) is Standing.SUNSET
    assert changes_at(StatusFacts("deprecated", False, soon), soon) is None


def test_latest_prefers_releases_then_prereleases_then_literals() -> None:
    items = [V("1.0.0", 1), V("2.0.0-rc.1", 2), V("1.5.0", 3), V("nightly", 4), V("1.5.0-beta", 5)]
    order = [v.version for v in preference(items, parse_selector("latest"))]
    assert order == ["1.5.0", "1.0.0", "2.0.0-rc.1", "1.5.0-beta", "nightly"]
    assert [v.version for v in preference(items, parse_selector("^1.0.0"))] == ["1.5.0", "1.0.0"]
    assert [v.version for v in preference(items, parse_selector("1.0.0"))] == ["1.0.0"]
    assert preference(items, parse_selector("9.0.0")) == []


VERSIONS = st.lists(
    st.tuples(
        st.integers(0, 3), st.integers(0, 3), st.integers(0, 3), st.sampled_from(["", "-rc.1", "-beta"])
    ),
    min_size=1,
    max_size=12,
    unique=True,
)


@given(VERSIONS)
def test_the_first_preference_is_what_selection_picks_without_the_lifecycle(
    parts: list[tuple[int, int, int, str]],
) -> None:
    items = [V(f"{a}.{b}.{c}{pre}", i) for i, (a, b, c, pre) in enumerate(parts)]
    assert preference(items, parse_selector("latest"))[0] == latest(items)
    for text in ("^1.0.0", "~0.1.0", ">=2.0.0"):
        selector = parse_selector(text)
        ranked = preference(items, selector)
        assert (ranked[0] if ranked else None) == select(items, {}, selector)
