"""Which version a read gets, under the lifecycle and the tenant's policy, and for which environment.

- ``latest`` and ranges skip retired and blocked versions and deprecated ones past their sunset, and (with
  a policy or an environment) versions the policy does not admit; the best remaining one wins.
- An alias answers 423 when it points at a blocked version, 410 at a retired one or one past its sunset
  (linking the successor), and 409 ``not_admitted`` when the policy refuses the version it points at.
- An exact read returns the version whatever its state, except a blocked one (423; a lifecycle admin may
  read it with ``include_blocked``); with an environment, it must also be admitted there.
- A blocked resource answers 423 for every selector.

Answers that will change with time alone (a sunset, a minimum age, an exemption expiring) are noted in
``Reading.valid_until`` so caches keep them no longer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agentreg.domain import resolution
from agentreg.domain.errors import Blocked, Forbidden, Gone, Invalid, InvalidRequest, NotAdmitted, NotFound
from agentreg.domain.kinds import Kind
from agentreg.domain.lifecycle import State
from agentreg.domain.names import Selector, SelectorType, parse_ref
from agentreg.domain.permissions import Action, allowed
from agentreg.domain.policy import Candidate, Decision, Phase, admit, needs_document, needs_evidence
from agentreg.domain.principals import Principal
from agentreg.domain.standing import Standing, StatusFacts, changes_at, standing
from agentreg.services import clock, evidence, governance
from agentreg.services.access import readers, resource_path
from agentreg.services.catalog import find_resource, request_selector, select_version
from agentreg.services.views import VersionView
from agentreg.store.interface import ResourceRow, Store, Tx, VersionRow
from agentreg.store.inventory import DeploymentQuery


@dataclass
class Reading:
    """How one read resolves: its time, its environment, whether blocked versions may be read, and until when
    the answer holds."""

    now: datetime = field(default_factory=clock.now)
    environment: str | None = None
    include_blocked: bool = False
    valid_until: datetime | None = None
    _policies: dict[str, governance.TenantPolicy] = field(default_factory=dict)
    decisions: dict[int, Decision] = field(default_factory=dict)  # by version id

    def holds_until(self, moment: datetime | None) -> None:
        if moment is not None and (self.valid_until is None or moment < self.valid_until):
            self.valid_until = moment

    async def policy(self, tx: Tx, tenant: str) -> governance.TenantPolicy:
        if tenant not in self._policies:
            self._policies[tenant] = await governance.load(tx, tenant, self.now)
        return self._policies[tenant]


def facts(resource: ResourceRow, version: VersionRow) -> StatusFacts:
    return StatusFacts(
        version.state, resource.blocked is not None or version.blocked is not None, version.sunset
    )


def successor_path(resource: ResourceRow, successor: str | None) -> str | None:
    """The URL of a successor, named as a version of the same resource or as a full ref."""
    if successor is None:
        return None
    if "/" in successor:
        ref = parse_ref(successor)
        kind = ref.kind or Kind(resource.kind)
        return f"/v1/{kind.plural}/{ref.namespace}/{ref.name}/versions/{ref.selector.text}"
    return f"/v1/{Kind(resource.kind).plural}/{resource.namespace}/{resource.name}/versions/{successor}"


async def pick(
    tx: Tx, actor: Principal, resource: ResourceRow, selector: Selector, reading: Reading
) -> VersionRow:
    full = f"{resource.kind} {resource.namespace}/{resource.name}"
    if resource.blocked is not None and not _may_read_blocked(actor, resource, reading):
        raise Blocked(f"{full} is blocked: {resource.blocked.reason}")
    if selector.type in (SelectorType.EXACT, SelectorType.LITERAL, SelectorType.ALIAS):
        version = await select_version(tx, resource, selector)
        status = standing(facts(resource, version), reading.now)
        if status is Standing.BLOCKED and not _may_read_blocked(actor, resource, reading):
            reason = version.blocked.reason if version.blocked else ""
            raise Blocked(f"{full}@{version.version} is blocked: {reason}")
        if selector.type == SelectorType.ALIAS:
            if status in (Standing.RETIRED, Standing.SUNSET):
                what = "retired" if status is Standing.RETIRED else "past its sunset"
                raise Gone(
                    f"alias {selector.text!r} of {full} points at {version.version}, which is {what}",
                    successor_path(resource, version.successor),
                )
            reading.holds_until(changes_at(facts(resource, version), reading.now))
        if selector.type == SelectorType.ALIAS or reading.environment is not None:
            decision = await _decide(tx, resource, version, reading)
            if not decision.allowed:
                raise _not_admitted(full, version.version, reading, decision)
        return version
    return await _best(tx, resource, selector, reading, full)


async def _best(tx: Tx, resource: ResourceRow, selector: Selector, reading: Reading, full: str) -> VersionRow:
    """The best version a ``latest`` or range selector may pick under the lifecycle and the policy."""
    if selector.type == SelectorType.LATEST and resource.latest_version is not None:
        # The common case: the highest version is in good standing and admitted, and one row tells.
        top = await tx.find_version(resource.id, resource.latest_version, None)
        if top is not None and standing(facts(resource, top), reading.now) is Standing.ACTIVE:
            decision = await _decide(tx, resource, top, reading)
            if decision.allowed:
                reading.holds_until(changes_at(facts(resource, top), reading.now))
                return top
    candidates = resolution.preference(await tx.list_versions(resource.id), selector)
    if not candidates:
        raise NotFound(f"no version of {full} matches {selector.text!r}")
    refused: Decision | None = None
    for version in candidates:
        status_facts = facts(resource, version)
        # A version skipped now may come back when time passes (never: past sunset is final), and one
        # picked may be skipped later (its sunset): either way the answer holds only until then.
        reading.holds_until(changes_at(status_facts, reading.now))
        if standing(status_facts, reading.now) is not Standing.ACTIVE:
            continue
        decision = await _decide(tx, resource, version, reading)
        if decision.allowed:
            return version
        refused = refused or decision
    if refused is None:
        raise NotAdmitted(
            f"every version of {full} matching {selector.text!r} is retired, blocked or past its sunset",
            extra={"decision": None},
        )
    raise _not_admitted(full, selector.text, reading, refused)


async def _decide(tx: Tx, resource: ResourceRow, version: VersionRow, reading: Reading) -> Decision:
    """Whether the policy admits ``version`` for this read (decided once per version and read)."""
    if version.id not in reading.decisions:
        decision = await decide(
            tx,
            await reading.policy(tx, resource.tenant_id),
            resource,
            version,
            phase=Phase.RESOLVE,
            environment=reading.environment,
            now=reading.now,
        )
        reading.holds_until(decision.valid_until)
        reading.decisions[version.id] = decision
    return reading.decisions[version.id]


async def decide(
    tx: Tx,
    tenant_policy: governance.TenantPolicy,
    resource: ResourceRow,
    version: VersionRow,
    *,
    phase: Phase,
    now: datetime,
    environment: str | None = None,
    state: State | None = None,
    document: dict[str, Any] | None = None,
) -> Decision:
    """The tenant's policy on ``version`` in ``phase`` (``state``: the state it would be in, for a promotion;
    ``document``: when the caller holds it already). The document and the evidence are loaded only when
    a rule of the phase reads them."""
    policy = tenant_policy.policy
    if needs_document(policy, phase):
        document = document or json.loads(await tx.version_document(version.id))
    else:
        document = None
    summary = None
    if needs_evidence(policy, phase):
        window = {evidence.SUMMARY_WINDOW_DAYS}
        summary = evidence.evidence_summary(await evidence.gather(tx, version, window, now))
    candidate = Candidate(
        kind=resource.kind,
        namespace=resource.namespace,
        name=resource.name,
        version=version.version,
        state=state or State(version.state),
        published_at=version.published_at,
        labels=resource.labels,
        blocked=resource.blocked is not None or version.blocked is not None,
        sunset=version.sunset,
        document=document,
        evidence=summary,
    )
    return admit(
        policy, candidate, phase=phase, environment=environment, now=now, exemptions=tenant_policy.exemptions
    )


def _not_admitted(full: str, picked: str, reading: Reading, decision: Decision) -> NotAdmitted:
    where = f"environment {reading.environment!r}" if reading.environment else "the tenant's policy"
    failed = [r for r in decision.rules if r.result == "fail"]
    reasons = "; ".join(f"{r.id}: {r.message}" for r in failed) or "not admitted"
    return NotAdmitted(
        f"{full}@{picked} is not admitted by {where}: {reasons}",
        extra={"decision": governance.decision_json(decision)},
    )


def _may_read_blocked(actor: Principal, resource: ResourceRow, reading: Reading) -> bool:
    if not reading.include_blocked:
        return False
    if not allowed(actor, Action.LIFECYCLE_ADMIN, resource.tenant_id, namespace=resource.namespace):
        raise Forbidden(f"reading blocked versions of {resource_path(resource)} needs lifecycle.admin")
    return True


async def view_version(
    tx: Tx, actor: Principal, kind: Kind, namespace: str, name: str, selector: Selector, reading: Reading
) -> VersionView:
    resource = await find_resource(tx, actor, kind, namespace, name)
    version = await pick(tx, actor, resource, selector, reading)
    return VersionView(resource, version, await tx.version_document(version.id))


async def get_version(
    store: Store,
    actor: Principal,
    kind: Kind,
    namespace: str,
    name: str,
    selector_text: str,
    reading: Reading | None = None,
) -> VersionView:
    """The version ``selector_text`` picks; ``reading`` (when given) learns until when the answer holds."""
    selector = request_selector(selector_text)
    async with store.read(readers=readers(actor)) as tx:
        return await view_version(tx, actor, kind, namespace, name, selector, reading or Reading())


# --- the admission question: may this ref run in this environment? ----------------------------------------


@dataclass(frozen=True, slots=True)
class CheckResult:
    allowed: bool
    ref: str
    environment: str | None
    version: VersionRow | None
    decision: dict[str, Any]  # governance.decision_json: {allowed, rules, exemptions}


async def check(store: Store, actor: Principal, ref_text: str, environment: str | None) -> CheckResult:
    """What an admission controller or gateway asks: the version the ref resolves to in ``environment``
    under the lifecycle and the tenant's policy, with every rule's result, or why nothing may run."""
    try:
        ref = parse_ref(ref_text, "/ref")
    except Invalid as exc:
        raise InvalidRequest(exc.message, exc.details) from None
    if ref.kind is None:
        raise InvalidRequest.at("/ref", "a ref here must start with its kind, e.g. agent/com.acme/bot@stable")
    reading = Reading(environment=environment)
    async with store.read(readers=readers(actor)) as tx:
        resource = await find_resource(tx, actor, ref.kind, ref.namespace, ref.name)
        try:
            version = await pick(tx, actor, resource, ref.selector, reading)
        except (Blocked, Gone) as exc:
            rule = "lifecycle.blocked" if isinstance(exc, Blocked) else "lifecycle.retired"
            refused = {"allowed": False, "rules": [_rule(rule, exc.message)], "exemptions": []}
            return CheckResult(False, ref_text, environment, None, refused)
        except NotAdmitted as exc:
            refused = exc.extra.get("decision") or {
                "allowed": False,
                "rules": [_rule("lifecycle.standing", exc.message)],
                "exemptions": [],
            }
            return CheckResult(False, ref_text, environment, None, refused)
        decision = await _decide(tx, resource, version, reading)
        unbound = await _strictly_unbound(tx, readers(actor), resource, version, environment)
    answer = governance.decision_json(decision)
    if unbound is None:
        return CheckResult(decision.allowed, ref_text, environment, version, answer)
    answer["rules"].append(_rule(IDENTITY_RULE, unbound))
    answer["allowed"] = False
    return CheckResult(False, ref_text, environment, version, answer)


IDENTITY_RULE = "identity.strictBinding"
_LIMIT = 1000  # deployments of one version looked at; a fleet larger than this is checked in part


async def _strictly_unbound(
    tx: Tx,
    seen_by: tuple[str, ...] | None,
    resource: ResourceRow,
    version: VersionRow,
    environment: str | None,
) -> str | None:
    """Why ``version`` may not run: a deployment running it (in ``environment``, when given) binds its
    agent's identity strictly and the card sync found the peer outside that trust domain
    (``IdentityBound=False``); None when there is none."""
    if resource.kind != Kind.AGENT.value:
        return None
    query = DeploymentQuery(
        readers=seen_by, version_id=version.id, environment=environment, orphaned=False, limit=_LIMIT
    )
    found: list[str] = []
    for row in await tx.list_deployments(query):
        extra = row.observed.get("extra") or {}
        if not (extra.get("identity") or {}).get("strict"):
            continue
        bound = next((c for c in extra.get("conditions") or [] if c.get("type") == "IdentityBound"), None)
        if bound is not None and bound.get("status") == "False":
            found.append(f"{row.key}: {bound.get('message') or bound.get('reason')}")
    if not found:
        return None
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return f"strict identity binding failed for {len(found)} deployment(s): {'; '.join(found[:3])}{more}"


def _rule(rule_id: str, message: str) -> dict[str, str]:
    return {"id": rule_id, "effect": "hard", "result": "fail", "message": message}
