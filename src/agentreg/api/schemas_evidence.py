"""Wire models of evidence: evaluations, security scans and usage. Pydantic only (the SDK imports them too).

Inputs are strict: unknown fields, strings for numbers and numbers for booleans are refused, naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from agentreg.api.schemas import Strict, Wire

LevelName = Literal["basic", "comprehensive"]
SeverityName = Literal["critical", "high", "medium", "low", "info"]


class StrictIn(Strict):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", strict=True)


class EvaluationIn(StrictIn):
    suite: str = Field(min_length=1, max_length=200, description="the evaluation suite, e.g. 'helpdesk-qa'")
    level: LevelName
    score: float | None = Field(default=None, ge=0, le=1)
    passed: bool
    metrics: dict[str, Any] = Field(
        default_factory=dict, description="up to 100 named numbers, strings or booleans"
    )
    reportUrl: str | None = Field(default=None, max_length=2000, description="https URL of the full report")


class EvaluationOut(Wire):
    id: int
    suite: str
    level: str
    score: float | None
    passed: bool
    metrics: dict[str, Any]
    reportUrl: str | None
    createdAt: datetime
    createdBy: str


class EvaluationList(Wire):
    items: list[EvaluationOut]


class FindingIn(StrictIn):
    id: str = Field(min_length=1, max_length=200, description="the scanner's id, e.g. a CVE")
    severity: SeverityName
    title: str = Field(default="", max_length=500)


class ScanIn(StrictIn):
    scanner: str = Field(min_length=1, max_length=200, description="the scanner, e.g. 'trivy'")
    findings: list[FindingIn] = Field(max_length=10_000)


class FindingOut(Wire):
    id: str
    severity: str
    title: str


class ScanOut(Wire):
    id: int
    scanner: str
    findings: list[FindingOut]
    summary: dict[str, int] = Field(description="findings per severity, worst first")
    createdAt: datetime
    createdBy: str


class ScanList(Wire):
    items: list[ScanOut]


class UsageAccepted(Wire):
    accepted: int = Field(description="reports stored (a report for a bucket already reported replaces it)")


class LatencyOut(Wire):
    p50: float | None
    p95: float | None
    p99: float | None


class UsageOut(Wire):
    window: str
    requests: int
    errors: int
    errorRate: float | None
    callers: int = Field(description="estimated distinct callers (HyperLogLog, about 1.6 % error)")
    latencyMs: LatencyOut
    first: datetime | None = Field(description="start of the earliest bucket with traffic")
    last: datetime | None = Field(description="end of the latest bucket with traffic")
    reporters: int
    buckets: int = Field(description="reports rolled up (one per reporter and bucket)")
