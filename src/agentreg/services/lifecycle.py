"""Lifecycle moves: readiness, promotion (gated, or fast-tracked by an admin), approvals, deprecation,
un-deprecation, retirement, and the kill switch. Each move is authorized, carries a reason and is audited in
its own transaction; rollback is moving an alias, not editing state."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from agentreg.domain.errors import (
    Conflict,
    Forbidden,
    GatesNotPassed,
    Invalid,
    NotFound,
    PolicyDenied,
)
from agentreg.domain.gates import ApprovalsGate, GateResult, Readiness, gate_config, readiness
from agentreg.domain.kinds import Kind
from agentreg.domain.lifecycle import (
    GATED,
    Move,
    State,
    Transition,
    check_reason,
    next_tier,
    parse_state,
    transition,
)
from agentreg.domain.names import parse_ref
from agentreg.domain.permissions import Action, authorize
from agentreg.domain.policy import Phase, RuleResult
from agentreg.domain.principals import ANONYMOUS, Principal
from agentreg.services import audit, clock, evidence, governance, webhook
from agentreg.services.access import readers, resource_path
from agentreg.services.catalog import exact_version, find_resource, version_of, version_path
from agentreg.services.selection import decide
from agentreg.services.views import ResourceView, VersionAddress, VersionView
from agentreg.store.evidence import ApprovalRow
from agentreg.store.interface import Mark, ResourceRow, Store, Tx, VersionRow, VersionState


@dataclass(frozen=True, slots=True)
class ReadinessView:
    resource: ResourceRow
    version: VersionRow
    readiness: Readiness
    gates_config: dict[str, dict[str, Any]]


def report_json(view: ReadinessView) -> dict[str, Any]:
    """The readiness report: the same shape for ``GET …/readiness`` and a refused promotion's ``error.report``."""
    r = view.readiness
    return {
        "ref": version_path(view.resource, view.version.version),
        "state": view.version.state,
        "target": r.target.value,
        "ready": r.ready,
        "fastTracked": r.fast_tracked,
        "gates": [_gate_json(g, view.gates_config.get(g.gate, {})) for g in r.gates],
    }


def _gate_json(result: GateResult, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "gate": result.gate,
        "status": result.status.value,
        "evidence": dict(result.evidence),
        "missing": result.missing,
        "config": config,
    }


async def _readiness(
    tx: Tx,
    tenant_policy: governance.TenantPolicy,
    resource: ResourceRow,
    version: VersionRow,
    target: State,
    now: datetime,
) -> ReadinessView:
    gates = tenant_policy.policy.gates
    found = await evidence.gather(tx, version, gates.windows(target) or {evidence.SUMMARY_WINDOW_DAYS}, now)
    result = readiness(gates, target, found, now)
    config = {g.name: gate_config(g) for g in gates.for_target(target)}
    return ReadinessView(resource, version, result, config)


async def get_readiness(store: Store, actor: Principal, at: VersionAddress, to: str | None) -> ReadinessView:
    async with store.read(readers=readers(actor)) as tx:
        resource, row = await version_of(tx, actor, at.kind, at.namespace, at.name, at.version, Action.READ)
        now = clock.now()
        tenant_policy = await governance.load(tx, resource.tenant_id, now)
        return await _readiness(tx, tenant_policy, resource, row, _target(row, to), now)


def _target(version: VersionRow, to: str | None) -> State:
    if to is not None:
        target = parse_state(to, "/to")
        if target not in GATED:
            raise Invalid.at("/to", "readiness is reported for experimental or certified")
        return target
    following = next_tier(State(version.state))
    if following is None:
        raise Invalid.at("/to", f"a {version.state} version has no next tier; name one with ?to=")
    return following


# --- promotion ----------------------------------------------------------------------------------------


async def promote(
    store: Store,
    actor: Principal,
    at: VersionAddress,
    *,
    to: str | None,
    reason: str,
    fast_track: bool = False,
) -> tuple[VersionView, ReadinessView]:
    """Move one tier up when every gate passes (or, for a lifecycle admin, past failing gates with
    ``fast_track``), and the tenant's policy and admission webhook allow it."""
    reason = check_reason(reason)
    requested = parse_state(to, "/to") if to is not None else None
    now = clock.now()
    # First pass, read-only: everything that decides, so the webhook (network) runs outside a transaction.
    async with store.read(readers=readers(actor)) as tx:
        resource, row = await version_of(
            tx, actor, at.kind, at.namespace, at.name, at.version, Action.PROMOTION_REQUEST
        )
        move = transition(State(row.state), Move.PROMOTE, to=requested)
        if fast_track:
            authorize(
                actor,
                Action.LIFECYCLE_ADMIN,
                resource.tenant_id,
                namespace=at.namespace,
                resource=resource_path(resource),
            )
        tenant_policy = await governance.load(tx, resource.tenant_id, now)
        report = await _readiness(tx, tenant_policy, resource, row, move.target, now)
        document = json.loads(await tx.version_document(row.id))
        decision = await decide(
            tx,
            tenant_policy,
            resource,
            row,
            phase=Phase.PROMOTE,
            now=now,
            state=move.target,
            document=document,
        )
    if not report.readiness.ready and not fast_track:
        failing = ", ".join(f"{g.gate} ({g.status.value})" for g in report.readiness.blocking)
        raise GatesNotPassed(
            f"{version_path(resource, row.version)} cannot be promoted to {move.target.value}: {failing}",
            extra={"report": report_json(report)},
        )
    if not decision.allowed:
        raise PolicyDenied(
            f"the tenant's policy refuses promoting {version_path(resource, row.version)}",
            extra={"decision": governance.decision_json(decision)},
        )
    verdict = await webhook.run_webhook(
        tenant_policy.policy,
        Phase.PROMOTE,
        {
            "phase": Phase.PROMOTE.value,
            "tenant": resource.tenant_id,
            "ref": version_path(resource, row.version),
            "targetState": move.target.value,
            "document": document,
        },
    )
    if verdict is not None and verdict.result == "fail":
        raise PolicyDenied(
            f"the admission webhook refused: {verdict.message}", extra={"decision": _webhook_json(verdict)}
        )
    fast_tracked = fast_track and not report.readiness.ready
    report = ReadinessView(
        report.resource,
        report.version,
        Readiness(report.readiness.target, report.readiness.gates, fast_tracked),
        report.gates_config,
    )
    async with store.begin(readers=readers(actor)) as tx:
        resource, current = await _locked(tx, actor, at, Action.PROMOTION_REQUEST)
        if current.state != row.state:
            raise Conflict(
                f"{version_path(resource, current.version)} changed to {current.state} meanwhile; retry"
            )
        state = VersionState(move.target.value, now)
        await tx.set_version_state(current.id, state)
        await audit.record(
            tx,
            actor,
            "version.promote",
            version_path(resource, current.version),
            now,
            tenant=resource.tenant_id,
            reason=reason,
            fromState=move.source.value,
            toState=move.target.value,
            fastTrack=fast_tracked,
            gates={g.gate: g.status.value for g in report.readiness.gates},
            webhook=verdict.result if verdict is not None else None,
        )
        view = await _view(tx, resource, current, state)
    return view, report


def _webhook_json(result: RuleResult) -> dict[str, Any]:
    return {
        "allowed": False,
        "rules": [
            {"id": result.id, "effect": result.effect, "result": result.result, "message": result.message}
        ],
        "exemptions": [],
    }


async def _locked(
    tx: Tx, actor: Principal, at: VersionAddress, action: Action
) -> tuple[ResourceRow, VersionRow]:
    await tx.lock(f"resource:{at.kind.value}/{at.namespace}/{at.name}")
    return await version_of(tx, actor, at.kind, at.namespace, at.name, at.version, action)


async def _view(
    tx: Tx, resource: ResourceRow, row: VersionRow, state: VersionState | None = None
) -> VersionView:
    if state is not None:
        row = replace(
            row,
            state=state.state,
            state_changed_at=state.changed_at,
            state_before=state.before,
            successor=state.successor,
            sunset=state.sunset,
        )
    return VersionView(resource, row, await tx.version_document(row.id))


# --- approvals ----------------------------------------------------------------------------------------


async def approve(
    store: Store,
    actor: Principal,
    at: VersionAddress,
    *,
    to: str | None = None,
    comment: str = "",
    approver: str | None = None,
) -> ApprovalRow:
    """Approve a version for a tier. The author never approves their own version. In single-user mode
    (no authentication) the approval names its approver, who must not be the author either."""
    now = clock.now()
    if len(comment) > 500:
        raise Invalid.at("/comment", "must be at most 500 characters")
    async with store.begin(readers=readers(actor)) as tx:
        resource, row = await _locked(tx, actor, at, Action.PROMOTION_APPROVE)
        target = _target(row, to)
        who = _approver(actor, approver)
        if who == row.published_by:
            raise Forbidden(
                f"{who} published {version_path(resource, row.version)}; the author can never approve it"
            )
        roles = tuple(sorted(r.value for r in actor.roles_in(resource.tenant_id)))
        gate = _approvals_gate(await governance.load(tx, resource.tenant_id, now), target)
        if gate is not None and not actor.super_admin and not {r.value for r in gate.roles} & set(roles):
            wanted = " or ".join(sorted(r.value for r in gate.roles))
            raise Forbidden(f"approvals for {target.value} count only from {wanted}")
        approval = ApprovalRow(row.id, target.value, who, roles, comment, now)
        if not await tx.insert_approval(approval):
            raise Conflict(f"{who} already approved {version_path(resource, row.version)} for {target.value}")
        await audit.record(
            tx,
            actor,
            "version.approve",
            version_path(resource, row.version),
            now,
            tenant=resource.tenant_id,
            toState=target.value,
            approver=who,
            author=row.published_by,
        )
    return approval


def _approver(actor: Principal, named: str | None) -> str:
    if actor is ANONYMOUS:
        if not named or not named.strip() or len(named) > 200:
            raise Invalid.at("/approver", "name the approver (no authentication: approvals are by name)")
        return named.strip()
    if named is not None and named != actor.subject:
        raise Invalid.at("/approver", "an authenticated approval is always by the caller; leave approver out")
    return actor.subject


def _approvals_gate(tenant_policy: governance.TenantPolicy, target: State) -> ApprovalsGate | None:
    for gate in tenant_policy.policy.gates.for_target(target):
        if isinstance(gate, ApprovalsGate):
            return gate
    return None


async def list_approvals(store: Store, actor: Principal, at: VersionAddress) -> list[ApprovalRow]:
    async with store.read(readers=readers(actor)) as tx:
        _, row = await version_of(tx, actor, at.kind, at.namespace, at.name, at.version, Action.READ)
        return await tx.list_approvals(row.id)


# --- deprecation, retirement ----------------------------------------------------------------------------


async def deprecate(
    store: Store,
    actor: Principal,
    at: VersionAddress,
    *,
    reason: str,
    successor: str | None = None,
    sunset: datetime | None = None,
) -> VersionView:
    reason = check_reason(reason)
    now = clock.now()
    if sunset is not None and sunset <= now:
        raise Invalid.at("/sunset", "must be in the future")
    async with store.begin(readers=readers(actor)) as tx:
        resource, row = await _locked(tx, actor, at, Action.PROMOTION_REQUEST)
        move = transition(State(row.state), Move.DEPRECATE)
        if successor is not None:
            successor = await _check_successor(tx, actor, resource, row, successor)
        state = VersionState(
            State.DEPRECATED.value, now, before=move.source.value, successor=successor, sunset=sunset
        )
        return await _move(tx, actor, resource, row, move, state, reason, successor=successor, sunset=sunset)


async def _check_successor(
    tx: Tx, actor: Principal, resource: ResourceRow, row: VersionRow, text: str
) -> str:
    """A successor exists, is visible, is not retired, and is not the version itself."""
    if "/" in text:
        ref = parse_ref(text, "/successor", default_kind=Kind(resource.kind))
        assert ref.kind is not None
        target_resource = await find_resource(tx, actor, ref.kind, ref.namespace, ref.name)
        selector_text = ref.selector.text
    else:
        target_resource, selector_text = resource, text
    try:
        target = await exact_version(tx, target_resource, selector_text)
    except (NotFound, Invalid) as exc:
        raise Invalid.at("/successor", exc.message) from None
    if target.id == row.id:
        raise Invalid.at("/successor", "a version cannot succeed itself")
    if target.state == State.RETIRED:
        raise Invalid.at("/successor", f"{target.version} is retired")
    if target_resource.id == resource.id:
        return target.version
    return f"{version_path(target_resource, target.version)}"


async def undeprecate(store: Store, actor: Principal, at: VersionAddress, *, reason: str) -> VersionView:
    """Return a deprecated version to the state it left (never higher: no gate is skipped)."""
    reason = check_reason(reason)
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        resource, row = await _locked(tx, actor, at, Action.PROMOTION_REQUEST)
        before = State(row.state_before) if row.state_before else None
        move = transition(State(row.state), Move.UNDEPRECATE, before=before)
        state = VersionState(move.target.value, now)
        return await _move(tx, actor, resource, row, move, state, reason)


async def retire(store: Store, actor: Principal, at: VersionAddress, *, reason: str) -> VersionView:
    reason = check_reason(reason)
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        resource, row = await _locked(tx, actor, at, Action.PROMOTION_REQUEST)
        move = transition(State(row.state), Move.RETIRE)
        # A successor named at deprecation stays: reads of the retired version keep pointing at it.
        state = VersionState(State.RETIRED.value, now, successor=row.successor)
        return await _move(tx, actor, resource, row, move, state, reason)


async def _move(
    tx: Tx,
    actor: Principal,
    resource: ResourceRow,
    row: VersionRow,
    move: Transition,
    state: VersionState,
    reason: str,
    **details: object,
) -> VersionView:
    await tx.set_version_state(row.id, state)
    extra: dict[str, Any] = {k: v for k, v in details.items() if v is not None}
    await audit.record(
        tx,
        actor,
        f"version.{move.move.value}",
        version_path(resource, row.version),
        state.changed_at,
        tenant=resource.tenant_id,
        reason=reason,
        fromState=move.source.value,
        toState=move.target.value,
        **extra,
    )
    return await _view(tx, resource, row, state)


# --- the kill switch ------------------------------------------------------------------------------------


async def block_version(
    store: Store,
    actor: Principal,
    at: VersionAddress,
    *,
    reason: str,
    blocked: bool,
) -> VersionView:
    """Block (or explicitly unblock) one version at once, whatever its state."""
    reason = check_reason(reason)
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        resource, row = await _locked(tx, actor, at, Action.LIFECYCLE_ADMIN)
        mark = Mark(reason, now, actor.subject) if blocked else None
        if (row.blocked is not None) == blocked:
            if blocked:
                return await _view(tx, resource, row)  # already blocked: nothing changes, nothing to audit
            raise Conflict(f"{version_path(resource, row.version)} is not blocked")
        await tx.set_version_block(row.id, mark)
        await audit.record(
            tx,
            actor,
            "version.block" if blocked else "version.unblock",
            version_path(resource, row.version),
            now,
            tenant=resource.tenant_id,
            reason=reason,
        )
        return await _view(tx, resource, replace(row, blocked=mark))


async def block_resource(
    store: Store, actor: Principal, kind: Kind, namespace: str, name: str, *, reason: str, blocked: bool
) -> ResourceView:
    """Block (or unblock) every version of a resource at once: a compromised agent, a malicious server."""
    reason = check_reason(reason)
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        await tx.lock(f"resource:{kind.value}/{namespace}/{name}")
        resource = await find_resource(tx, actor, kind, namespace, name, Action.LIFECYCLE_ADMIN)
        mark = Mark(reason, now, actor.subject) if blocked else None
        if (resource.blocked is not None) == blocked and not blocked:
            raise Conflict(f"{resource_path(resource)} is not blocked")
        if (resource.blocked is not None) != blocked:
            await tx.set_resource_block(resource.id, mark)
            await audit.record(
                tx,
                actor,
                "resource.block" if blocked else "resource.unblock",
                resource_path(resource),
                now,
                tenant=resource.tenant_id,
                reason=reason,
            )
            resource = replace(resource, blocked=mark)
        latest = await tx.latest_versions([resource])
        aliases = await tx.list_aliases(resource.id)
    return ResourceView(resource, latest.get(resource.id), resource.version_count, tuple(aliases))
