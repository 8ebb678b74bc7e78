"""Usage: batches of per-version, per-bucket counts from gateways and orchestrators, and their rollup.

Usage is telemetry, like heartbeats: it is authorized and tenant-scoped, but not audited (a gateway reports
every minute for every version it routes to; the audit chain records catalog changes, not traffic).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from agentreg.domain.errors import FieldIssue, Invalid
from agentreg.domain.evidence import UsageSummary
from agentreg.domain.kinds import Kind
from agentreg.domain.names import Ref, SelectorType
from agentreg.domain.permissions import Action
from agentreg.domain.principals import Principal
from agentreg.domain.semver import parse_semver
from agentreg.domain.usage import MAX_PROBLEMS, UsageItem, parse_batch, parse_window, summarize
from agentreg.services import clock
from agentreg.services.access import authorize_on, readers
from agentreg.services.catalog import version_of
from agentreg.store.evidence import UsageRow
from agentreg.store.interface import ResourceRow, Store, Tx, VersionRow

NO_SUCH_VERSION = "no such version (or not one you can see)"


@dataclass(frozen=True, slots=True)
class UsageView:
    window: str
    summary: UsageSummary
    buckets: int  # stored reports rolled up


async def report(store: Store, actor: Principal, body: Any) -> int:
    """Store a batch of reports by ``actor`` (``usage.report`` on each version's owning tenant).

    The whole batch is checked first (422 naming each field at fault, unknown versions included), then
    written in one transaction. A report replaces the one ``actor`` sent before for the same version and
    bucket, so a batch may be resent safely. Returns how many reports were accepted.
    """
    now = clock.now()
    items = parse_batch(body, now)
    async with store.begin(readers=readers(actor)) as tx:
        versions = await _versions(tx, actor, items)
        rows = [
            UsageRow(
                version_id=version.id,
                reporter=actor.subject,
                bucket_start=item.bucket_start,
                bucket_seconds=item.bucket_seconds,
                requests=item.requests,
                errors=item.errors,
                latency=item.latency,
                callers=item.callers,
                updated_at=now,
            )
            for item, version in zip(items, versions, strict=True)
        ]
        # Two reports of one bucket in one batch: the store keeps the later, as if sent afterwards.
        await tx.upsert_usage(rows)
    return len(items)


async def _versions(tx: Tx, actor: Principal, items: Sequence[UsageItem]) -> list[VersionRow]:
    """The version each item names, each resource and version looked up once; another tenant's is as missing."""
    resources: dict[tuple[str, str, str], ResourceRow | None] = {}
    found: dict[Ref, VersionRow | None] = {}
    problems: list[FieldIssue] = []
    versions: list[VersionRow] = []
    for index, item in enumerate(items):
        ref = item.ref
        if ref not in found:
            assert ref.kind is not None
            name = (ref.kind.value, ref.namespace, ref.name)
            if name not in resources:
                resource = await tx.find_resource(readers(actor), *name)
                if resource is not None:
                    authorize_on(actor, Action.USAGE_REPORT, resource)
                resources[name] = resource
            found[ref] = await _exact(tx, resources[name], ref)
        version = found[ref]
        if version is None:
            problems.append(FieldIssue(f"/items/{index}/ref", NO_SUCH_VERSION))
        else:
            versions.append(version)
    if problems:
        raise Invalid.of(problems[:MAX_PROBLEMS])
    return versions


async def _exact(tx: Tx, resource: ResourceRow | None, ref: Ref) -> VersionRow | None:
    if resource is None:
        return None
    text = ref.selector.text
    semver = parse_semver(text) if ref.selector.type is SelectorType.EXACT else None
    return await tx.find_version(resource.id, text, semver.without_build() if semver else None)


async def usage_of(
    store: Store, actor: Principal, kind: Kind, namespace: str, name: str, version: str, window: str
) -> UsageView:
    """One version's usage over ``window`` (``<n>d`` or ``<n>h``), merged across reporters (``usage.read``)."""
    span = parse_window(window)
    now = clock.now()
    async with store.read(readers=readers(actor)) as tx:
        _, row = await version_of(tx, actor, kind, namespace, name, version, Action.USAGE_READ)
        rows = await tx.list_usage(row.id, now - span)
    days = math.ceil(span / timedelta(days=1))
    return UsageView(window, summarize(rows, days, now, window=span), len(rows))
