"""Which version a selector means: ordering, ``latest``, aliases, exact versions and ranges. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

from agentreg.domain.names import Selector, SelectorType
from agentreg.domain.semver import SemVer, parse_range, parse_semver


class Versioned(Protocol):
    @property
    def version(self) -> str: ...

    @property
    def id(self) -> int:
        """Publish order: a larger id was published later."""


V = TypeVar("V", bound=Versioned)


def newest_first(items: Sequence[V]) -> list[V]:
    semvers = [(parse_semver(i.version), i) for i in items]
    ranked = sorted(
        ((s, i) for s, i in semvers if s is not None), key=lambda p: (p[0], p[1].id), reverse=True
    )
    literal = sorted((i for s, i in semvers if s is None), key=lambda i: i.id, reverse=True)
    return [i for _, i in ranked] + literal


def latest(items: Sequence[V]) -> V | None:
    """The highest release; else the highest pre-release; else the newest non-SemVer version."""
    best_release: tuple[SemVer, V] | None = None
    best_pre: tuple[SemVer, V] | None = None
    newest_literal: V | None = None
    for item in items:
        semver = parse_semver(item.version)
        if semver is None:
            if newest_literal is None or item.id > newest_literal.id:
                newest_literal = item
        elif semver.is_prerelease:
            if best_pre is None or semver > best_pre[0]:
                best_pre = (semver, item)
        elif best_release is None or semver > best_release[0]:
            best_release = (semver, item)
    if best_release is not None:
        return best_release[1]
    if best_pre is not None:
        return best_pre[1]
    return newest_literal


def supersedes(new: str, current: str | None) -> bool:
    """Whether publishing ``new`` makes it ``latest`` over the ``current`` latest (None: no versions yet).

    Folding this over versions in publish order gives the same answer as ``latest`` over all of them, so the
    store can keep ``latest`` up to date in O(1) per publish.
    """
    if current is None:
        return True
    new_semver, current_semver = parse_semver(new), parse_semver(current)
    if new_semver is None:  # a non-SemVer version is latest only while no SemVer version exists
        return current_semver is None
    if current_semver is None:
        return True
    if new_semver.is_prerelease != current_semver.is_prerelease:
        return current_semver.is_prerelease
    return new_semver > current_semver


def select(items: Sequence[V], aliases: Mapping[str, str], selector: Selector) -> V | None:
    """The version ``selector`` picks among ``items`` (aliases map alias → version string), or None."""
    if selector.type == SelectorType.LATEST:
        return latest(items)
    for item in items:
        if item.version == selector.text:
            return item
    if selector.type == SelectorType.EXACT:
        wanted = parse_semver(selector.text)
        return next((i for i in items if parse_semver(i.version) == wanted), None)
    if selector.type == SelectorType.ALIAS:
        target = aliases.get(selector.text)
        return next((i for i in items if i.version == target), None) if target is not None else None
    if selector.type == SelectorType.RANGE:
        wanted_range = parse_range(selector.text)
        best: tuple[SemVer, V] | None = None
        for item in items:
            semver = parse_semver(item.version)
            if (
                semver is not None
                and wanted_range.satisfied_by(semver)
                and (best is None or semver > best[0])
            ):
                best = (semver, item)
        return best[1] if best is not None else None
    return None


def preference(items: Sequence[V], selector: Selector) -> list[V]:
    """The versions a ``latest`` or range selector may pick, best first.

    ``latest``: releases (highest first), then pre-releases, then non-SemVer versions (newest first), so the
    first is ``latest(items)``; a range: the versions it is satisfied by, highest first. Resolution takes the
    first one the lifecycle and the environment admit.
    """
    if selector.type == SelectorType.LATEST:
        releases: list[tuple[SemVer, V]] = []
        pre: list[tuple[SemVer, V]] = []
        literal: list[V] = []
        for item in items:
            semver = parse_semver(item.version)
            if semver is None:
                literal.append(item)
            else:
                (pre if semver.is_prerelease else releases).append((semver, item))
        ranked = sorted(releases, key=lambda p: (p[0], p[1].id), reverse=True)
        ranked += sorted(pre, key=lambda p: (p[0], p[1].id), reverse=True)
        return [i for _, i in ranked] + sorted(literal, key=lambda i: i.id, reverse=True)
    if selector.type == SelectorType.RANGE:
        wanted = parse_range(selector.text)
        matching = [
            (s, i) for i in items if (s := parse_semver(i.version)) is not None and wanted.satisfied_by(s)
        ]
        return [i for _, i in sorted(matching, key=lambda p: (p[0], p[1].id), reverse=True)]
    chosen = select(items, {}, selector)
    return [chosen] if chosen is not None else []
