"""Evidence about a version: evaluations and security scans (attested, immutable, audited), and the snapshot
of all evidence (approvals and usage included) that promotion gates and policy rules read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from agentreg.domain.errors import Invalid
from agentreg.domain.evidence import Level, Severity, check_metrics, check_report_url, severity_counts
from agentreg.domain.gates import Evidence
from agentreg.domain.permissions import Action
from agentreg.domain.principals import Principal
from agentreg.domain.usage import summarize
from agentreg.services import audit, clock
from agentreg.services.access import readers
from agentreg.services.catalog import version_of, version_path
from agentreg.services.views import VersionAddress
from agentreg.store.evidence import EvaluationRow, ScanRow
from agentreg.store.interface import ResourceRow, Store, Tx, VersionRow

MAX_FINDINGS = 10_000
MAX_LABEL = 200  # suite and scanner names, finding ids
MAX_TITLE = 500
SUMMARY_WINDOW_DAYS = 30
_LEVELS = frozenset(level.value for level in Level)
_SEVERITIES = frozenset(severity.value for severity in Severity)


# --- evaluations ---------------------------------------------------------------------------------------


async def add_evaluation(
    store: Store,
    actor: Principal,
    at: VersionAddress,
    *,
    suite: str,
    level: str,
    score: float | None,
    passed: bool,
    metrics: Mapping[str, object],
    report_url: str | None,
) -> EvaluationRow:
    """Attest an evaluation of one version (``evidence.attest`` in its owning tenant); never changed after."""
    row_metrics = check_metrics(metrics)
    if report_url is not None:
        check_report_url(report_url)
    _check_label(suite, "/suite")
    if level not in _LEVELS:
        raise Invalid.at("/level", f"must be one of {', '.join(Level)}")
    if score is not None and not 0 <= score <= 1:
        raise Invalid.at("/score", "must be from 0 to 1, or null")
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        resource, version = await _version(tx, actor, at, Action.EVIDENCE_ATTEST)
        row = await tx.insert_evaluation(
            EvaluationRow(
                0, version.id, suite, level, score, passed, row_metrics, report_url, now, actor.subject
            )
        )
        await audit.record(
            tx,
            actor,
            "evidence.evaluation",
            version_path(resource, version.version),
            now,
            tenant=resource.tenant_id,
            suite=suite,
            level=level,
            score=score,
            passed=passed,
        )
    return row


async def list_evaluations(store: Store, actor: Principal, at: VersionAddress) -> list[EvaluationRow]:
    """Oldest first (``usage.read``)."""
    async with store.read(readers=readers(actor)) as tx:
        _, version = await _version(tx, actor, at, Action.USAGE_READ)
        return await tx.list_evaluations(version.id)


# --- scans ---------------------------------------------------------------------------------------------


async def add_scan(
    store: Store, actor: Principal, at: VersionAddress, *, scanner: str, findings: Sequence[Mapping[str, str]]
) -> ScanRow:
    """Attest a security scan of one version; a later scan by the same scanner supersedes it for the gates."""
    _check_label(scanner, "/scanner")
    if len(findings) > MAX_FINDINGS:
        raise Invalid.at("/findings", f"at most {MAX_FINDINGS} findings per scan")
    checked = tuple(_finding(f, f"/findings/{i}") for i, f in enumerate(findings))
    now = clock.now()
    async with store.begin(readers=readers(actor)) as tx:
        resource, version = await _version(tx, actor, at, Action.EVIDENCE_ATTEST)
        row = await tx.insert_scan(ScanRow(0, version.id, scanner, checked, now, actor.subject))
        await audit.record(
            tx,
            actor,
            "evidence.scan",
            version_path(resource, version.version),
            now,
            tenant=resource.tenant_id,
            scanner=scanner,
            summary=severity_counts(checked),
        )
    return row


async def list_scans(store: Store, actor: Principal, at: VersionAddress) -> list[ScanRow]:
    """Oldest first (``usage.read``)."""
    async with store.read(readers=readers(actor)) as tx:
        _, version = await _version(tx, actor, at, Action.USAGE_READ)
        return await tx.list_scans(version.id)


def _finding(finding: Mapping[str, str], at: str) -> dict[str, str]:
    if set(finding) - {"id", "severity", "title"}:
        raise Invalid.at(at, "a finding has id, severity and title only")
    _check_label(finding.get("id", ""), f"{at}/id")
    if finding.get("severity") not in _SEVERITIES:
        raise Invalid.at(f"{at}/severity", f"must be one of {', '.join(Severity)}")
    title = finding.get("title", "")
    if not isinstance(title, str) or len(title) > MAX_TITLE:
        raise Invalid.at(f"{at}/title", f"must be text of at most {MAX_TITLE} characters")
    return {"id": finding["id"], "severity": finding["severity"], "title": title}


def _check_label(text: object, field: str) -> None:
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_LABEL:
        raise Invalid.at(field, f"must have 1 to {MAX_LABEL} characters")


async def _version(
    tx: Tx, actor: Principal, at: VersionAddress, action: Action
) -> tuple[ResourceRow, VersionRow]:
    return await version_of(tx, actor, at.kind, at.namespace, at.name, at.version, action)


# --- the snapshot the gates read -----------------------------------------------------------------------


async def gather(tx: Tx, version: VersionRow, windows: set[int], now: datetime) -> Evidence:
    """All evidence about ``version`` in ``tx``, with usage summarized over each window (days) in ``windows``."""
    usage = {}
    if windows:
        rows = await tx.list_usage(version.id, now - timedelta(days=max(windows)))
        usage = {days: summarize(rows, days, now) for days in windows}
    return Evidence(
        author=version.published_by,
        warnings=version.warnings,
        evaluations=await tx.list_evaluations(version.id),
        scans=await tx.list_scans(version.id),
        approvals=await tx.list_approvals(version.id),
        usage=usage,
    )


def evidence_summary(evidence: Evidence) -> dict[str, Any]:
    """Evidence as CEL policy rules see it (``evidence.usage.errorRate < 0.01``): plain values, no nulls in
    usage (zeros until there is traffic); scans are the latest per scanner, counted by severity."""
    latest = {scan.scanner: scan for scan in evidence.scans}
    usage = evidence.usage.get(SUMMARY_WINDOW_DAYS)
    return {
        "evaluations": [
            {"suite": e.suite, "level": e.level, "score": e.score, "passed": e.passed}
            for e in evidence.evaluations
        ],
        "scans": [{"scanner": s.scanner, **severity_counts(s.findings)} for s in latest.values()],
        "usage": {
            "requests": usage.requests if usage else 0,
            "errors": usage.errors if usage else 0,
            "errorRate": (usage.error_rate or 0.0) if usage else 0.0,
            "callers": usage.callers if usage else 0,
            "p95Ms": (usage.p95_ms or 0.0) if usage else 0.0,
        },
        "approvals": len(evidence.approvals),
    }
