"""Publishing versions: one document, or a batch applied in dependency order."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from agentreg.domain.documents import ValidatedDocument, parse_document
from agentreg.domain.errors import (
    AgentRegError,
    Conflict,
    FieldIssue,
    Invalid,
    Malformed,
    NotFound,
    PolicyDenied,
)
from agentreg.domain.kinds import Kind, parse_kind
from agentreg.domain.lifecycle import State
from agentreg.domain.permissions import Action, allowed, authorize
from agentreg.domain.policy import Candidate, Phase, Policy
from agentreg.domain.principals import Principal
from agentreg.domain.resolution import supersedes
from agentreg.services import audit, clock, compat, governance, webhook
from agentreg.services.access import readers, sees_namespace
from agentreg.services.catalog import select_version
from agentreg.services.views import PublishOutcome, VersionView
from agentreg.store.interface import NewVersion, RefRow, ResourceRow, Store, Tx, VersionRow

PUBLISHED = "published"


async def publish(
    store: Store, actor: Principal, raw: Any, *, expected_kind: Kind | None = None, origin: str = PUBLISHED
) -> PublishOutcome:
    """Validate (before any transaction), then store the version; identical content is a no-op."""
    validated = parse_document(raw, expected_kind)
    return await _publish_validated(store, actor, validated, origin=origin, batch=frozenset())


async def _publish_validated(
    store: Store,
    actor: Principal,
    validated: ValidatedDocument,
    *,
    origin: str,
    batch: frozenset[tuple[str, str, str]],
) -> PublishOutcome:
    now = clock.now()
    try:
        return await _store(store, actor, validated, origin, batch, now, webhook_warnings=None)
    except _AskWebhook as ask:
        # The tenant's policy has an admission webhook. It is network I/O, so it is asked with no
        # transaction open, and the publish runs again with its verdict (nothing was written).
        warnings = await _webhook(validated, ask.owner, ask.policy)
        return await _store(store, actor, validated, origin, batch, now, webhook_warnings=warnings)


class _AskWebhook(Exception):
    def __init__(self, owner: str, policy: Policy) -> None:
        self.owner, self.policy = owner, policy


async def _store(
    store: Store,
    actor: Principal,
    validated: ValidatedDocument,
    origin: str,
    batch: frozenset[tuple[str, str, str]],
    now: datetime,
    *,
    webhook_warnings: tuple[FieldIssue, ...] | None,
) -> PublishOutcome:
    doc = validated.document
    async with store.begin(readers=readers(actor)) as tx:
        await tx.lock(f"resource:{doc.kind.value}/{doc.full_name}")
        owner, claimed = await _publishing_tenant(tx, actor, doc.kind, doc.namespace, doc.name, now)
        resource = await tx.get_resource(owner, doc.kind.value, doc.namespace, doc.name)
        if resource is not None:
            existing = await _existing(tx, resource, validated)
            if existing is not None:
                warnings = await _ref_warnings(tx, actor, validated, batch)
                return PublishOutcome("unchanged", await _view(tx, resource, existing), warnings)
        tenant_policy = await governance.load(tx, owner, now)
        hook = tenant_policy.policy.webhook
        if webhook_warnings is None and hook is not None and Phase.PUBLISH in hook.phases:
            raise _AskWebhook(owner, tenant_policy.policy)
        policy_warnings = await governance.publish_checks(
            tx, tenant_policy, _candidate(validated, resource, now), now
        )
        compat_warnings: tuple[FieldIssue, ...] = ()
        if resource is None:
            resource = await tx.insert_resource(owner, doc.kind.value, doc.namespace, doc.name, now)
        else:
            compat_warnings = await compat.publish_check(
                tx, resource, validated, tenant_policy.policy.refuse_breaking
            )
        initial = tenant_policy.policy.initial_state.value
        version = await tx.insert_version(_new_version(resource, validated, origin, actor, now, initial))
        resource = await _record(tx, resource, validated, now)
        await audit.record(
            tx,
            actor,
            "version.publish",
            f"{doc.kind.value}/{doc.full_name}@{doc.version}",
            now,
            tenant=owner,
            after=validated.digest,
            origin=origin,
            claimedNamespace=claimed,
            state=initial,
        )
        warnings = (
            *validated.warnings,
            *policy_warnings,
            *(webhook_warnings or ()),
            *compat_warnings,
            *await _ref_warnings(tx, actor, validated, batch),
        )
    return PublishOutcome("created", VersionView(resource, version, validated.canonical.decode()), warnings)


async def check(
    store: Store, actor: Principal, validated: ValidatedDocument, batch: frozenset[tuple[str, str, str]]
) -> str:
    """A dry run: what publishing would do (``valid`` or ``unchanged``), raising what it would raise."""
    doc = validated.document
    async with store.read(readers=readers(actor)) as tx:
        owner = await tx.namespace_owner(doc.namespace)
        if owner is None:
            _claiming_tenant(actor, doc.namespace)
            return "valid"
        await _authorize_publish(tx, actor, owner, doc.kind, doc.namespace, doc.name)
        resource = await tx.get_resource(owner, doc.kind.value, doc.namespace, doc.name)
        existing = await _existing(tx, resource, validated)
    return "unchanged" if existing is not None else "valid"


async def _publishing_tenant(
    tx: Tx, actor: Principal, kind: Kind, namespace: str, name: str, now: datetime
) -> tuple[str, bool]:
    """The tenant that owns ``namespace``, claimed now for the actor's tenant if unclaimed and it may claim.

    Returns (tenant, claimed by this call); raises NotFound or Forbidden as reading would, then authorizes.
    """
    owner = await tx.namespace_owner(namespace)
    claimed = False
    if owner is None:
        home = _claiming_tenant(actor, namespace)
        await tx.lock(f"namespace:{namespace}")
        await tx.ensure_tenant(home, home, now)
        await tx.claim_namespace(namespace, home, now)
        # Another tenant may have claimed it between our read and our insert: check who owns it now.
        owner = await tx.namespace_owner(namespace)
        assert owner is not None
        claimed = owner == home
    await _authorize_publish(tx, actor, owner, kind, namespace, name)
    return owner, claimed


def _claiming_tenant(actor: Principal, namespace: str) -> str:
    """Publishing into an unclaimed namespace claims it, for a principal that may claim in its one tenant."""
    home = actor.home_tenant
    if home is None or not allowed(actor, Action.NAMESPACE_CLAIM, home, namespace=namespace):
        raise _foreign_namespace(namespace)
    return home


async def _authorize_publish(
    tx: Tx, actor: Principal, owner: str, kind: Kind, namespace: str, name: str
) -> None:
    if not actor.super_admin and owner not in actor.memberships:
        shared = await tx.get_namespace(namespace)
        if shared is None or not sees_namespace(actor, shared):
            raise _foreign_namespace(namespace)  # invisible: its existence must not show
    authorize(actor, Action.PUBLISH, owner, namespace=namespace, resource=f"{kind.value}/{namespace}/{name}")


def _foreign_namespace(namespace: str) -> NotFound:
    """Unclaimed and claimed by a tenant the actor cannot see read the same: existence must not show."""
    return NotFound(
        f"namespace {namespace!r} not found for your tenant; a tenant admin claims it with POST /v1/namespaces"
    )


async def _existing(tx: Tx, resource: ResourceRow | None, validated: ValidatedDocument) -> VersionRow | None:
    if resource is None:
        return None
    doc = validated.document
    existing = await tx.find_version(resource.id, doc.version, validated.semver_key)
    if existing is None:
        return None
    if existing.digest != validated.digest:
        raise Conflict(
            f"{doc.kind.value} {doc.full_name} version {existing.version} is already published with digest "
            f"{existing.digest}; published versions never change, publish a new version",
            [
                FieldIssue(
                    "/metadata/version",
                    f"already published as {existing.version} with digest {existing.digest}",
                )
            ],
        )
    return existing


def _candidate(validated: ValidatedDocument, resource: ResourceRow | None, now: datetime) -> Candidate:
    """The version about to be published, as the policy's publish rules see it."""
    doc = validated.document
    labels = {**(resource.labels if resource is not None else {}), **doc.labels}
    return Candidate(
        kind=doc.kind.value,
        namespace=doc.namespace,
        name=doc.name,
        version=doc.version,
        state=State.DRAFT,
        published_at=now,
        labels=labels,
        document=json.loads(validated.canonical),
    )


async def _webhook(validated: ValidatedDocument, owner: str, policy: Policy) -> tuple[FieldIssue, ...]:
    """Ask the owning tenant's admission webhook (a refusal raises; an unreachable one with ``failure: open``
    is a warning)."""
    doc = validated.document
    payload = {
        "phase": Phase.PUBLISH.value,
        "tenant": owner,
        "ref": f"{doc.kind.value}/{doc.full_name}@{doc.version}",
        "document": json.loads(validated.canonical),
    }
    verdict = await webhook.run_webhook(policy, Phase.PUBLISH, payload)
    if verdict is None:
        return ()
    if verdict.result == "fail":
        raise PolicyDenied(
            f"the admission webhook refused {payload['ref']}: {verdict.message}",
            [FieldIssue("", f"webhook: {verdict.message}")],
        )
    if verdict.result == "warn":
        return (FieldIssue("", f"admission webhook: {verdict.message}"),)
    return ()


def _new_version(
    resource: ResourceRow,
    validated: ValidatedDocument,
    origin: str,
    actor: Principal,
    now: datetime,
    state: str,
) -> NewVersion:
    facts = validated.facts
    refs = tuple(
        RefRow(
            field=at,
            kind=(ref.kind.value if ref.kind else ""),
            namespace=ref.namespace,
            name=ref.name,
            selector=ref.selector.text,
        )
        for at, ref in facts.refs
    )
    return NewVersion(
        resource_id=resource.id,
        version=validated.document.version,
        semver_key=validated.semver_key,
        digest=validated.digest,
        document=validated.canonical.decode(),
        title=facts.title,
        description=facts.description,
        protocol=facts.protocol,
        warnings=validated.warnings,
        origin=origin,
        published_at=now,
        published_by=actor.subject,
        refs=refs,
        state=state,
    )


async def _record(tx: Tx, resource: ResourceRow, validated: ValidatedDocument, now: datetime) -> ResourceRow:
    """Count the new version, make it ``latest`` if it supersedes, merge the envelope's labels and annotations."""
    doc, facts = validated.document, validated.facts
    latest = (
        (doc.version, facts.title, facts.description)
        if supersedes(doc.version, resource.latest_version)
        else None
    )
    labels = {**resource.labels, **doc.labels} if doc.labels else None
    annotations = {**resource.annotations, **doc.annotations} if doc.annotations else None
    await tx.update_resource(
        resource.id, now=now, labels=labels, annotations=annotations, latest=latest, added_version=True
    )
    changes: dict[str, Any] = {"version_count": resource.version_count + 1, "updated_at": now}
    if latest is not None:
        changes.update(latest_version=latest[0], title=latest[1], description=latest[2])
    if labels is not None:
        changes["labels"] = dict(sorted(labels.items()))
    if annotations is not None:
        changes["annotations"] = annotations
    return replace(resource, **changes)


async def _view(tx: Tx, resource: ResourceRow, version: VersionRow) -> VersionView:
    return VersionView(resource, version, await tx.version_document(version.id))


async def _ref_warnings(
    tx: Tx, actor: Principal, validated: ValidatedDocument, batch: frozenset[tuple[str, str, str]]
) -> tuple[FieldIssue, ...]:
    """Refs resolve when read, so a ref to nothing yet is a warning, not an error."""
    warnings: list[FieldIssue] = []
    if not validated.facts.refs:
        return ()
    for at, ref in validated.facts.refs:
        assert ref.kind is not None  # config slots always give refs a kind
        if (ref.kind.value, ref.namespace, ref.name) in batch:
            continue
        target = await tx.find_resource(readers(actor), ref.kind.value, ref.namespace, ref.name)
        if target is None:
            warnings.append(FieldIssue(at, f"no {ref.kind.value} {ref.full_name} is published yet"))
            continue
        try:
            await select_version(tx, target, ref.selector)
        except NotFound as exc:
            warnings.append(FieldIssue(at, exc.message))
    return tuple(warnings)


# --- apply --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyInput:
    index: int
    value: Any = None
    error: Invalid | Malformed | None = None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    index: int
    result: str  # created | unchanged | valid | failed
    kind: str | None = None
    name: str | None = None
    version: str | None = None
    digest: str | None = None
    warnings: tuple[FieldIssue, ...] = ()
    error: AgentRegError | None = None


async def apply(
    store: Store,
    actor: Principal,
    inputs: Sequence[ApplyInput],
    *,
    dry_run: bool = False,
    origin: str = PUBLISHED,
) -> list[ApplyResult]:
    """Publish each document in its own transaction, referenced documents of the batch first."""
    results: dict[int, ApplyResult] = {}
    valid: dict[int, ValidatedDocument] = {}
    for item in inputs:
        if item.error is not None:
            results[item.index] = ApplyResult(item.index, "failed", error=item.error)
            continue
        try:
            valid[item.index] = parse_document(item.value)
        except AgentRegError as exc:
            results[item.index] = _failed(item.index, item.value, exc)
    batch = frozenset((v.document.kind.value, v.document.namespace, v.document.name) for v in valid.values())
    for index in dependency_order(valid):
        await asyncio.sleep(0)  # one document per turn of the event loop: a large batch never starves reads
        validated = valid[index]
        doc = validated.document
        try:
            if dry_run:
                outcome = await check(store, actor, validated, batch)
                warnings = validated.warnings
            else:
                published = await _publish_validated(store, actor, validated, origin=origin, batch=batch)
                outcome, warnings = published.result, published.warnings
        except AgentRegError as exc:
            results[index] = ApplyResult(
                index, "failed", doc.kind.value, doc.full_name, doc.version, validated.digest, error=exc
            )
            continue
        results[index] = ApplyResult(
            index, outcome, doc.kind.value, doc.full_name, doc.version, validated.digest, tuple(warnings)
        )
    return [results[i] for i in sorted(results)]


def _failed(index: int, raw: Any, error: AgentRegError) -> ApplyResult:
    """A failed item still names what it was, as far as the input says."""
    kind = name = version = None
    if isinstance(raw, dict):
        kind = _kind_name(raw.get("kind"))
        metadata = raw.get("metadata")
        if isinstance(metadata, dict):
            ns, nm = metadata.get("namespace"), metadata.get("name")
            name = f"{ns}/{nm}" if isinstance(ns, str) and isinstance(nm, str) else None
            version = metadata.get("version") if isinstance(metadata.get("version"), str) else None
    return ApplyResult(index, "failed", kind, name, version, error=error)


def _kind_name(value: Any) -> str | None:
    """The kind name for any accepted spelling (responses use the kind name), or None."""
    if not isinstance(value, str):
        return None
    try:
        return parse_kind(value).value
    except Invalid:
        return None


def dependency_order(valid: dict[int, ValidatedDocument]) -> list[int]:
    """Indexes in an order where a document comes after the batch documents it refers to.

    Stable (input order among independent documents); documents in a cycle keep their input order.
    """
    by_key: dict[tuple[str, str, str], list[int]] = {}
    for index, v in valid.items():
        by_key.setdefault((v.document.kind.value, v.document.namespace, v.document.name), []).append(index)
    needs: dict[int, set[int]] = {}
    for index, v in valid.items():
        deps = set()
        for _, ref in v.facts.refs:
            if ref.kind is not None:
                deps.update(by_key.get((ref.kind.value, ref.namespace, ref.name), []))
        deps.discard(index)
        needs[index] = deps
    order: list[int] = []
    done: set[int] = set()
    pending = sorted(valid)
    while pending:
        ready = [i for i in pending if needs[i] <= done]
        if not ready:  # a cycle: take the first remaining in input order
            ready = [pending[0]]
        for i in ready:
            order.append(i)
            done.add(i)
        pending = [i for i in pending if i not in done]
    return order
