"""Promotion gates: each gate's pass, fail and pending, the readiness report, and gate configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agentreg.domain.errors import FieldIssue, Invalid
from agentreg.domain.evidence import Level, Severity, UsageSummary
from agentreg.domain.gates import (
    DEFAULT_GATES,
    ApprovalsGate,
    ErrorRateGate,
    EvaluationGate,
    Evidence,
    FindingsGate,
    LatencyGate,
    SchemaGate,
    Status,
    UsageGate,
    gate_config,
    parse_gates,
    readiness,
)
from agentreg.domain.lifecycle import State
from agentreg.domain.principals import Role

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Eval:
    suite: str
    level: str
    passed: bool
    score: float | None = None
    id: int = 1
    created_at: datetime = NOW


@dataclass(frozen=True)
class ScanOf:
    scanner: str
    findings: tuple[dict[str, str], ...] = ()
    id: int = 1
    created_at: datetime = NOW


@dataclass(frozen=True)
class Approved:
    approver: str
    target: str = "certified"
    roles: tuple[str, ...] = ("developer",)
    created_at: datetime = NOW


@dataclass
class Make:
    evaluations: list[Any] = field(default_factory=list)
    scans: list[Any] = field(default_factory=list)
    approvals: list[Any] = field(default_factory=list)
    usage: UsageSummary = field(default_factory=lambda: UsageSummary(30))
    warnings: tuple[FieldIssue, ...] = ()

    def evidence(self) -> Evidence:
        return Evidence(
            "alice", self.warnings, self.evaluations, self.scans, self.approvals, {30: self.usage}
        )


def finding(severity: str, id: str = "F1") -> dict[str, str]:
    return {"id": id, "severity": severity, "title": f"a {severity} finding"}


def test_schema_gate_fails_on_validation_warnings_unless_allowed() -> None:
    warned = Make(warnings=(FieldIssue("/spec/card/protocolVersion", "is missing"),)).evidence()
    assert SchemaGate().check(Make().evidence()).status is Status.PASS
    result = SchemaGate().check(warned)
    assert result.status is Status.FAIL and "protocolVersion" in result.evidence["warnings"][0]
    assert SchemaGate(allow_warnings=True).check(warned).status is Status.PASS


def test_evaluation_gate_reads_the_latest_run_of_each_suite() -> None:
    gate = EvaluationGate(Level.COMPREHENSIVE, min_score=0.8)
    assert gate.check(Make().evidence()).status is Status.PENDING
    basic_only = Make(evaluations=[Eval("smoke", "basic", True, 1.0)]).evidence()
    assert gate.check(basic_only).status is Status.PENDING  # a basic run never satisfies comprehensive
    low = Make(evaluations=[Eval("full", "comprehensive", True, 0.7)]).evidence()
    result = gate.check(low)
    assert result.status is Status.FAIL and "score >= 0.8" in (result.missing or "")
    rerun = Make(
        evaluations=[Eval("full", "comprehensive", True, 0.7), Eval("full", "comprehensive", True, 0.9)]
    )
    assert gate.check(rerun.evidence()).status is Status.PASS
    regressed = Make(
        evaluations=[Eval("full", "comprehensive", True, 0.9), Eval("full", "comprehensive", False, 0.9)]
    )
    assert gate.check(regressed.evidence()).status is Status.FAIL
    # A comprehensive run counts for the basic gate.
    assert EvaluationGate(Level.BASIC).check(rerun.evidence()).status is Status.PASS


def test_scan_gate_needs_a_scan_and_no_open_critical_finding() -> None:
    gate = FindingsGate(Severity.HIGH, require_scan=True)
    assert gate.check(Make().evidence()).status is Status.PENDING
    clean = Make(scans=[ScanOf("trivy", (finding("high"), finding("low", "F2")))]).evidence()
    assert gate.check(clean).status is Status.PASS
    critical = Make(scans=[ScanOf("trivy", (finding("critical"),))]).evidence()
    result = gate.check(critical)
    assert result.status is Status.FAIL and result.evidence["open"][0]["severity"] == "critical"
    fixed = Make(scans=[ScanOf("trivy", (finding("critical"),)), ScanOf("trivy", ())]).evidence()
    assert gate.check(fixed).status is Status.PASS  # the later scan of the same scanner closes it
    other_scanner = Make(scans=[ScanOf("trivy", (finding("critical"),)), ScanOf("snyk", ())]).evidence()
    assert gate.check(other_scanner).status is Status.FAIL
    assert FindingsGate(require_scan=False).check(Make().evidence()).status is Status.PASS


def test_usage_gate_waits_for_requests_callers_and_days() -> None:
    gate = UsageGate(min_requests=1000, min_callers=10, min_days=7)
    assert gate.check(Make().evidence(), NOW).status is Status.PENDING
    young = UsageSummary(30, requests=5000, callers=40, first=NOW - timedelta(days=2))
    result = gate.check(Make(usage=young).evidence(), NOW)
    assert result.status is Status.PENDING and "more days" in (result.missing or "")
    few_callers = UsageSummary(30, requests=5000, callers=3, first=NOW - timedelta(days=9))
    assert "distinct callers" in (gate.check(Make(usage=few_callers).evidence(), NOW).missing or "")
    ok = UsageSummary(30, requests=1000, callers=10, first=NOW - timedelta(days=7))
    assert gate.check(Make(usage=ok).evidence(), NOW).status is Status.PASS


def test_error_rate_and_latency_gates() -> None:
    assert ErrorRateGate().check(Make().evidence()).status is Status.PENDING
    assert LatencyGate().check(Make().evidence()).status is Status.PENDING
    bad = UsageSummary(30, requests=1000, errors=10, p95_ms=6000)
    assert (
        ErrorRateGate(max_rate=0.01).check(Make(usage=bad).evidence()).status is Status.FAIL
    )  # 1 % is not < 1 %
    assert LatencyGate(p95_max_ms=5000).check(Make(usage=bad).evidence()).status is Status.FAIL
    good = UsageSummary(30, requests=1000, errors=9, p95_ms=5000)
    assert ErrorRateGate().check(Make(usage=good).evidence()).status is Status.PASS
    assert LatencyGate(p95_max_ms=5000).check(Make(usage=good).evidence()).status is Status.PASS


def test_approvals_never_count_the_author_or_other_roles_or_tiers() -> None:
    gate = ApprovalsGate(2, (Role.TENANT_ADMIN,))
    evidence = Make(
        approvals=[
            Approved("alice", roles=("tenant_admin",)),  # the author
            Approved("bob", roles=("tenant_admin",)),
            Approved("carol", roles=("viewer",)),
            Approved("dave", target="experimental", roles=("tenant_admin",)),
        ]
    ).evidence()
    result = gate.check(evidence, State.CERTIFIED)
    assert result.status is Status.PENDING and result.evidence["approvers"] == ["bob"]
    evidence.approvals.append(Approved("erin", roles=("developer", "tenant_admin")))  # type: ignore[attr-defined]
    assert gate.check(evidence, State.CERTIFIED).status is Status.PASS


def test_the_report_lists_every_default_gate_of_the_tier() -> None:
    report = readiness(DEFAULT_GATES, State.CERTIFIED, Make().evidence(), NOW)
    assert [g.gate for g in report.gates] == [
        "evaluation",
        "usage",
        "errorRate",
        "latency",
        "findings",
        "approvals",
    ]
    assert not report.ready and {g.status for g in report.gates} == {Status.PENDING, Status.PASS}
    assert [g.gate for g in readiness(DEFAULT_GATES, State.EXPERIMENTAL, Make().evidence(), NOW).gates] == [
        "schema",
        "evaluation",
        "scan",
    ]
    assert DEFAULT_GATES.windows(State.CERTIFIED) == {30}


def test_a_tier_configured_in_policy_overrides_gate_by_gate() -> None:
    gates = parse_gates(
        {
            "certified": {
                "usage": None,
                "approvals": {"count": 2, "roles": ["tenant_admin"]},
                "latency": {"p95MaxMs": 800, "windowDays": 7},
            }
        }
    )
    certified = {g.name: g for g in gates.for_target(State.CERTIFIED)}
    assert "usage" not in certified and certified["approvals"] == ApprovalsGate(2, (Role.TENANT_ADMIN,))
    assert gate_config(certified["latency"]) == {"p95MaxMs": 800.0, "windowDays": 7}
    assert gates.windows(State.CERTIFIED) == {7, 30}
    assert gates.for_target(State.EXPERIMENTAL) == DEFAULT_GATES.for_target(State.EXPERIMENTAL)
    assert parse_gates({"experimental": {}}).for_target(State.EXPERIMENTAL) == DEFAULT_GATES.for_target(
        State.EXPERIMENTAL
    )


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"retired": {}}, "/spec/lifecycle/gates/retired"),
        ({"certified": {"speed": {}}}, "/spec/lifecycle/gates/certified/speed"),
        ({"certified": {"usage": {"minRequests": -1}}}, "/spec/lifecycle/gates/certified/usage/minRequests"),
        ({"certified": {"usage": {"windowDays": 400}}}, "/spec/lifecycle/gates/certified/usage/windowDays"),
        (
            {"certified": {"approvals": {"roles": ["root"]}}},
            "/spec/lifecycle/gates/certified/approvals/roles",
        ),
        ({"certified": {"approvals": {"count": 0}}}, "/spec/lifecycle/gates/certified/approvals/count"),
        (
            {"experimental": {"scan": {"maxSeverity": "bad"}}},
            "/spec/lifecycle/gates/experimental/scan/maxSeverity",
        ),
        ({"experimental": {"schema": {"strict": True}}}, "/spec/lifecycle/gates/experimental/schema/strict"),
        ({"experimental": []}, "/spec/lifecycle/gates/experimental"),
    ],
)
def test_bad_gate_configuration_names_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_gates(config)
    assert caught.value.details[0].field == field
