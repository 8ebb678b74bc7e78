"""Storage of evidence about versions: evaluations, security scans, approvals and usage buckets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class EvaluationRow:
    id: int  # 0 until stored
    version_id: int
    suite: str
    level: str  # basic | comprehensive
    score: float | None
    passed: bool
    metrics: dict[str, Any]
    report_url: str | None
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class ScanRow:
    id: int  # 0 until stored
    version_id: int
    scanner: str
    findings: tuple[dict[str, str], ...]  # {id, severity, title}
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class ApprovalRow:
    version_id: int
    target: str  # the state approved for
    approver: str
    roles: tuple[str, ...]  # the approver's roles in the owning tenant when approving
    comment: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One reporter's counts for one version and time bucket; reporting the same key again replaces it."""

    version_id: int
    reporter: str
    bucket_start: datetime
    bucket_seconds: int
    requests: int
    errors: int
    latency: tuple[int, ...]  # counts per fixed bound (domain.usage.LATENCY_BOUNDS_MS, then +Inf)
    callers: bytes  # HyperLogLog registers (domain.hll)
    updated_at: datetime


class EvidenceTx(Protocol):
    async def insert_evaluation(self, row: EvaluationRow) -> EvaluationRow: ...
    async def list_evaluations(self, version_id: int) -> list[EvaluationRow]:
        """Oldest first."""

    async def insert_scan(self, row: ScanRow) -> ScanRow: ...
    async def list_scans(self, version_id: int) -> list[ScanRow]:
        """Oldest first."""

    async def insert_approval(self, row: ApprovalRow) -> bool:
        """False when this approver already approved this version for this target."""

    async def list_approvals(self, version_id: int) -> list[ApprovalRow]: ...

    async def upsert_usage(self, rows: Sequence[UsageRow]) -> None:
        """Insert or replace by (version_id, reporter, bucket_start)."""

    async def list_usage(self, version_id: int, since: datetime) -> list[UsageRow]:
        """Buckets starting at or after ``since``, oldest first."""
