"""/v1/apply and /v1/resolve: many documents or refs in one request."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from agentreg.api import render, schemas
from agentreg.api.bodies import document_stream
from agentreg.api.deps import ActorDep, StoreDep
from agentreg.api.errors import request_id_of
from agentreg.api.responses import ERROR_RESPONSES, json_model
from agentreg.services import publish, resolve

router = APIRouter(prefix="/v1", tags=["batch"], responses=ERROR_RESPONSES)


@router.post(
    "/apply",
    response_model=schemas.ApplyOut,
    summary="Apply a multi-document YAML stream or a JSON array, in dependency order (207 if any failed)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    },
    responses={207: {"model": schemas.ApplyOut, "description": "some documents failed"}},
)
async def apply(
    request: Request, store: StoreDep, actor: ActorDep, dryRun: Annotated[bool, Query()] = False
) -> Response:
    items = [publish.ApplyInput(i.index, i.value, i.error) for i in await document_stream(request)]
    results = await publish.apply(store, actor, items, dry_run=dryRun)
    request_id = request_id_of(request)
    out = schemas.ApplyOut(results=[render.apply_item(r, request_id) for r in results])
    failed = any(r.result == "failed" for r in results)
    return json_model(request, out, status=207 if failed else 200)


@router.post("/resolve", response_model=schemas.ResolveOut, summary="Resolve many refs at once")
async def resolve_refs(
    request: Request, body: schemas.ResolveIn, store: StoreDep, actor: ActorDep
) -> Response:
    results = await resolve.resolve_refs(store, actor, body.refs)
    request_id = request_id_of(request)
    return json_model(
        request, schemas.ResolveOut(results=[render.resolve_item(r, request_id) for r in results])
    )
