"""Promotion gates: what evidence a version needs to enter a tier, and the readiness report. Pure.

Each gate answers ``pass``, ``fail`` (the evidence shows a problem: a failed evaluation, a critical finding,
too many errors) or ``pending`` (not enough evidence yet: no evaluation, too little traffic, too few
approvals), with the evidence it used and what is missing. A tenant's policy configures the gates per tier
(``lifecycle.gates``); ``DEFAULT_GATES`` are the defaults, taken from common practice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from agentreg.domain.errors import FieldIssue, Invalid
from agentreg.domain.evidence import (
    LEVEL_RANK,
    SEVERITY_RANK,
    Approval,
    Evaluation,
    Level,
    Scan,
    Severity,
    UsageSummary,
)
from agentreg.domain.lifecycle import GATED, State
from agentreg.domain.principals import TENANT_ROLES, Role


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: str
    status: Status
    evidence: Mapping[str, Any]
    missing: str | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the gates may look at for one version."""

    author: str
    warnings: tuple[FieldIssue, ...]
    evaluations: Sequence[Evaluation]
    scans: Sequence[Scan]
    approvals: Sequence[Approval]
    usage: Mapping[int, UsageSummary]  # by window in days (see ``windows``)


@dataclass(frozen=True, slots=True)
class Readiness:
    target: State
    gates: tuple[GateResult, ...]
    fast_tracked: bool = False

    @property
    def ready(self) -> bool:
        return all(g.status is Status.PASS for g in self.gates)

    @property
    def blocking(self) -> tuple[GateResult, ...]:
        return tuple(g for g in self.gates if g.status is not Status.PASS)


# --- the gates -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SchemaGate:
    """The document is valid against its kind's schema (always, once published); with no warnings unless
    ``allow_warnings``."""

    allow_warnings: bool = False
    name: str = "schema"

    def check(self, evidence: Evidence) -> GateResult:
        warnings = [f"{w.field}: {w.issue}" for w in evidence.warnings]
        if warnings and not self.allow_warnings:
            return GateResult(
                self.name,
                Status.FAIL,
                {"warnings": warnings},
                "publish a version without validation warnings",
            )
        return GateResult(self.name, Status.PASS, {"warnings": warnings})


@dataclass(frozen=True, slots=True)
class EvaluationGate:
    """The latest evaluation of some suite, at ``level`` or above, passed (with ``min_score`` if set)."""

    level: Level
    min_score: float | None = None
    name: str = "evaluation"

    def check(self, evidence: Evidence) -> GateResult:
        latest: dict[str, Evaluation] = {}
        for e in evidence.evaluations:
            if e.level in LEVEL_RANK and LEVEL_RANK[Level(e.level)] >= LEVEL_RANK[self.level]:
                latest[e.suite] = e  # oldest first: the last one per suite wins
        wanted = f"a passing {self.level.value} evaluation" + (
            f" with score >= {self.min_score:g}" if self.min_score is not None else ""
        )
        if not latest:
            return GateResult(self.name, Status.PENDING, {"evaluations": []}, f"{wanted} (none yet)")
        seen = [
            {"id": e.id, "suite": e.suite, "level": e.level, "score": e.score, "passed": e.passed}
            for e in latest.values()
        ]
        good = [e for e in latest.values() if e.passed and self._score_ok(e.score)]
        if good:
            return GateResult(self.name, Status.PASS, {"evaluations": seen})
        return GateResult(self.name, Status.FAIL, {"evaluations": seen}, wanted)

    def _score_ok(self, score: float | None) -> bool:
        return self.min_score is None or (score is not None and score >= self.min_score)


@dataclass(frozen=True, slots=True)
class FindingsGate:
    """No open finding above ``max_severity`` in the latest scan of each scanner (a later scan from the same
    scanner that no longer reports a finding closes it). With ``require_scan``, at least one scan."""

    max_severity: Severity = Severity.HIGH
    require_scan: bool = True
    name: str = "scan"

    def check(self, evidence: Evidence) -> GateResult:
        latest: dict[str, Scan] = {}
        for scan in evidence.scans:
            latest[scan.scanner] = scan
        if not latest:
            if self.require_scan:
                return GateResult(self.name, Status.PENDING, {"scans": []}, "a security scan (none yet)")
            return GateResult(self.name, Status.PASS, {"scans": [], "open": []})
        limit = SEVERITY_RANK[self.max_severity]
        open_findings = [
            {"scanner": s.scanner, **dict(f)}
            for s in latest.values()
            for f in s.findings
            if SEVERITY_RANK.get(Severity(f["severity"]), 0) > limit
        ]
        used = {"scans": [{"id": s.id, "scanner": s.scanner} for s in latest.values()], "open": open_findings}
        if open_findings:
            worst = max(open_findings, key=lambda f: SEVERITY_RANK[Severity(f["severity"])])["severity"]
            return GateResult(
                self.name,
                Status.FAIL,
                used,
                f"{len(open_findings)} open finding(s) above {self.max_severity.value} (worst: {worst}); "
                "fix them and attach a new scan",
            )
        return GateResult(self.name, Status.PASS, used)


@dataclass(frozen=True, slots=True)
class UsageGate:
    """Real use: at least ``min_requests`` from ``min_callers`` distinct callers, in use for ``min_days``."""

    min_requests: int = 1000
    min_callers: int = 10
    min_days: int = 7
    window_days: int = 30
    name: str = "usage"

    def check(self, evidence: Evidence, now: datetime) -> GateResult:
        usage = evidence.usage[self.window_days]
        days = (now - usage.first).total_seconds() / 86400 if usage.first is not None else 0.0
        used = {
            "windowDays": self.window_days,
            "requests": usage.requests,
            "callers": usage.callers,
            "days": round(days, 2),
        }
        missing = []
        if usage.requests < self.min_requests:
            missing.append(f"{self.min_requests - usage.requests} more requests")
        if usage.callers < self.min_callers:
            missing.append(f"{self.min_callers - usage.callers} more distinct callers")
        if days < self.min_days:
            missing.append(f"{self.min_days - days:.1f} more days in use")
        if missing:
            return GateResult(self.name, Status.PENDING, used, "; ".join(missing))
        return GateResult(self.name, Status.PASS, used)


@dataclass(frozen=True, slots=True)
class ErrorRateGate:
    """Errors are below ``max_rate`` of requests over the window (pending while there is no traffic)."""

    max_rate: float = 0.01
    window_days: int = 30
    name: str = "errorRate"

    def check(self, evidence: Evidence) -> GateResult:
        usage = evidence.usage[self.window_days]
        rate = usage.error_rate
        used = {
            "windowDays": self.window_days,
            "requests": usage.requests,
            "errors": usage.errors,
            "rate": rate,
        }
        if rate is None:
            return GateResult(self.name, Status.PENDING, used, "usage reports (no requests yet)")
        if rate >= self.max_rate:
            return GateResult(
                self.name, Status.FAIL, used, f"error rate {rate:.2%} must be below {self.max_rate:.2%}"
            )
        return GateResult(self.name, Status.PASS, used)


@dataclass(frozen=True, slots=True)
class LatencyGate:
    """The p95 latency over the window is at most ``p95_max_ms``."""

    p95_max_ms: float = 5000
    window_days: int = 30
    name: str = "latency"

    def check(self, evidence: Evidence) -> GateResult:
        usage = evidence.usage[self.window_days]
        used = {"windowDays": self.window_days, "p95Ms": usage.p95_ms, "requests": usage.requests}
        if usage.p95_ms is None:
            return GateResult(self.name, Status.PENDING, used, "usage reports with latencies (none yet)")
        if usage.p95_ms > self.p95_max_ms:
            return GateResult(
                self.name,
                Status.FAIL,
                used,
                f"p95 {usage.p95_ms:g} ms must be at most {self.p95_max_ms:g} ms",
            )
        return GateResult(self.name, Status.PASS, used)


@dataclass(frozen=True, slots=True)
class ApprovalsGate:
    """``count`` approvals for this tier from principals holding one of ``roles``; never the author's."""

    count: int = 1
    roles: tuple[Role, ...] = (Role.TENANT_ADMIN, Role.DEVELOPER)
    name: str = "approvals"

    def check(self, evidence: Evidence, target: State) -> GateResult:
        wanted = {r.value for r in self.roles}
        counted = [
            a
            for a in evidence.approvals
            if a.target == target.value and a.approver != evidence.author and wanted & set(a.roles)
        ]
        used = {
            "required": self.count,
            "roles": sorted(wanted),
            "approvers": [a.approver for a in counted],
        }
        if len(counted) < self.count:
            missing = self.count - len(counted)
            return GateResult(
                self.name,
                Status.PENDING,
                used,
                f"{missing} more approval(s) from {' or '.join(sorted(wanted))} (not the author)",
            )
        return GateResult(self.name, Status.PASS, used)


Gate = SchemaGate | EvaluationGate | FindingsGate | UsageGate | ErrorRateGate | LatencyGate | ApprovalsGate


@dataclass(frozen=True, slots=True)
class GateSet:
    """The gates of every gated tier (a tier absent from ``by_target`` has none)."""

    by_target: Mapping[State, tuple[Gate, ...]] = field(default_factory=dict)

    def for_target(self, target: State) -> tuple[Gate, ...]:
        return tuple(self.by_target.get(target, ()))

    def windows(self, target: State) -> set[int]:
        """The usage windows (days) the tier's gates read."""
        return {
            g.window_days
            for g in self.for_target(target)
            if isinstance(g, UsageGate | ErrorRateGate | LatencyGate)
        }


DEFAULT_GATES = GateSet(
    {
        State.EXPERIMENTAL: (
            SchemaGate(),
            EvaluationGate(Level.BASIC),
            FindingsGate(Severity.HIGH, require_scan=True),
        ),
        State.CERTIFIED: (
            EvaluationGate(Level.COMPREHENSIVE, min_score=0.8),
            UsageGate(),
            ErrorRateGate(),
            LatencyGate(),
            FindingsGate(Severity.HIGH, require_scan=False, name="findings"),
            ApprovalsGate(),
        ),
    }
)


def readiness(gates: GateSet, target: State, evidence: Evidence, now: datetime) -> Readiness:
    results: list[GateResult] = []
    for gate in gates.for_target(target):
        if isinstance(gate, UsageGate):
            results.append(gate.check(evidence, now))
        elif isinstance(gate, ApprovalsGate):
            results.append(gate.check(evidence, target))
        else:
            results.append(gate.check(evidence))
    return Readiness(target, tuple(results))


# --- configuration (the ``lifecycle.gates`` part of a tenant's policy) ---------------------------------

_GATE_KEYS: dict[str, tuple[str, ...]] = {
    "schema": ("allowWarnings",),
    "evaluation": ("level", "minScore"),
    "scan": ("maxSeverity",),
    "findings": ("maxSeverity",),
    "usage": ("minRequests", "minCallers", "minDays", "windowDays"),
    "errorRate": ("max", "windowDays"),
    "latency": ("p95MaxMs", "windowDays"),
    "approvals": ("count", "roles"),
}


def parse_gates(value: Any, base: str = "/spec/lifecycle/gates") -> GateSet:
    """``{experimental: {schema: {...}, ...}, certified: {...}}``. A tier given replaces its defaults
    gate by gate: a gate set to null is removed, one not named keeps its default."""
    if value is None:
        return DEFAULT_GATES
    if not isinstance(value, dict):
        raise Invalid.at(base, "must be an object keyed by tier (experimental, certified)")
    problems: list[FieldIssue] = []
    by_target: dict[State, tuple[Gate, ...]] = dict(DEFAULT_GATES.by_target)
    for tier, config in value.items():
        at = f"{base}/{tier}"
        if tier not in {s.value for s in GATED}:
            problems.append(FieldIssue(at, "gates apply to experimental and certified only"))
            continue
        if not isinstance(config, dict):
            problems.append(FieldIssue(at, "must be an object keyed by gate name"))
            continue
        target = State(tier)
        current = {g.name: g for g in DEFAULT_GATES.for_target(target)}
        for name, params in config.items():
            if name not in _GATE_KEYS:
                problems.append(FieldIssue(f"{at}/{name}", f"unknown gate; known: {', '.join(_GATE_KEYS)}"))
                continue
            if params is None or params is False:
                current.pop(name, None)
                continue
            if params is True:
                params = {}
            try:
                current[name] = _gate(name, params, f"{at}/{name}")
            except Invalid as exc:
                problems.extend(exc.details)
        by_target[target] = tuple(current.values())
    if problems:
        raise Invalid.of(problems)
    return GateSet(by_target)


def _gate(name: str, params: Any, at: str) -> Gate:
    if not isinstance(params, dict):
        raise Invalid.at(at, "must be an object of settings, true (defaults) or null (no such gate)")
    unknown = [k for k in params if k not in _GATE_KEYS[name]]
    if unknown:
        raise Invalid.of(
            [
                FieldIssue(f"{at}/{k}", f"unknown setting; known: {', '.join(_GATE_KEYS[name])}")
                for k in unknown
            ]
        )
    get = _Reader(params, at)
    if name == "schema":
        return SchemaGate(allow_warnings=get.bool("allowWarnings", False))
    if name == "evaluation":
        level = get.choice("level", [lv.value for lv in Level], Level.BASIC.value)
        return EvaluationGate(Level(level), get.number("minScore", None))
    if name in ("scan", "findings"):
        severity = get.choice("maxSeverity", [s.value for s in Severity], Severity.HIGH.value)
        return FindingsGate(Severity(severity), require_scan=name == "scan", name=name)
    if name == "usage":
        return UsageGate(
            get.integer("minRequests", 1000),
            get.integer("minCallers", 10),
            get.integer("minDays", 7),
            get.window(),
        )
    if name == "errorRate":
        return ErrorRateGate(get.number("max", 0.01) or 0.0, get.window())
    if name == "latency":
        return LatencyGate(get.number("p95MaxMs", 5000) or 0.0, get.window())
    roles = params.get("roles", [Role.TENANT_ADMIN.value, Role.DEVELOPER.value])
    if (
        not isinstance(roles, list)
        or not roles
        or any(not isinstance(r, str) or r not in {x.value for x in TENANT_ROLES} for r in roles)
    ):
        raise Invalid.at(
            f"{at}/roles", f"must be a non-empty list of {', '.join(r.value for r in TENANT_ROLES)}"
        )
    count = get.integer("count", 1)
    if count < 1:
        raise Invalid.at(f"{at}/count", "must be at least 1 (remove the gate with null)")
    return ApprovalsGate(count, tuple(Role(r) for r in roles))


class _Reader:
    def __init__(self, params: dict[str, Any], at: str) -> None:
        self.params, self.at = params, at

    def bool(self, key: str, default: bool) -> bool:
        value = self.params.get(key, default)
        if not isinstance(value, bool):
            raise Invalid.at(f"{self.at}/{key}", "must be true or false")
        return value

    def number(self, key: str, default: float | None) -> float | None:
        value = self.params.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise Invalid.at(f"{self.at}/{key}", "must be a non-negative number")
        return float(value)

    def integer(self, key: str, default: int) -> int:
        value = self.params.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 10**12:
            raise Invalid.at(f"{self.at}/{key}", "must be a non-negative integer")
        return value

    def choice(self, key: str, choices: list[str], default: str) -> str:
        value = self.params.get(key, default)
        if value not in choices:
            raise Invalid.at(f"{self.at}/{key}", f"must be one of {', '.join(choices)}")
        return str(value)

    def window(self) -> int:
        days = self.integer("windowDays", 30)
        if not 1 <= days <= 90:
            raise Invalid.at(f"{self.at}/windowDays", "must be between 1 and 90")
        return days


def gate_config(gate: Gate) -> dict[str, Any]:
    """A gate's settings as the policy document spells them (for reports and ``GET /v1/policy``)."""
    if isinstance(gate, SchemaGate):
        return {"allowWarnings": gate.allow_warnings}
    if isinstance(gate, EvaluationGate):
        return {"level": gate.level.value, "minScore": gate.min_score}
    if isinstance(gate, FindingsGate):
        return {"maxSeverity": gate.max_severity.value}
    if isinstance(gate, UsageGate):
        return {
            "minRequests": gate.min_requests,
            "minCallers": gate.min_callers,
            "minDays": gate.min_days,
            "windowDays": gate.window_days,
        }
    if isinstance(gate, ErrorRateGate):
        return {"max": gate.max_rate, "windowDays": gate.window_days}
    if isinstance(gate, LatencyGate):
        return {"p95MaxMs": gate.p95_max_ms, "windowDays": gate.window_days}
    return {"count": gate.count, "roles": [r.value for r in gate.roles]}
