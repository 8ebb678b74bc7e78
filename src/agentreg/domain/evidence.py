"""Evidence about a version, as the gates read it: evaluations, security scans, approvals and usage.

The gates read these through protocols, so stored rows are used as they are (no copying into domain types).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

from agentreg.domain.errors import FieldIssue, Invalid


class Level(StrEnum):
    BASIC = "basic"
    COMPREHENSIVE = "comprehensive"


LEVEL_RANK = {Level.BASIC: 0, Level.COMPREHENSIVE: 1}


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class Evaluation(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def suite(self) -> str: ...
    @property
    def level(self) -> str: ...
    @property
    def score(self) -> float | None: ...
    @property
    def passed(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...


class Scan(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def scanner(self) -> str: ...
    @property
    def findings(self) -> tuple[Mapping[str, str], ...]: ...
    @property
    def created_at(self) -> datetime: ...


class Approval(Protocol):
    @property
    def target(self) -> str: ...
    @property
    def approver(self) -> str: ...
    @property
    def roles(self) -> tuple[str, ...]: ...
    @property
    def created_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Usage of one version over a window, merged across reporters and buckets."""

    window_days: int
    requests: int = 0
    errors: int = 0
    callers: int = 0  # estimated distinct callers
    first: datetime | None = None  # start of the earliest bucket with traffic
    last: datetime | None = None  # end of the latest bucket with traffic
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    reporters: int = 0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def severity_counts(findings: Sequence[Mapping[str, str]]) -> dict[str, int]:
    """How many findings of each severity, worst first (every severity present, zeros included)."""
    counts = {s.value: 0 for s in sorted(Severity, key=SEVERITY_RANK.__getitem__, reverse=True)}
    for finding in findings:
        counts[finding["severity"]] += 1
    return counts


MAX_METRICS = 100
MAX_METRIC_TEXT = 1000
MAX_REPORT_URL = 2000


def check_metrics(metrics: Mapping[str, object], field: str = "/metrics") -> dict[str, object]:
    """An evaluation's metrics: up to 100 names (1-200 characters) of finite numbers, short strings or booleans."""
    if len(metrics) > MAX_METRICS:
        raise Invalid.at(field, f"at most {MAX_METRICS} metrics, not {len(metrics)}")
    problems = []
    for name, value in metrics.items():
        at = f"{field}/{name.replace('~', '~0').replace('/', '~1')}"
        if not 1 <= len(name) <= 200:
            problems.append(FieldIssue(at, "metric names have 1 to 200 characters"))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(FieldIssue(at, "must be a finite number"))
        elif isinstance(value, str) and len(value) > MAX_METRIC_TEXT:
            problems.append(FieldIssue(at, f"text values have at most {MAX_METRIC_TEXT} characters"))
        elif not isinstance(value, bool | int | float | str):
            problems.append(FieldIssue(at, "must be a number, a string or a boolean"))
    if problems:
        raise Invalid.of(problems)
    return dict(metrics)


def check_report_url(url: str, field: str = "/reportUrl") -> str:
    """A link to the full report: an https URL with a host (it is shown, never fetched)."""
    problem = Invalid.at(field, f"must be an https URL of at most {MAX_REPORT_URL} characters")
    if len(url) > MAX_REPORT_URL or not url.isprintable() or " " in url:
        raise problem
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise problem from None
    if parts.scheme != "https" or not host:
        raise problem
    return url
