"""/v1/{plural}/{namespace}/{name}/versions/{version}/evaluations|scans|usage, and /v1/usage: evidence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from agentreg.api import schemas_evidence as s
from agentreg.api.bodies import APPLY_LIMIT, media_type, read_limited, strict_json
from agentreg.api.deps import ActorDep, StoreDep, VersionDep
from agentreg.api.responses import ERROR_RESPONSES, json_model
from agentreg.domain.errors import Unsupported
from agentreg.domain.evidence import severity_counts
from agentreg.domain.usage import decode_batch
from agentreg.services import evidence, usage
from agentreg.store.evidence import EvaluationRow, ScanRow

router = APIRouter(prefix="/v1", tags=["evidence"], responses=ERROR_RESPONSES)
VERSION = "/{plural}/{namespace}/{name}/versions/{version}"
# 10,000 findings with long titles, or 1,000 usage reports each carrying a full sketch, are megabytes.
LARGE_LIMIT = APPLY_LIMIT


def _evaluation_out(row: EvaluationRow) -> s.EvaluationOut:
    return s.EvaluationOut(
        id=row.id,
        suite=row.suite,
        level=row.level,
        score=row.score,
        passed=row.passed,
        metrics=row.metrics,
        reportUrl=row.report_url,
        createdAt=row.created_at,
        createdBy=row.created_by,
    )


def _scan_out(row: ScanRow) -> s.ScanOut:
    return s.ScanOut(
        id=row.id,
        scanner=row.scanner,
        findings=[s.FindingOut(**f) for f in row.findings],
        summary=severity_counts(row.findings),
        createdAt=row.created_at,
        createdBy=row.created_by,
    )


@router.post(
    VERSION + "/evaluations",
    status_code=201,
    response_model=s.EvaluationOut,
    summary="Attest an evaluation of a version (immutable)",
)
async def add_evaluation(
    request: Request,
    at: VersionDep,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    body = await strict_json(request, s.EvaluationIn)
    row = await evidence.add_evaluation(
        store,
        actor,
        at,
        suite=body.suite,
        level=body.level,
        score=body.score,
        passed=body.passed,
        metrics=body.metrics,
        report_url=body.reportUrl,
    )
    return json_model(request, _evaluation_out(row), status=201)


@router.get(VERSION + "/evaluations", response_model=s.EvaluationList, summary="A version's evaluations")
async def list_evaluations(
    request: Request,
    at: VersionDep,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    rows = await evidence.list_evaluations(store, actor, at)
    return json_model(request, s.EvaluationList(items=[_evaluation_out(r) for r in rows]))


@router.post(
    VERSION + "/scans",
    status_code=201,
    response_model=s.ScanOut,
    summary="Attest a security scan of a version (immutable)",
)
async def add_scan(
    request: Request,
    at: VersionDep,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    body = await strict_json(request, s.ScanIn, limit=LARGE_LIMIT)
    row = await evidence.add_scan(
        store,
        actor,
        at,
        scanner=body.scanner,
        findings=[f.model_dump() for f in body.findings],
    )
    return json_model(request, _scan_out(row), status=201)


@router.get(VERSION + "/scans", response_model=s.ScanList, summary="A version's security scans")
async def list_scans(
    request: Request,
    at: VersionDep,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    rows = await evidence.list_scans(store, actor, at)
    return json_model(request, s.ScanList(items=[_scan_out(r) for r in rows]))


@router.get(
    VERSION + "/usage", response_model=s.UsageOut, summary="A version's usage over a window, all reporters"
)
async def get_usage(
    request: Request,
    at: VersionDep,
    store: StoreDep,
    actor: ActorDep,
    window: Annotated[str, Query(max_length=8, description="<n>d or <n>h, 1h to 90d")] = "30d",
) -> Response:
    view = await usage.usage_of(store, actor, at.kind, at.namespace, at.name, at.version, window)
    summary = view.summary
    out = s.UsageOut(
        window=view.window,
        requests=summary.requests,
        errors=summary.errors,
        errorRate=summary.error_rate,
        callers=summary.callers,
        latencyMs=s.LatencyOut(p50=summary.p50_ms, p95=summary.p95_ms, p99=summary.p99_ms),
        first=summary.first,
        last=summary.last,
        reporters=summary.reporters,
        buckets=view.buckets,
    )
    return json_model(request, out)


@router.post(
    "/usage",
    response_model=s.UsageAccepted,
    summary="Report usage: up to 1000 {ref, bucketStart, bucketSeconds, requests, errors, latency, callers}",
    description=(
        "Each report counts one exact version's traffic in one time bucket as the caller saw it. "
        "`latency.counts` has one count per fixed bound (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, "
        "10000, 30000, 60000 ms) and one for slower, adding up to `requests`; `callers` is "
        "`{hll: <base64 HyperLogLog, precision 12>}` or `{ids: [<hex sha256 of a caller id>]}`. "
        "The whole batch is checked before anything is stored; resending a report for the same version and "
        "bucket replaces it."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "required": ["items"]}}},
        }
    },
)
async def report_usage(request: Request, store: StoreDep, actor: ActorDep) -> Response:
    media = media_type(request)
    if media != "application/json" and not media.endswith("+json"):
        raise Unsupported(f"unsupported media type {media!r}: send application/json")
    body = decode_batch(await read_limited(request, LARGE_LIMIT))
    accepted = await usage.report(store, actor, body)
    return json_model(request, s.UsageAccepted(accepted=accepted))
