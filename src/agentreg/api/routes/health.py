"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from agentreg.api.deps import StoreDep
from agentreg.store.migrate import head_revision

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and its schema is current")
async def readyz(store: StoreDep) -> Response:
    checks: dict[str, str] = {}
    try:
        await store.ping()
        checks["database"] = "ok"
        revision = await store.migration_revision()
        head = head_revision()
        checks["migrations"] = "ok" if revision == head else f"at {revision}, expected {head}"
    except Exception as exc:  # readiness reports any failure as not ready
        checks.setdefault("database", f"unreachable: {type(exc).__name__}")
    ready = all(v == "ok" for v in checks.values())
    body = json.dumps({"status": "ok" if ready else "unavailable", "checks": checks})
    return Response(body, status_code=200 if ready else 503, media_type="application/json")


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
