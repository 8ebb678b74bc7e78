"""Compatibility rules: the check a publish makes against the previous version of its major, and the diff
``GET …/versions/{v}/compatibility`` shows.

The comparison base is the highest earlier SemVer version of the same major that is not redacted (a
redacted version keeps only a tombstone, which would make every change look like an addition).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentreg.domain.compat import Bump, breaking_changes, change_bump, needs_major, required_bump
from agentreg.domain.documents import ValidatedDocument
from agentreg.domain.errors import BreakingChange, Conflict, FieldIssue, Invalid, InvalidRequest
from agentreg.domain.kinds import Kind
from agentreg.domain.names import Selector, SelectorType, parse_selector
from agentreg.domain.permissions import Action
from agentreg.domain.principals import Principal
from agentreg.domain.semver import SemVer, parse_semver
from agentreg.services.access import readers
from agentreg.services.catalog import select_version, version_of
from agentreg.store.interface import ResourceRow, Store, Tx, VersionRow

WARNING = "breaking change without a major version bump: "


@dataclass(frozen=True, slots=True)
class CompatReport:
    """``version`` compared with ``against`` (None: there is no earlier version to compare with)."""

    version: str
    against: str | None
    compatible: bool
    breaking: tuple[FieldIssue, ...]
    bump: Bump  # the least bump the changes need
    version_bump: Bump  # the bump the version number makes over ``against``
    needs_major: bool  # breaking, without the major bump that needs


async def publish_check(
    tx: Tx, resource: ResourceRow, validated: ValidatedDocument, refuse: bool
) -> tuple[FieldIssue, ...]:
    """Compare a version being published with the highest earlier version of its major (for a release, the
    highest earlier release: pre-releases promise no compatibility).

    Breaking changes raise BreakingChange when ``refuse`` (the tenant's policy), else come back as warnings;
    () when nothing breaks or there is nothing to compare with (a new major, a non-SemVer version).
    """
    doc = validated.document
    new = parse_semver(doc.version)
    if new is None:
        return ()
    base = await _publish_base(tx, resource, new)
    if base is None:
        return ()
    old = json.loads(await tx.version_document(base.id))
    changes = breaking_changes(doc.kind, old, doc.identity())
    if not changes:
        return ()
    if refuse:
        first = changes[0]
        more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
        raise BreakingChange(
            f"{doc.kind.value} {doc.full_name} {doc.version} breaks compatibility with {base.version}: "
            f"{first.field}: {first.issue}{more}; a breaking change needs a new major version "
            f"({new.major + 1}.0.0)",
            changes,
        )
    return tuple(FieldIssue(c.field, WARNING + c.issue) for c in changes)


async def compatibility(
    store: Store,
    actor: Principal,
    kind: Kind,
    namespace: str,
    name: str,
    version: str,
    against: str | None,
) -> CompatReport:
    """What breaks from ``against`` (default: the highest earlier version of the same major, else the highest
    earlier one) to ``version``."""
    against_selector = _against(against) if against is not None else None
    async with store.read(readers=readers(actor)) as tx:
        resource, row = await version_of(tx, actor, kind, namespace, name, version, Action.READ)
        if against_selector is not None:
            base: VersionRow | None = await select_version(tx, resource, against_selector)
        else:
            base = _default_base(await tx.list_versions(resource.id), row)
        if base is None:
            return CompatReport(row.version, None, True, (), "none", "none", False)
        for compared in (row, base):
            _comparable(resource, compared)
        new_doc = await _document(tx, row)
        old_doc = await _document(tx, base)
    breaking = tuple(breaking_changes(kind, old_doc, new_doc))
    return CompatReport(
        version=row.version,
        against=base.version,
        compatible=not breaking,
        breaking=breaking,
        bump=change_bump(kind, old_doc, new_doc),
        version_bump=required_bump(base.version, row.version),
        needs_major=bool(breaking) and needs_major(base.version, row.version),
    )


def _against(text: str) -> Selector:
    try:
        selector = parse_selector(text, "/against")
    except Invalid as exc:
        raise InvalidRequest(exc.message, exc.details) from None
    if selector.type not in (SelectorType.EXACT, SelectorType.LITERAL):
        raise InvalidRequest.at("/against", "name an exact version, not a range, an alias or 'latest'")
    return selector


async def _publish_base(tx: Tx, resource: ResourceRow, new: SemVer) -> VersionRow | None:
    """The version ``new`` is compared with, in one indexed lookup for the usual publish (a release above
    the highest release so far); by scanning the versions otherwise (a backport, a pre-release)."""
    latest = parse_semver(resource.latest_version) if resource.latest_version else None
    if latest is not None and not new.is_prerelease and not latest.is_prerelease and new > latest:
        if latest.major != new.major:
            return None  # every release is below the new major
        assert resource.latest_version is not None
        row = await tx.find_version(resource.id, resource.latest_version, None)
        if row is not None and row.redacted is None:
            return row
    versions = await tx.list_versions(resource.id)
    return _earlier(versions, new, same_major=True, releases_only=not new.is_prerelease)


def _earlier(
    versions: Sequence[VersionRow], new: SemVer, *, same_major: bool, releases_only: bool = False
) -> VersionRow | None:
    """The highest unredacted SemVer version below ``new`` (in ``new``'s major when ``same_major``; only
    releases when ``releases_only``)."""
    best: tuple[SemVer, int, VersionRow] | None = None
    for row in versions:
        semver = parse_semver(row.version)
        if semver is None or row.redacted is not None or not semver < new:
            continue
        if releases_only and semver.is_prerelease:
            continue
        if same_major and semver.major != new.major:
            continue
        if best is None or (semver, row.id) > best[:2]:
            best = (semver, row.id, row)
    return best[2] if best is not None else None


def _default_base(versions: Sequence[VersionRow], row: VersionRow) -> VersionRow | None:
    new = parse_semver(row.version)
    if new is None:
        return None
    releases = not new.is_prerelease
    return _earlier(versions, new, same_major=True, releases_only=releases) or _earlier(
        versions, new, same_major=False, releases_only=releases
    )


def _comparable(resource: ResourceRow, row: VersionRow) -> None:
    if row.redacted is not None:
        raise Conflict(
            f"{resource.kind} {resource.namespace}/{resource.name} {row.version} is redacted; "
            "its document can no longer be compared"
        )


async def _document(tx: Tx, row: VersionRow) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(await tx.version_document(row.id))
    return document
