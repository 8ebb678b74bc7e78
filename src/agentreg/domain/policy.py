"""A tenant's governance policy, and admission: may this version be published, promoted, or run here? Pure.

``parse_policy`` turns a policy document into a ``Policy`` (every problem named by its JSON pointer, every
CEL expression compiled); ``render_policy`` spells a ``Policy`` back out with every default filled in;
``admit`` decides one candidate version in one phase (and environment), rule by rule, with exemptions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from agentreg.domain.cel import activation, compile_expression, evaluate
from agentreg.domain.cel import needs_document as needs_document
from agentreg.domain.cel import needs_evidence as needs_evidence
from agentreg.domain.gates import DEFAULT_GATES, GateSet
from agentreg.domain.lifecycle import State
from agentreg.domain.semver import Range, parse_range, parse_semver


class Phase(StrEnum):
    PUBLISH = "publish"
    PROMOTE = "promote"
    RESOLVE = "resolve"


class Effect(StrEnum):
    HARD = "hard"  # violated: denied
    SOFT = "soft"  # violated: allowed, with a warning


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"  # a hard rule is violated: denied
    WARN = "warn"  # a soft rule is violated: allowed
    EXEMPTED = "exempted"  # violated, but an active exemption covers it: allowed


@dataclass(frozen=True, slots=True)
class NameRule:
    """An allow or deny entry: a name pattern (``namespace/name`` glob), an optional kind and SemVer range."""

    pattern: str
    kind: str | None = None
    versions: str | None = None  # a SemVer range; None: every version
    reason: str = ""


@dataclass(frozen=True, slots=True)
class EnvironmentRule:
    """What an environment admits: lifecycle states, a minimum age, and deprecated versions past sunset."""

    states: tuple[State, ...]
    min_age_days: float = 0
    allow_past_sunset: bool = False


@dataclass(frozen=True, slots=True)
class Quotas:
    max_resources_per_namespace: int | None = None
    max_versions_per_namespace: int | None = None


@dataclass(frozen=True, slots=True)
class CelRule:
    """A CEL expression over the version and its evidence that must be true; ``hard`` denies, ``soft`` warns."""

    id: str
    expression: str
    effect: Effect
    message: str
    phases: tuple[Phase, ...] = (Phase.PUBLISH, Phase.PROMOTE, Phase.RESOLVE)


@dataclass(frozen=True, slots=True)
class Webhook:
    """An external admission check called before a publish or promotion is accepted."""

    url: str
    timeout_ms: int = 2000
    fail_open: bool = False
    phases: tuple[Phase, ...] = (Phase.PUBLISH, Phase.PROMOTE)


@dataclass(frozen=True, slots=True)
class Policy:
    initial_state: State = State.DRAFT
    gates: GateSet = DEFAULT_GATES
    refuse_breaking: bool = False  # compatibility: refuse a breaking change without a major bump, or warn
    allow: tuple[NameRule, ...] = ()
    deny: tuple[NameRule, ...] = ()
    environments: Mapping[str, EnvironmentRule] = field(default_factory=dict)
    quotas: Quotas = Quotas()
    rules: tuple[CelRule, ...] = ()
    webhook: Webhook | None = None


DEFAULT_POLICY = Policy()


@dataclass(frozen=True, slots=True)
class Exemption:
    id: str
    resource: str  # kind/namespace/name, optionally @range
    rules: tuple[str, ...]
    reason: str
    approved_by: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Candidate:
    """One version, as admission sees it."""

    kind: str
    namespace: str
    name: str
    version: str
    state: State
    published_at: datetime
    labels: Mapping[str, str]
    blocked: bool = False
    sunset: datetime | None = None
    document: Mapping[str, Any] | None = None  # loaded when a CEL rule needs it
    evidence: Mapping[str, Any] | None = None  # summarized evidence, when a CEL rule reads it


@dataclass(frozen=True, slots=True)
class RuleResult:
    id: str
    effect: Effect
    result: Outcome
    message: str


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rules: tuple[RuleResult, ...]
    exemptions: tuple[Exemption, ...] = ()  # the ones that turned a failure into "exempted"
    valid_until: datetime | None = None  # when the answer may change with time alone


def parse_policy(raw: Any) -> Policy:
    """A policy document as a ``Policy``; raises Invalid naming every problem (see ``policy_document``)."""
    from agentreg.domain import policy_document  # late: it builds on the types above

    return policy_document.parse(raw)


def render_policy(policy: Policy) -> dict[str, Any]:
    """The policy in effect as a document, every default filled in (parsing it gives the same policy)."""
    from agentreg.domain import policy_document

    return policy_document.render(policy)


# --- admission ------------------------------------------------------------------------------------------------

BLOCKED = "lifecycle.blocked"
RETIRED = "lifecycle.retired"
UNKNOWN_ENVIRONMENT = "environment"
# Exemptions never cover these: a blocked version is unblocked, not exempted; an unknown environment is a typo.
NOT_EXEMPTABLE = frozenset({BLOCKED, UNKNOWN_ENVIRONMENT})
TIME_RULE_TTL = timedelta(seconds=60)


def admit(
    policy: Policy,
    candidate: Candidate,
    *,
    phase: Phase,
    environment: str | None,
    now: datetime,
    exemptions: Sequence[Exemption],
) -> Decision:
    """May ``candidate`` be published / promoted / run (in ``environment``) now? Every rule applied, in order:
    blocked, retired (resolution), deny, allow, the environment's states, minimum age and sunset, CEL rules."""
    results: list[RuleResult] = []
    changes: list[datetime] = []  # future moments at which a result may flip by time alone

    def rule(rule_id: str, ok: bool, message: str, effect: Effect = Effect.HARD) -> None:
        failed = Outcome.FAIL if effect is Effect.HARD else Outcome.WARN
        results.append(RuleResult(rule_id, effect, Outcome.PASS if ok else failed, message))

    rule(BLOCKED, not candidate.blocked, "blocked by a tenant admin" if candidate.blocked else "not blocked")
    if phase is Phase.RESOLVE:
        retired = candidate.state is State.RETIRED
        rule(RETIRED, not retired, "the version is retired" if retired else "not retired")
    for i, deny in enumerate(policy.deny):
        if _name_matches(deny, candidate, unparsable=True):
            rule(f"deny.{i}", False, deny.reason or f"denied by {_describe(deny)}")
    if policy.allow:
        allowed_by = next((r for r in policy.allow if _name_matches(r, candidate, unparsable=False)), None)
        rule(
            "allow",
            allowed_by is not None,
            f"allowed by {_describe(allowed_by)}" if allowed_by else "not on the tenant's allow list",
        )
    if environment:
        _environment_rules(policy, candidate, environment, now, rule, changes)
    _cel_results(policy, candidate, phase, environment, now, rule, changes)
    return _exempt(results, candidate, now, exemptions, changes)


def _environment_rules(
    policy: Policy,
    candidate: Candidate,
    name: str,
    now: datetime,
    rule: Callable[..., None],
    changes: list[datetime],
) -> None:
    env = policy.environments.get(name)
    if env is None:
        if policy.environments:
            known = ", ".join(sorted(policy.environments))
            rule(
                UNKNOWN_ENVIRONMENT, False, f"no environment {name!r} in the tenant's policy (known: {known})"
            )
        else:
            rule(
                UNKNOWN_ENVIRONMENT,
                True,
                f"the tenant's policy defines no environments: {name!r} admits any version not retired or blocked",
            )
        return
    state = candidate.state.value
    admitted = ", ".join(s.value for s in env.states)
    rule(
        f"environment.{name}.state",
        candidate.state in env.states,
        f"{name} admits {admitted}" + ("" if candidate.state in env.states else f"; this version is {state}"),
    )
    if env.min_age_days > 0:
        old_enough_at = candidate.published_at + timedelta(days=env.min_age_days)
        age = (now - candidate.published_at) / timedelta(days=1)
        if old_enough_at > now:
            changes.append(old_enough_at)
        rule(
            f"environment.{name}.minAge",
            old_enough_at <= now,
            f"{name} admits versions at least {env.min_age_days:g} days old; this one is {age:.1f} days old"
            + ("" if old_enough_at <= now else f" (admitted from {old_enough_at.isoformat()})"),
        )
    if candidate.state is State.DEPRECATED and candidate.sunset is not None and not env.allow_past_sunset:
        past = candidate.sunset <= now
        if not past:
            changes.append(candidate.sunset)
        rule(
            f"environment.{name}.sunset",
            not past,
            f"deprecated, sunset {candidate.sunset.isoformat()}"
            + (f"; {name} admits no version past its sunset" if past else ""),
        )


def _cel_results(
    policy: Policy,
    candidate: Candidate,
    phase: Phase,
    environment: str | None,
    now: datetime,
    rule: Callable[..., None],
    changes: list[datetime],
) -> None:
    variables: dict[str, Any] | None = None
    for cel in policy.rules:
        if phase not in cel.phases:
            continue
        program = compile_expression(cel.expression)
        if variables is None:
            variables = activation(candidate, environment=environment, phase=phase, now=now)
        satisfied, error = evaluate(program, variables)
        if program.reads_time:
            changes.append(now + TIME_RULE_TTL)
        message = (
            "satisfied" if satisfied else cel.message + (f" (could not evaluate: {error})" if error else "")
        )
        rule(f"cel.{cel.id}", satisfied, message, cel.effect)


def _exempt(
    results: list[RuleResult],
    candidate: Candidate,
    now: datetime,
    exemptions: Sequence[Exemption],
    changes: list[datetime],
) -> Decision:
    used: dict[str, Exemption] = {}
    final: list[RuleResult] = []
    for result in results:
        if result.result in (Outcome.FAIL, Outcome.WARN) and result.id not in NOT_EXEMPTABLE:
            cover = next((e for e in exemptions if covers(e, candidate, result.id, now)), None)
            if cover is not None:
                used.setdefault(cover.id, cover)
                result = RuleResult(
                    result.id, result.effect, Outcome.EXEMPTED, f"{result.message} (exempted: {cover.reason})"
                )
        final.append(result)
    changes.extend(e.expires_at for e in used.values())
    future = [t for t in changes if t > now]
    return Decision(
        allowed=not any(r.result is Outcome.FAIL for r in final),
        rules=tuple(final),
        exemptions=tuple(used.values()),
        valid_until=min(future) if future else None,
    )


def covers(exemption: Exemption, candidate: Candidate, rule_id: str, now: datetime) -> bool:
    """Does ``exemption`` (active at ``now``) cover ``rule_id`` for this candidate?"""
    if exemption.expires_at <= now or rule_id in NOT_EXEMPTABLE:
        return False
    target, _, versions = exemption.resource.partition("@")
    if target != f"{candidate.kind}/{candidate.namespace}/{candidate.name}":
        return False
    if versions and not _version_in(versions, candidate.version, unparsable=False):
        return False
    return any(fnmatchcase(rule_id, pattern) for pattern in exemption.rules)


def _name_matches(rule: NameRule, candidate: Candidate, *, unparsable: bool) -> bool:
    if rule.kind is not None and rule.kind != candidate.kind:
        return False
    if not fnmatchcase(f"{candidate.namespace}/{candidate.name}", rule.pattern):
        return False
    return rule.versions is None or _version_in(rule.versions, candidate.version, unparsable=unparsable)


def _version_in(versions: str, version: str, *, unparsable: bool) -> bool:
    """Policy ranges include pre-releases (a deny of ``<2.0.0`` covers ``1.5.0-rc.1``); a version that is not
    SemVer matches as ``unparsable`` says (deny rules: yes, to fail safe; allow rules and exemptions: no)."""
    parsed = parse_semver(version)
    if parsed is None:
        return unparsable
    return any(all(c.test(parsed) for c in comparators) for comparators in _range(versions).sets)


@lru_cache(maxsize=1024)
def _range(text: str) -> Range:
    return parse_range(text)


def _describe(rule: NameRule) -> str:
    parts = [rule.kind or "", rule.pattern, rule.versions or ""]
    return " ".join(p for p in parts if p)
