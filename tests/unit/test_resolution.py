"""Which version a selector picks: latest, exact, alias, range, and non-SemVer versions."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from agentreg.domain.names import parse_selector
from agentreg.domain.resolution import latest, newest_first, select, supersedes
from agentreg.domain.semver import parse_semver


@dataclass(frozen=True)
class V:
    version: str
    id: int


def versions(*texts: str) -> list[V]:
    return [V(t, i) for i, t in enumerate(texts)]


def test_latest_is_the_highest_release() -> None:
    assert latest(versions("1.0.0", "2.0.0-rc.1", "1.5.0")) == V("1.5.0", 2)


def test_latest_falls_back_to_the_highest_prerelease() -> None:
    assert latest(versions("1.0.0-alpha", "1.0.0-beta")) == V("1.0.0-beta", 1)


def test_non_semver_versions_rank_below_semver_by_publish_order() -> None:
    items = versions("2025.01", "1.0.0", "2025.02")
    assert [v.version for v in newest_first(items)] == ["1.0.0", "2025.02", "2025.01"]
    assert latest(versions("2025.01", "2025.02")) == V("2025.02", 1)


def test_select_by_each_selector_type() -> None:
    items = versions("1.0.0", "1.2.0", "1.2.5", "2.0.0", "2025-01-01")
    aliases = {"stable": "1.2.0"}
    assert select(items, aliases, parse_selector("latest")).version == "2.0.0"  # type: ignore[union-attr]
    assert select(items, aliases, parse_selector("^1.2")).version == "1.2.5"  # type: ignore[union-attr]
    assert select(items, aliases, parse_selector("stable")).version == "1.2.0"  # type: ignore[union-attr]
    assert select(items, aliases, parse_selector("2025-01-01")).version == "2025-01-01"  # type: ignore[union-attr]
    assert select(items, aliases, parse_selector("1.0.0+build")).version == "1.0.0"  # type: ignore[union-attr]
    assert select(items, aliases, parse_selector("canary")) is None
    assert select(items, aliases, parse_selector("^3")) is None


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
        min_size=1,
        max_size=10,
        unique=True,
    )
)
def test_newest_first_is_descending_precedence(cores: list[tuple[int, int, int]]) -> None:
    items = [V(f"{a}.{b}.{c}", i) for i, (a, b, c) in enumerate(cores)]
    ordered = [parse_semver(v.version) for v in newest_first(items)]
    assert ordered == sorted(ordered, reverse=True)  # type: ignore[type-var]


version_texts = st.one_of(
    st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
    st.builds(
        lambda a, b, p: f"{a}.{b}.0-{p}",
        st.integers(0, 3),
        st.integers(0, 3),
        st.sampled_from(["alpha", "rc.1", "1"]),
    ),
    st.sampled_from(["2025.01", "2025.02", "nightly-7"]),
)


@given(st.lists(version_texts, min_size=1, max_size=12, unique=True))
def test_supersedes_folded_in_publish_order_agrees_with_latest(published: list[str]) -> None:
    current: str | None = None
    for text in published:
        if supersedes(text, current):
            current = text
    expected = latest([V(t, i) for i, t in enumerate(published)])
    assert expected is not None and current == expected.version
