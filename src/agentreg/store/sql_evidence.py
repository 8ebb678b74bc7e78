"""SQL for evidence (evaluations, scans, approvals, usage); mixed into ``SqlTx``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from agentreg.store import tables as t
from agentreg.store.evidence import ApprovalRow, EvaluationRow, ScanRow, UsageRow

if TYPE_CHECKING:
    from agentreg.store.sql import Runner, SqlStore

_ev, _sc, _ap, _us = t.evaluations.c, t.scans.c, t.approvals.c, t.usage_buckets.c
_p = sa.bindparam
LIST_EVALUATIONS = sa.select(t.evaluations).where(_ev.version_id == _p("version_id")).order_by(_ev.id)
LIST_SCANS = sa.select(t.scans).where(_sc.version_id == _p("version_id")).order_by(_sc.id)
LIST_APPROVALS = (
    sa.select(t.approvals).where(_ap.version_id == _p("version_id")).order_by(_ap.created_at, _ap.approver)
)
LIST_USAGE = (
    sa.select(t.usage_buckets)
    .where(_us.version_id == _p("version_id"), _us.bucket_start >= _p("since", type_=t.UTCDateTime()))
    .order_by(_us.bucket_start, _us.reporter)
)
_USAGE_KEY = ("version_id", "reporter", "bucket_start")
_USAGE_VALUES = ("bucket_seconds", "requests", "errors", "latency", "callers", "updated_at")


def _upsert_usage(dialect: str) -> sa.Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(t.usage_buckets)
    return statement.on_conflict_do_update(
        index_elements=list(_USAGE_KEY), set_={c: statement.excluded[c] for c in _USAGE_VALUES}
    )


_UPSERT_USAGE = {d: _upsert_usage(d) for d in ("postgresql", "sqlite")}
_PG_ARRAYS = {
    "version_id": "bigint",
    "reporter": "varchar",
    "bucket_start": "timestamptz",
    "bucket_seconds": "integer",
    "requests": "bigint",
    "errors": "bigint",
    "latency": "text",
    "callers": "bytea",
    "updated_at": "timestamptz",
}
# PostgreSQL: one statement over arrays, not one per row. Row-level security checks each row's version
# through nested policy subqueries; executed row by row (executemany) that made a batch of 1000 ten
# times slower than this.
_UPSERT_USAGE_ARRAYS = sa.text(
    f"INSERT INTO {t.usage_buckets.name} ({', '.join(_PG_ARRAYS)}) "
    f"SELECT * FROM unnest({', '.join(f'CAST(:{c} AS {kind}[])' for c, kind in _PG_ARRAYS.items())}) "
    f"ON CONFLICT ({', '.join(_USAGE_KEY)}) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _USAGE_VALUES)
)


def _evaluation(m: sa.RowMapping) -> EvaluationRow:
    return EvaluationRow(
        id=m["id"],
        version_id=m["version_id"],
        suite=m["suite"],
        level=m["level"],
        score=m["score"],
        passed=bool(m["passed"]),
        metrics=json.loads(m["metrics"]),
        report_url=m["report_url"],
        created_at=m["created_at"],
        created_by=m["created_by"],
    )


def _scan(m: sa.RowMapping) -> ScanRow:
    return ScanRow(
        id=m["id"],
        version_id=m["version_id"],
        scanner=m["scanner"],
        findings=tuple(json.loads(m["findings"])),
        created_at=m["created_at"],
        created_by=m["created_by"],
    )


class EvidenceSql:
    run: Runner
    store: SqlStore

    if TYPE_CHECKING:

        def mark_changed(self) -> None: ...

    async def insert_evaluation(self, row: EvaluationRow) -> EvaluationRow:
        values = {
            "version_id": row.version_id,
            "suite": row.suite,
            "level": row.level,
            "score": row.score,
            "passed": row.passed,
            "metrics": json.dumps(row.metrics, sort_keys=True),
            "report_url": row.report_url,
            "created_at": row.created_at,
            "created_by": row.created_by,
        }
        stored = await self.run.execute(sa.insert(t.evaluations).returning(t.evaluations), values)
        self.mark_changed()  # readiness and admission read evidence
        return _evaluation(stored.mappings().one())

    async def list_evaluations(self, version_id: int) -> list[EvaluationRow]:
        rows = await self.run.execute(LIST_EVALUATIONS, {"version_id": version_id})
        return [_evaluation(m) for m in rows.mappings()]

    async def insert_scan(self, row: ScanRow) -> ScanRow:
        values = {
            "version_id": row.version_id,
            "scanner": row.scanner,
            "findings": json.dumps(list(row.findings)),
            "created_at": row.created_at,
            "created_by": row.created_by,
        }
        stored = await self.run.execute(sa.insert(t.scans).returning(t.scans), values)
        self.mark_changed()
        return _scan(stored.mappings().one())

    async def list_scans(self, version_id: int) -> list[ScanRow]:
        rows = await self.run.execute(LIST_SCANS, {"version_id": version_id})
        return [_scan(m) for m in rows.mappings()]

    async def insert_approval(self, row: ApprovalRow) -> bool:
        existing = await self.run.execute(
            sa.select(_ap.approver).where(
                _ap.version_id == row.version_id, _ap.target == row.target, _ap.approver == row.approver
            )
        )
        if existing.first() is not None:
            return False
        values = {
            "version_id": row.version_id,
            "target": row.target,
            "approver": row.approver,
            "roles": json.dumps(list(row.roles)),
            "comment": row.comment,
            "created_at": row.created_at,
        }
        await self.store.insert_ignore(self.run, t.approvals, values)
        self.mark_changed()
        return True

    async def list_approvals(self, version_id: int) -> list[ApprovalRow]:
        rows = await self.run.execute(LIST_APPROVALS, {"version_id": version_id})
        return [
            ApprovalRow(
                m["version_id"],
                m["target"],
                m["approver"],
                tuple(json.loads(m["roles"])),
                m["comment"],
                m["created_at"],
            )
            for m in rows.mappings()
        ]

    async def upsert_usage(self, rows: Sequence[UsageRow]) -> None:
        # One statement cannot update a row twice: the last report of a key wins, as if sent afterwards.
        latest = {(r.version_id, r.reporter, r.bucket_start): r for r in rows}
        if not latest:
            return
        values: list[dict[str, Any]] = [
            {
                "version_id": r.version_id,
                "reporter": r.reporter,
                "bucket_start": r.bucket_start,
                "bucket_seconds": r.bucket_seconds,
                "requests": r.requests,
                "errors": r.errors,
                "latency": json.dumps(list(r.latency)),
                "callers": r.callers,
                "updated_at": r.updated_at,
            }
            for r in latest.values()
        ]
        if self.store.dialect == "postgresql":
            columns = {c: [v[c] for v in values] for c in _PG_ARRAYS}
            await self.run.execute(_UPSERT_USAGE_ARRAYS, columns)
        else:
            await self.run.execute(_UPSERT_USAGE[self.store.dialect], values)
        # No mark_changed: usage is telemetry; caches of time-dependent answers expire on their own.

    async def list_usage(self, version_id: int, since: datetime) -> list[UsageRow]:
        rows = await self.run.execute(LIST_USAGE, {"version_id": version_id, "since": since})
        return [
            UsageRow(
                m["version_id"],
                m["reporter"],
                m["bucket_start"],
                m["bucket_seconds"],
                m["requests"],
                m["errors"],
                tuple(json.loads(m["latency"])),
                bytes(m["callers"]),
                m["updated_at"],
            )
            for m in rows.mappings()
        ]
