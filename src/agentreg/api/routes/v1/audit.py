"""/v1/audit: the tenant's hash-chained audit log, its export, signed checkpoints and verification."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from agentreg.api import schemas
from agentreg.api.deps import ActorDep, StoreDep
from agentreg.api.responses import ERROR_RESPONSES, json_model
from agentreg.domain.errors import InvalidRequest
from agentreg.services import auditlog
from agentreg.services.auditlog import Checkpointer
from agentreg.store.interface import AuditQuery, StoredAuditEvent

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=ERROR_RESPONSES)
JSONL = "application/x-ndjson"


def event_out(row: StoredAuditEvent) -> schemas.AuditEventOut:
    e = row.event
    return schemas.AuditEventOut(
        seq=row.seq,
        tenant=e.tenant_id,
        at=e.at,
        actor=e.actor,
        action=e.action,
        object=e.target,
        details=dict(e.details),
        requestId=e.request_id,
        clientIp=e.client_ip,
        reason=e.reason,
        before=e.before,
        after=e.after,
        prevHash=row.prev_hash,
        hash=row.hash,
    )


def _cursor(text: str | None) -> int:
    if text is None:
        return 0
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InvalidRequest.at("/cursor", "is not a cursor this server issued")
    return int(text)


@router.get(
    "",
    response_model=schemas.AuditList,
    summary="Audit events, oldest first (JSON Lines export with Accept: application/x-ndjson or format=jsonl)",
)
async def list_events(
    request: Request,
    store: StoreDep,
    actor: ActorDep,
    tenant: Annotated[str | None, Query(description="default: your only tenant")] = None,
    actor_filter: Annotated[str | None, Query(alias="actor", max_length=200)] = None,
    action: Annotated[str | None, Query(max_length=64, description="exact, or a prefix ending in *")] = None,
    object_filter: Annotated[
        str | None, Query(alias="object", max_length=500, description="exact, or a prefix ending in *")
    ] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Annotated[str | None, Query(pattern="^(json|jsonl)$")] = None,
) -> Response:
    for field, value in (("/since", since), ("/until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidRequest.at(field, "give a time zone, e.g. 2026-11-23T10:00:00Z")
    tenant_id = await auditlog.audit_tenant(store, actor, tenant)
    query = AuditQuery(tenant_id, actor_filter, action, object_filter, since, until, _cursor(cursor), limit)
    if format == "jsonl" or (format is None and JSONL in request.headers.get("accept", "")):
        return StreamingResponse(_lines(store, query), media_type=JSONL)
    rows = await auditlog.list_events(store, actor, query)
    next_cursor = str(rows[-1].seq) if len(rows) == limit else None
    return json_model(request, schemas.AuditList(items=[event_out(r) for r in rows], nextCursor=next_cursor))


async def _lines(store: object, query: AuditQuery) -> AsyncIterator[bytes]:
    async for row in auditlog.export_events(store, query):  # type: ignore[arg-type]
        yield event_out(row).model_dump_json().encode() + b"\n"


@router.get(
    "/verify", response_model=schemas.AuditVerification, summary="Re-walk the chain and check checkpoints"
)
async def verify(
    request: Request,
    store: StoreDep,
    actor: ActorDep,
    tenant: Annotated[str | None, Query()] = None,
) -> Response:
    tenant_id = await auditlog.audit_tenant(store, actor, tenant)
    checkpointer: Checkpointer = request.app.state.checkpointer
    result = await auditlog.verify(store, tenant_id, checkpointer.files)
    problem = result.problem
    out = schemas.AuditVerification(
        tenant=result.tenant,
        ok=result.ok,
        events=result.events,
        headSeq=result.head_seq,
        headHash=result.head_hash,
        checkpoints=result.checkpoints,
        unverifiableCheckpoints=result.unverifiable,
        firstBad=schemas.AuditProblem(seq=problem.seq, eventId=problem.event_id, issue=problem.issue)
        if problem
        else None,
    )
    return json_model(request, out)


@router.post(
    "/checkpoints",
    status_code=201,
    response_model=schemas.CheckpointList,
    summary="Sign a checkpoint over the tenant's chain head now",
)
async def checkpoint(
    request: Request, store: StoreDep, actor: ActorDep, tenant: Annotated[str | None, Query()] = None
) -> Response:
    tenant_id = await auditlog.audit_tenant(store, actor, tenant)
    checkpointer: Checkpointer = request.app.state.checkpointer
    made = await checkpointer.checkpoint([tenant_id], force=True)
    items = [schemas.CheckpointOut(**c.to_json()) for c in made]
    return json_model(request, schemas.CheckpointList(items=items), status=201)


@router.get("/keys", summary="The public keys (JWK) that sign checkpoints")
async def public_keys(request: Request, actor: ActorDep) -> Response:
    checkpointer: Checkpointer = request.app.state.checkpointer
    keys = auditlog.public_jwks(checkpointer.files)
    return Response(json.dumps({"keys": list(keys.values())}), media_type="application/json")
