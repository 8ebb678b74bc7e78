"""Evidence about a version, as the gates read it: evaluations, security scans, approvals and usage.

The gates read these through protocols, so stored rows are used as they are (no copying into domain types).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


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
