"""SemVer precedence and node-semver ranges, with properties checked by hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentreg.domain.semver import SemVer, looks_like_range, parse_range, parse_semver

identifiers = st.one_of(st.integers(0, 20), st.sampled_from(["alpha", "beta", "rc", "a-1", "x2"]))
versions = st.builds(
    SemVer,
    st.integers(0, 4),
    st.integers(0, 4),
    st.integers(0, 4),
    st.lists(identifiers, max_size=3).map(tuple),
    st.lists(st.sampled_from(["build", "7", "sha"]), max_size=2).map(tuple),
)
ranges = st.one_of(
    st.builds(
        lambda op, v: f"{op}{v.major}.{v.minor}.{v.patch}",
        st.sampled_from(["^", "~", ">=", "<", "<=", ">", ""]),
        versions,
    ),
    st.builds(lambda v: f"{v.major}.x", versions),
    st.builds(lambda v: f"^{v.major}.{v.minor}", versions),
    st.builds(lambda a, b: f">={a.major}.{a.minor} <{b.major}", versions, versions),
    st.builds(lambda a, b: f"{a.major}.{a.minor}.{a.patch} - {b.major}.{b.minor}", versions, versions),
    st.builds(lambda v: f"^{v}", versions.filter(lambda v: v.is_prerelease)),
)


def test_spec_precedence_example() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]
    parsed = [parse_semver(v) for v in ordered]
    assert parsed == sorted(parsed)  # type: ignore[type-var]


@pytest.mark.parametrize(
    "text", ["1.2", "01.2.3", "1.2.3-", "1.2.3-01", "v1.2.3", "1.2.3+", "latest", "", "1.2.3.4"]
)
def test_parse_semver_rejects_what_semver_2_rejects(text: str) -> None:
    assert parse_semver(text) is None


def test_build_metadata_does_not_change_identity() -> None:
    assert parse_semver("1.2.3+a") == parse_semver("1.2.3+b")
    assert str(parse_semver("1.2.3-rc.1+b.7")) == "1.2.3-rc.1+b.7"


@given(versions, versions, versions)
def test_ordering_is_total_and_transitive(a: SemVer, b: SemVer, c: SemVer) -> None:
    assert (a < b) + (b < a) + (a == b) == 1
    if a <= b and b <= c:
        assert a <= c


@given(versions)
def test_str_round_trips(v: SemVer) -> None:
    parsed = parse_semver(str(v))
    assert parsed == v
    assert parsed is not None and parsed.build == v.build


@given(ranges, st.lists(versions, max_size=12))
def test_highest_match_is_a_member_and_maximal(text: str, candidates: list[SemVer]) -> None:
    r = parse_range(text)
    best = r.max_satisfying(candidates)
    matching = [v for v in candidates if r.satisfied_by(v)]
    if best is None:
        assert matching == []
    else:
        assert best in candidates and r.satisfied_by(best)
        assert all(v <= best for v in matching)


@given(ranges, versions)
def test_prereleases_match_only_when_the_range_names_one(text: str, v: SemVer) -> None:
    r = parse_range(text)
    if v.is_prerelease and r.satisfied_by(v):
        assert r.names_prerelease()
        assert any(c.version.prerelease and c.version.core == v.core for s in r.sets for c in s)


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("^1.2", ["1.2.0", "1.9.9"], ["1.1.9", "2.0.0", "2.0.0-rc.1", "1.3.0-beta"]),
        ("~1.2.0", ["1.2.0", "1.2.9"], ["1.3.0", "1.1.0"]),
        (">=1.0 <2", ["1.0.0", "1.99.0"], ["2.0.0", "0.9.0", "1.5.0-rc.1"]),
        ("1.x", ["1.0.0", "1.5.3"], ["2.0.0", "0.1.0"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        (
            "^1.2.3-beta.2",
            ["1.2.3-beta.2", "1.2.3-beta.10", "1.2.3", "1.9.0"],
            ["1.2.3-beta.1", "1.2.4-beta.1", "2.0.0"],
        ),
        ("1.2.3 - 2.3", ["1.2.3", "2.3.9"], ["2.4.0", "1.2.2"]),
        (">1.2", ["1.3.0"], ["1.2.9"]),
        ("<=1.2", ["1.2.9"], ["1.3.0"]),
        ("1.0.0 || >=3", ["1.0.0", "3.1.0"], ["2.0.0"]),
        ("*", ["0.0.1", "9.0.0"], ["1.0.0-rc.1"]),
    ],
)
def test_node_semver_semantics(text: str, inside: list[str], outside: list[str]) -> None:
    r = parse_range(text)
    for v in inside:
        assert r.satisfied_by(parse_semver(v)), f"{v} should satisfy {text}"  # type: ignore[arg-type]
    for v in outside:
        assert not r.satisfied_by(parse_semver(v)), f"{v} should not satisfy {text}"  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["^x.y", ">=", "1.2.3 -", "stable", "latest", "1.2.3.4"])
def test_invalid_ranges_are_not_ranges(text: str) -> None:
    assert not looks_like_range(text)
