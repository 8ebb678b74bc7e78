"""Evidence storage on SQLite and PostgreSQL: evaluations, scans, approvals and usage buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from agentreg.store.evidence import ApprovalRow, EvaluationRow, ScanRow, UsageRow
from agentreg.store.interface import NewVersion
from agentreg.store.sql import SqlStore, SqlTx

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


async def _version(tx: SqlTx, version: str = "1.0.0") -> int:
    await tx.ensure_tenant("default", "default", NOW)
    await tx.claim_namespace("acme", "default", NOW)
    resource = await tx.get_resource("default", "agent", "acme", "bot") or await tx.insert_resource(
        "default", "agent", "acme", "bot", NOW
    )
    row = await tx.insert_version(
        NewVersion(
            resource_id=resource.id,
            version=version,
            semver_key=version,
            digest="sha256:" + "0" * 64,
            document="{}",
            title="t",
            description="d",
            protocol=None,
            warnings=(),
            origin="published",
            published_at=NOW,
            published_by="author",
        )
    )
    return row.id


def usage(version_id: int, reporter: str, start: datetime, requests: int, callers: bytes = b"") -> UsageRow:
    latency = (requests,) + (0,) * 13
    return UsageRow(version_id, reporter, start, 3600, requests, 0, latency, callers, NOW)


async def test_evaluations_and_scans_round_trip_oldest_first(store: SqlStore) -> None:
    async with store.begin() as tx:
        vid = await _version(tx)
        first = await tx.insert_evaluation(
            EvaluationRow(
                0, vid, "qa", "basic", None, True, {"f1": 0.9, "note": "ok", "x": True}, None, NOW, "ci"
            )
        )
        second = await tx.insert_evaluation(
            EvaluationRow(0, vid, "qa", "comprehensive", 0.85, False, {}, "https://r.example/1", NOW, "ci")
        )
        finding = {"id": "CVE-1", "severity": "critical", "title": "bad"}
        scan = await tx.insert_scan(ScanRow(0, vid, "trivy", (finding,), NOW, "ci"))
    assert first.id and second.id > first.id and scan.id
    async with store.read() as tx:
        evaluations = await tx.list_evaluations(vid)
        scans = await tx.list_scans(vid)
    assert evaluations == [first, second]
    assert evaluations[0].metrics == {"f1": 0.9, "note": "ok", "x": True} and evaluations[0].passed is True
    assert evaluations[1].score == 0.85 and evaluations[1].report_url == "https://r.example/1"
    assert evaluations[1].created_at == NOW
    assert scans == [scan] and scans[0].findings == (finding,)


async def test_an_approver_approves_a_target_once(store: SqlStore) -> None:
    async with store.begin() as tx:
        vid = await _version(tx)
        approval = ApprovalRow(vid, "certified", "bob", ("developer",), "lgtm", NOW)
        assert await tx.insert_approval(approval)
        assert not await tx.insert_approval(approval)
        assert await tx.insert_approval(ApprovalRow(vid, "experimental", "bob", ("developer",), "", NOW))
    async with store.read() as tx:
        assert [(a.target, a.roles) for a in await tx.list_approvals(vid)] == [
            ("certified", ("developer",)),
            ("experimental", ("developer",)),
        ]


async def test_usage_upsert_replaces_the_same_reporter_version_and_bucket(store: SqlStore) -> None:
    async with store.begin() as tx:
        vid = await _version(tx)
        other = await _version(tx, "2.0.0")
        await tx.upsert_usage(
            [
                usage(vid, "gw-a", NOW, 5, b"\x00\x01\x03"),
                usage(vid, "gw-b", NOW, 7),
                usage(other, "gw-a", NOW, 11),
            ]
        )
    async with store.begin() as tx:
        await tx.upsert_usage([usage(vid, "gw-a", NOW, 9, b"\x00\x02\x04")])
    async with store.read() as tx:
        rows = await tx.list_usage(vid, NOW - HOUR)
    assert [(r.reporter, r.requests, r.callers) for r in rows] == [
        ("gw-a", 9, b"\x00\x02\x04"),
        ("gw-b", 7, b""),
    ]
    assert (
        rows[0].latency == (9,) + (0,) * 13 and rows[0].bucket_start == NOW and rows[0].bucket_seconds == 3600
    )


async def test_the_last_of_two_reports_of_one_key_in_one_upsert_wins(store: SqlStore) -> None:
    async with store.begin() as tx:
        vid = await _version(tx)
        await tx.upsert_usage([usage(vid, "gw", NOW, 1), usage(vid, "gw", NOW, 2)])
    async with store.read() as tx:
        assert [r.requests for r in await tx.list_usage(vid, NOW)] == [2]


async def test_usage_lists_buckets_from_a_start_oldest_first(store: SqlStore) -> None:
    async with store.begin() as tx:
        vid = await _version(tx)
        await tx.upsert_usage([usage(vid, "gw", NOW - i * HOUR, i) for i in range(5)])
    async with store.read() as tx:
        rows = await tx.list_usage(vid, NOW - 2 * HOUR)
        everything = await tx.list_usage(vid, NOW - 100 * HOUR)
    assert [r.bucket_start for r in rows] == [NOW - 2 * HOUR, NOW - HOUR, NOW]
    assert len(everything) == 5


async def test_a_scoped_transaction_cannot_write_another_tenants_usage(store: SqlStore) -> None:
    """Row-level security (PostgreSQL) still checks every row of the one-statement upsert."""
    if store.dialect != "postgresql":
        pytest.skip("row-level security is PostgreSQL's")
    async with store.begin() as tx:
        vid = await _version(tx)
    with pytest.raises(sa.exc.DBAPIError, match="row-level security"):
        async with store.begin(readers=("elsewhere",)) as tx:
            await tx.upsert_usage([usage(vid, "gw", NOW, 1)])
    async with store.begin(readers=("default",)) as tx:
        await tx.upsert_usage([usage(vid, "gw", NOW, 1)])
    async with store.read() as tx:
        assert len(await tx.list_usage(vid, NOW)) == 1
