"""SemVer 2.0.0 versions and node-semver ranges (``^1.2``, ``~1.2.0``, ``>=1.0 <2``, ``1.x``, ``a - b``, ``||``).

Range semantics follow node-semver without ``includePrerelease``: a pre-release version only satisfies a
comparator set when some comparator in that set names a pre-release of the same ``major.minor.patch``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import total_ordering

_NUM = r"0|[1-9][0-9]*"
_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
_SEMVER_RE = re.compile(
    rf"^(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)
# Versions must fit in the store's integer columns and in node-semver's MAX_SAFE_INTEGER.
MAX_COMPONENT = 2**53 - 1


@total_ordering
@dataclass(frozen=True, slots=True)
class SemVer:
    """A SemVer 2.0.0 version. Equality and order ignore build metadata, as the spec requires."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str | int, ...] = ()
    build: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    @property
    def core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def _key(self) -> tuple[tuple[int, int, int], int, tuple[tuple[int, int | str], ...]]:
        # A release sorts after every pre-release of the same core; numeric identifiers sort before
        # alphanumeric ones; a shorter identifier list sorts first when it is a prefix of the longer.
        pre = tuple((0, p) if isinstance(p, int) else (1, p) for p in self.prerelease)
        return (self.core, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(p) for p in self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def without_build(self) -> str:
        """The version text that identifies it: build metadata does not make a different version."""
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(p) for p in self.prerelease)
        return text


def parse_semver(text: str) -> SemVer | None:
    """Parse a strict SemVer 2.0.0 string; None if it is not one."""
    match = _SEMVER_RE.fullmatch(text)
    if match is None:
        return None
    major, minor, patch = (int(match[g]) for g in ("major", "minor", "patch"))
    if max(major, minor, patch) > MAX_COMPONENT:
        return None
    pre = tuple(int(p) if p.isdigit() else p for p in match["pre"].split(".")) if match["pre"] else ()
    build = tuple(match["build"].split(".")) if match["build"] else ()
    return SemVer(major, minor, patch, pre, build)


class RangeError(ValueError):
    """The text is not a valid node-semver range."""


@dataclass(frozen=True, slots=True)
class Comparator:
    op: str  # one of "<", "<=", ">", ">=", "="
    version: SemVer

    def test(self, v: SemVer) -> bool:
        if self.op == "<":
            return v < self.version
        if self.op == "<=":
            return v <= self.version
        if self.op == ">":
            return v > self.version
        if self.op == ">=":
            return v >= self.version
        return v == self.version


@dataclass(frozen=True, slots=True)
class Range:
    """A union (``||``) of comparator sets; an empty set matches every release."""

    text: str
    sets: tuple[tuple[Comparator, ...], ...]

    def names_prerelease(self) -> bool:
        return any(c.version.prerelease for s in self.sets for c in s)

    def satisfied_by(self, version: SemVer) -> bool:
        return any(_test_set(s, version) for s in self.sets)

    def max_satisfying(self, versions: Iterable[SemVer]) -> SemVer | None:
        return max((v for v in versions if self.satisfied_by(v)), default=None)


def _test_set(comparators: Sequence[Comparator], version: SemVer) -> bool:
    if not all(c.test(version) for c in comparators):
        return False
    if not version.prerelease:
        return True
    return any(c.version.prerelease and c.version.core == version.core for c in comparators)


# A partial version: each of major/minor/patch may be missing or a wildcard (x, X, *).
_XR = r"(?:x|X|\*|0|[1-9][0-9]*)"
_PARTIAL = (
    rf"v?(?P<M>{_XR})(?:\.(?P<m>{_XR})(?:\.(?P<p>{_XR})"
    rf"(?:-?(?P<pre>{_IDENT}(?:\.{_IDENT})*))?(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?)?)?"
)
_PARTIAL_RE = re.compile(_PARTIAL, re.ASCII)
_HYPHEN_RE = re.compile(r"\s*(\S+)\s+-\s+(\S+)\s*", re.ASCII)
_TOKEN_RE = re.compile(r"(<=|>=|<|>|=|\^|~>?)?\s*([^\s<>=^~]+)", re.ASCII)


@dataclass(frozen=True, slots=True)
class _Partial:
    major: int | None
    minor: int | None
    patch: int | None
    prerelease: tuple[str | int, ...]

    def floor(self) -> SemVer:
        return SemVer(self.major or 0, self.minor or 0, self.patch or 0, self.prerelease)


def _wild(part: str | None) -> int | None:
    if part is None or part in ("x", "X", "*"):
        return None
    value = int(part)
    if value > MAX_COMPONENT:
        raise RangeError(f"version component {part} is too large")
    return value


def _parse_partial(text: str) -> _Partial:
    match = _PARTIAL_RE.fullmatch(text)
    if match is None:
        raise RangeError(f"invalid version {text!r} in range")
    major, minor, patch = _wild(match["M"]), _wild(match["m"]), _wild(match["p"])
    if major is None:
        minor = patch = None
    elif minor is None:
        patch = None
    pre: tuple[str | int, ...] = ()
    if match["pre"] and patch is not None:
        pre = tuple(int(p) if p.isdigit() else p for p in match["pre"].split("."))
    return _Partial(major, minor, patch, pre)


def _ceiling(major: int, minor: int, patch: int) -> Comparator:
    """``< major.minor.patch-0``: below every release *and* pre-release of that version."""
    return Comparator("<", SemVer(major, minor, patch, (0,)))


def _expand_x(p: _Partial) -> tuple[Comparator, ...]:
    if p.major is None:
        return ()
    if p.minor is None:
        return (Comparator(">=", SemVer(p.major, 0, 0)), _ceiling(p.major + 1, 0, 0))
    if p.patch is None:
        return (Comparator(">=", SemVer(p.major, p.minor, 0)), _ceiling(p.major, p.minor + 1, 0))
    return (Comparator("=", p.floor()),)


def _expand_tilde(p: _Partial) -> tuple[Comparator, ...]:
    if p.major is None:
        return ()
    if p.minor is None:
        return (Comparator(">=", SemVer(p.major, 0, 0)), _ceiling(p.major + 1, 0, 0))
    return (Comparator(">=", p.floor()), _ceiling(p.major, p.minor + 1, 0))


def _expand_caret(p: _Partial) -> tuple[Comparator, ...]:
    if p.major is None:
        return ()
    low = Comparator(">=", p.floor())
    if p.minor is None:
        return (low, _ceiling(p.major + 1, 0, 0))
    if p.major > 0:
        return (low, _ceiling(p.major + 1, 0, 0))
    if p.patch is None or p.minor > 0:
        return (low, _ceiling(0, p.minor + 1, 0))
    return (low, _ceiling(0, 0, p.patch + 1))


def _expand_primitive(op: str, p: _Partial) -> tuple[Comparator, ...]:
    if p.major is None:  # >=*, <=* match everything; <*, >* match nothing
        if op in (">=", "<="):
            return ()
        return (Comparator("<", SemVer(0, 0, 0, (0,))),)
    if p.patch is not None:
        return (Comparator(op, p.floor()),)
    # A partial with an operator: widen it as node-semver does.
    major, minor = p.major, p.minor
    if op == ">":
        if minor is None:
            return (Comparator(">=", SemVer(major + 1, 0, 0)),)
        return (Comparator(">=", SemVer(major, minor + 1, 0)),)
    if op == "<=":
        if minor is None:
            return (_ceiling(major + 1, 0, 0),)
        return (_ceiling(major, minor + 1, 0),)
    if op == "<":
        return (_ceiling(major, minor or 0, 0),)
    return (Comparator(">=", SemVer(major, minor or 0, 0)),)


def _expand_hyphen(low_text: str, high_text: str) -> tuple[Comparator, ...]:
    low, high = _parse_partial(low_text), _parse_partial(high_text)
    result: list[Comparator] = []
    if low.major is not None:
        result.append(Comparator(">=", low.floor()))
    if high.major is None:
        pass
    elif high.minor is None:
        result.append(_ceiling(high.major + 1, 0, 0))
    elif high.patch is None:
        result.append(_ceiling(high.major, high.minor + 1, 0))
    else:
        result.append(Comparator("<=", high.floor()))
    return tuple(result)


def _parse_set(text: str) -> tuple[Comparator, ...]:
    text = text.strip()
    if not text:
        return ()
    hyphen = _HYPHEN_RE.fullmatch(text)
    if hyphen:
        return _expand_hyphen(hyphen[1], hyphen[2])
    comparators: list[Comparator] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        token = _TOKEN_RE.match(text, pos)
        if token is None:
            raise RangeError(f"invalid range {text!r} at {text[pos:]!r}")
        op, version_text = token[1] or "", token[2]
        partial = _parse_partial(version_text)
        if op == "^":
            comparators.extend(_expand_caret(partial))
        elif op in ("~", "~>"):
            comparators.extend(_expand_tilde(partial))
        elif op in ("", "="):
            comparators.extend(_expand_x(partial))
        else:
            comparators.extend(_expand_primitive(op, partial))
        pos = token.end()
    return tuple(comparators)


def parse_range(text: str) -> Range:
    """Parse a node-semver range; raises RangeError with a readable message."""
    if len(text) > 256:
        raise RangeError("range is longer than 256 characters")
    sets = tuple(_parse_set(part) for part in text.split("||"))
    return Range(text, sets)


def looks_like_range(text: str) -> bool:
    """True if ``text`` parses as a node-semver range (and therefore cannot be an alias or a literal version)."""
    try:
        parse_range(text)
    except RangeError:
        return False
    return bool(text.strip())
