"""A tenant's governance policy, and admission: may this version be published, promoted, or run here? Pure.

TYPES ONLY SO FAR: parsing and evaluation are being written (see ``parse_policy`` and ``admit``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from agentreg.domain.gates import DEFAULT_GATES, GateSet
from agentreg.domain.lifecycle import State


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
