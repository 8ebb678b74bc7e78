"""Governance: each tenant's policy (versioned, audited), its exemptions, and the checks applied at publish.

Hot paths (publish, promotion, resolution) call ``load`` inside their transaction: one query for the current
revision, one for the exemptions; the parsed policy (CEL compiled) is cached by the document's digest, so a
revision is parsed once per process. The admission webhook (``run_webhook``) is network I/O: callers read the
policy, call it, and only then open their write transaction.
"""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agentreg.domain.digest import canonical_json, digest_of
from agentreg.domain.errors import Conflict, FieldIssue, Invalid, NotFound, PolicyDenied, PreconditionFailed
from agentreg.domain.lifecycle import check_reason
from agentreg.domain.names import check_tenant_id
from agentreg.domain.permissions import Action, authorize
from agentreg.domain.policy import (
    DEFAULT_POLICY,
    Candidate,
    Decision,
    Exemption,
    Outcome,
    Phase,
    Policy,
    admit,
    parse_policy,
)
from agentreg.domain.policy_document import DEFAULT_DOCUMENT, parse_exempted_rules, parse_exemption_resource
from agentreg.domain.principals import Principal
from agentreg.services import audit, clock
from agentreg.services.access import member_tenant, pick_tenant, readers
from agentreg.services.views import if_match_holds
from agentreg.services.webhook import run_webhook
from agentreg.store.governance import ExemptionRow, PolicyRow
from agentreg.store.interface import Store, Tx

__all__ = [
    "ExemptionView",
    "PolicyView",
    "TenantPolicy",
    "add_exemption",
    "decision_json",
    "delete_exemption",
    "get_policy",
    "list_exemptions",
    "list_revisions",
    "load",
    "policy_etag",
    "publish_checks",
    "put_policy",
    "run_webhook",
    "stored_document",
]

MAX_EXEMPTION = timedelta(days=366)
_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """A tenant's policy in effect, with its active exemptions."""

    policy: Policy
    revision: int  # 0: the tenant never set one, the defaults apply
    document: dict[str, Any]  # shared with the cache: read it, never change it
    exemptions: tuple[Exemption, ...]


@dataclass(frozen=True, slots=True)
class PolicyView:
    tenant: str
    revision: int
    document: dict[str, Any]
    policy: Policy
    updated_at: datetime | None
    updated_by: str | None

    @property
    def etag(self) -> str:
        return policy_etag(self.revision)


@dataclass(frozen=True, slots=True)
class ExemptionView:
    row: ExemptionRow
    active: bool


def policy_etag(revision: int) -> str:
    return f'"p-{revision}"'


# --- the policy in effect -------------------------------------------------------------------------------

_parsed: OrderedDict[str, tuple[Policy, dict[str, Any]]] = OrderedDict()


def _parse_stored(row: PolicyRow) -> tuple[Policy, dict[str, Any]]:
    """The stored revision parsed, cached by digest (the same document always parses the same way)."""
    hit = _parsed.get(row.digest)
    if hit is not None:
        _parsed.move_to_end(row.digest)
        return hit
    document = json.loads(row.document)
    try:
        policy = parse_policy(document)
    except Invalid as exc:  # accepted once, refused by a stricter release: say so instead of a 422
        raise Conflict(
            f"tenant {row.tenant_id!r}'s policy revision {row.revision} no longer parses ({exc.message}); "
            "put a corrected policy"
        ) from None
    _remember(row.digest, policy, document)
    return policy, document


def _remember(digest: str, policy: Policy, document: dict[str, Any]) -> None:
    _parsed[digest] = (policy, document)
    if len(_parsed) > _CACHE_SIZE:
        _parsed.popitem(last=False)


def _exemption(row: ExemptionRow) -> Exemption:
    return Exemption(row.id, row.resource, row.rules, row.reason, row.approved_by, row.expires_at)


async def load(tx: Tx, tenant_id: str, now: datetime) -> TenantPolicy:
    """The tenant's policy in effect and its exemptions active at ``now``."""
    row = await tx.current_policy(tenant_id)
    policy, document = _parse_stored(row) if row is not None else (DEFAULT_POLICY, DEFAULT_DOCUMENT)
    exemptions = tuple(_exemption(e) for e in await tx.list_exemptions(tenant_id) if e.expires_at > now)
    return TenantPolicy(policy, row.revision if row else 0, document, exemptions)


def _view(tenant: str, row: PolicyRow | None) -> PolicyView:
    if row is None:
        return PolicyView(tenant, 0, DEFAULT_DOCUMENT, DEFAULT_POLICY, None, None)
    policy, document = _parse_stored(row)
    return PolicyView(tenant, row.revision, document, policy, row.created_at, row.created_by)


async def _tenant(
    tx: Tx, actor: Principal, tenant: str | None, what: str, action: Action, writing: datetime | None = None
) -> str:
    """The tenant named (or the actor's only one): 404 unless the actor belongs to it, then authorized.

    A member's tenant may have no row yet (single-user mode, an OIDC group seen for the first time): reading
    gives the defaults, and the first write creates the row, as a first publish does."""
    tenant = check_tenant_id(pick_tenant(actor, tenant, what), "/tenant")
    if tenant not in actor.memberships:
        await member_tenant(tx, actor, tenant)
    authorize(actor, action, tenant)
    if writing is not None:
        await tx.ensure_tenant(tenant, tenant, writing)
    return tenant


async def get_policy(store: Store, actor: Principal, tenant: str | None) -> PolicyView:
    async with store.read(readers=readers(actor)) as tx:
        tenant = await _tenant(tx, actor, tenant, "whose policy to read", Action.READ)
        return _view(tenant, await tx.current_policy(tenant))


async def put_policy(
    store: Store, actor: Principal, raw: Any, tenant: str | None, if_match: str | None
) -> PolicyView:
    """Replace the tenant's policy: a new revision, unless the document is the one in effect already.
    ``if_match``: the ETag (``"p-<revision>"``) the caller read."""
    policy = parse_policy(raw)  # every problem is reported before anything is opened
    canonical = canonical_json(raw)
    digest = digest_of(canonical)
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        tenant = await _tenant(tx, actor, tenant, "whose policy to set", Action.POLICY_MANAGE, now)
        await tx.lock(f"policy:{tenant}")
        current = await tx.current_policy(tenant)
        revision = current.revision if current else 0
        if not if_match_holds(if_match, policy_etag(revision)):
            raise PreconditionFailed(
                f"the policy of {tenant!r} is at revision {revision}, not the one you read"
            )
        if current is not None and current.digest == digest:
            return _view(tenant, current)
        row = PolicyRow(tenant, revision + 1, canonical.decode(), digest, now, actor.subject)
        await tx.insert_policy(row)
        await audit.record(
            tx,
            actor,
            "policy.update",
            f"policy/{tenant}",
            now,
            tenant=tenant,
            before=current.digest if current else None,
            after=digest,
            revision=row.revision,
        )
    _remember(digest, policy, json.loads(canonical))
    return _view(tenant, row)


def stored_document(row: PolicyRow) -> dict[str, Any]:
    """A revision's document as it was put."""
    document: dict[str, Any] = json.loads(row.document)
    return document


async def list_revisions(store: Store, actor: Principal, tenant: str | None) -> tuple[str, list[PolicyRow]]:
    """(the tenant, every revision of its policy, newest first)."""
    async with store.read(readers=readers(actor)) as tx:
        tenant = await _tenant(tx, actor, tenant, "whose policy to read", Action.READ)
        return tenant, await tx.list_policies(tenant)


# --- exemptions -------------------------------------------------------------------------------------------


async def list_exemptions(store: Store, actor: Principal, tenant: str | None) -> list[ExemptionView]:
    """Every exemption of the tenant, expired ones included (marked inactive)."""
    now = clock.now()
    async with store.read(readers=readers(actor)) as tx:
        tenant = await _tenant(tx, actor, tenant, "whose exemptions to list", Action.READ)
        return [ExemptionView(r, r.expires_at > now) for r in await tx.list_exemptions(tenant)]


async def add_exemption(
    store: Store, actor: Principal, body: Mapping[str, Any], tenant: str | None
) -> ExemptionView:
    """``body``: {resource, rules, reason, expiresAt}; the actor is the approver."""
    now = clock.now()
    resource, rules, reason, expires_at = _exemption_body(body, now)
    async with store.begin(readers=readers(actor)) as tx:
        tenant = await _tenant(tx, actor, tenant, "to exempt in", Action.POLICY_MANAGE, now)
        row = ExemptionRow(
            id=secrets.token_hex(8),
            tenant_id=tenant,
            resource=resource,
            rules=rules,
            reason=reason,
            approved_by=actor.subject,
            expires_at=expires_at,
            created_at=now,
        )
        await tx.insert_exemption(row)
        await audit.record(
            tx,
            actor,
            "policy.exemption.add",
            f"exemption/{row.id}",
            now,
            tenant=tenant,
            reason=reason,
            resource=resource,
            rules=list(rules),
            expiresAt=expires_at.isoformat(),
        )
    return ExemptionView(row, True)


def _exemption_body(body: Mapping[str, Any], now: datetime) -> tuple[str, tuple[str, ...], str, datetime]:
    problems: list[FieldIssue] = []
    checked: list[Any] = []
    for check in (
        lambda: parse_exemption_resource(body.get("resource"), "/resource"),
        lambda: parse_exempted_rules(body.get("rules"), "/rules"),
        lambda: check_reason(body.get("reason"), "/reason"),
        lambda: _expiry(body.get("expiresAt"), now),
    ):
        try:
            checked.append(check())
        except Invalid as exc:
            problems.extend(exc.details)
    if problems:
        raise Invalid.of(problems)
    return checked[0], checked[1], checked[2], checked[3]


def _expiry(value: Any, now: datetime) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Invalid.at("/expiresAt", "must be an RFC 3339 time, e.g. 2027-01-01T00:00:00Z") from None
    if not isinstance(value, datetime):
        raise Invalid.at("/expiresAt", "is required: an RFC 3339 time, e.g. 2027-01-01T00:00:00Z")
    if value.tzinfo is None:
        raise Invalid.at("/expiresAt", "give a time zone, e.g. 2027-01-01T00:00:00Z")
    if value <= now:
        raise Invalid.at("/expiresAt", "must be in the future")
    if value > now + MAX_EXEMPTION:
        raise Invalid.at("/expiresAt", "must be at most a year ahead: exemptions are reviewed, not forgotten")
    return value


async def delete_exemption(
    store: Store, actor: Principal, exemption_id: str, tenant: str | None
) -> ExemptionRow:
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        tenant = await _tenant(tx, actor, tenant, "whose exemption to delete", Action.POLICY_MANAGE)
        row = await tx.delete_exemption(tenant, exemption_id) if len(exemption_id) <= 32 else None
        if row is None:
            raise NotFound(f"tenant {tenant!r} has no exemption {exemption_id!r}")
        await audit.record(
            tx,
            actor,
            "policy.exemption.delete",
            f"exemption/{row.id}",
            now,
            tenant=tenant,
            resource=row.resource,
            rules=list(row.rules),
        )
    return row


# --- checks at publish ---------------------------------------------------------------------------------------


async def publish_checks(
    tx: Tx, policy: TenantPolicy, candidate: Candidate, now: datetime
) -> tuple[FieldIssue, ...]:
    """Quotas, allow/deny and the CEL rules of the publish phase for a version about to be created (not for
    one that exists already). Raises PolicyDenied; returns the soft rules' warnings."""
    await _check_quotas(tx, policy.policy, candidate)
    decision = admit(
        policy.policy, candidate, phase=Phase.PUBLISH, environment=None, now=now, exemptions=policy.exemptions
    )
    failed = [r for r in decision.rules if r.result is Outcome.FAIL]
    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise PolicyDenied(
            f"the tenant's policy refuses this version: {failed[0].message}{more}",
            [FieldIssue(_field(r.id), f"policy rule {r.id}: {r.message}") for r in failed],
            extra={"decision": decision_json(decision)},
        )
    return tuple(
        FieldIssue("", f"policy rule {r.id}: {r.message}") for r in decision.rules if r.result is Outcome.WARN
    )


def _field(rule_id: str) -> str:
    return "/metadata/name" if rule_id == "allow" or rule_id.startswith("deny.") else ""


async def _check_quotas(tx: Tx, policy: Policy, candidate: Candidate) -> None:
    quotas = policy.quotas
    if quotas.max_resources_per_namespace is None and quotas.max_versions_per_namespace is None:
        return
    resources, versions = await tx.namespace_counts(candidate.namespace)
    exists = await tx.find_resource(None, candidate.kind, candidate.namespace, candidate.name) is not None
    added = {"resources": (resources, 0 if exists else 1, quotas.max_resources_per_namespace)}
    added["versions"] = (versions, 1, quotas.max_versions_per_namespace)
    over = [
        (what, count, limit)
        for what, (count, more, limit) in added.items()
        if limit is not None and more and count + more > limit
    ]
    if over:
        issues = [
            FieldIssue(
                "/metadata/namespace",
                f"quota: {candidate.namespace} holds {count} {what}; the tenant's policy allows at most {limit}",
            )
            for what, count, limit in over
        ]
        raise PolicyDenied(f"the namespace's quota is used up: {issues[0].issue}", issues)


def decision_json(decision: Decision) -> dict[str, Any]:
    """A decision as the API answers it (the governance check and ``error.decision`` share this shape)."""
    return {
        "allowed": decision.allowed,
        "rules": [
            {"id": r.id, "effect": r.effect.value, "result": r.result.value, "message": r.message}
            for r in decision.rules
        ],
        "exemptions": [exemption_json(e) for e in decision.exemptions],
    }


def exemption_json(exemption: Exemption | ExemptionRow) -> dict[str, Any]:
    return {
        "id": exemption.id,
        "resource": exemption.resource,
        "rules": list(exemption.rules),
        "reason": exemption.reason,
        "approvedBy": exemption.approved_by,
        "expiresAt": exemption.expires_at.isoformat(),
    }
