"""/v1/policy: the tenant's governance policy (versioned, with ETags), its revisions and its exemptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from agentreg.api.bodies import one_document, strict_json
from agentreg.api.deps import ActorDep, StoreDep
from agentreg.api.responses import ERROR_RESPONSES, json_model
from agentreg.api.schemas_policy import (
    ExemptionIn,
    ExemptionList,
    ExemptionOut,
    PolicyOut,
    PolicyRevisionList,
    PolicyRevisionOut,
)
from agentreg.domain.policy import render_policy
from agentreg.services import governance
from agentreg.services.governance import ExemptionView, PolicyView

router = APIRouter(prefix="/v1/policy", tags=["policy"], responses=ERROR_RESPONSES)
TenantQuery = Annotated[str | None, Query(max_length=63, description="the tenant (default: your only one)")]
_POLICY_BODY = {
    "requestBody": {
        "required": True,
        "description": "A policy document: apiVersion agentreg.dev/v1, kind Policy, spec",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "object"}},
        },
    }
}


def _policy_out(view: PolicyView) -> PolicyOut:
    return PolicyOut(
        tenant=view.tenant,
        revision=view.revision,
        document=view.document,
        effective=render_policy(view.policy),
        updatedAt=view.updated_at,
        updatedBy=view.updated_by,
    )


def _exemption_out(view: ExemptionView) -> ExemptionOut:
    row = view.row
    return ExemptionOut(
        id=row.id,
        tenant=row.tenant_id,
        resource=row.resource,
        rules=list(row.rules),
        reason=row.reason,
        approvedBy=row.approved_by,
        expiresAt=row.expires_at,
        createdAt=row.created_at,
        active=view.active,
    )


@router.get("", response_model=PolicyOut, summary="The tenant's policy: as put, and in effect")
async def get_policy(
    request: Request, store: StoreDep, actor: ActorDep, tenant: TenantQuery = None
) -> Response:
    view = await governance.get_policy(store, actor, tenant)
    return json_model(request, _policy_out(view), etag=view.etag)


@router.put(
    "",
    response_model=PolicyOut,
    openapi_extra=_POLICY_BODY,
    summary="Replace the tenant's policy (a new revision; If-Match: the ETag you read)",
)
async def put_policy(
    request: Request,
    store: StoreDep,
    actor: ActorDep,
    tenant: TenantQuery = None,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    view = await governance.put_policy(store, actor, await one_document(request), tenant, if_match)
    return json_model(request, _policy_out(view), etag=view.etag)


@router.get(
    "/revisions", response_model=PolicyRevisionList, summary="Every revision of the policy, newest first"
)
async def list_revisions(
    request: Request, store: StoreDep, actor: ActorDep, tenant: TenantQuery = None
) -> Response:
    tenant_id, rows = await governance.list_revisions(store, actor, tenant)
    items = [
        PolicyRevisionOut(
            revision=r.revision,
            digest=r.digest,
            document=governance.stored_document(r),
            createdAt=r.created_at,
            createdBy=r.created_by,
        )
        for r in rows
    ]
    return json_model(request, PolicyRevisionList(tenant=tenant_id, items=items))


@router.get(
    "/exemptions", response_model=ExemptionList, summary="The tenant's exemptions (expired ones inactive)"
)
async def list_exemptions(
    request: Request, store: StoreDep, actor: ActorDep, tenant: TenantQuery = None
) -> Response:
    views = await governance.list_exemptions(store, actor, tenant)
    return json_model(request, ExemptionList(items=[_exemption_out(v) for v in views]))


@router.post(
    "/exemptions", status_code=201, response_model=ExemptionOut, summary="Exempt a resource from rules"
)
async def add_exemption(
    request: Request, store: StoreDep, actor: ActorDep, tenant: TenantQuery = None
) -> Response:
    body = await strict_json(request, ExemptionIn)
    view = await governance.add_exemption(store, actor, body.model_dump(), tenant)
    return json_model(request, _exemption_out(view), status=201)


@router.delete("/exemptions/{exemption_id}", status_code=204, summary="Remove an exemption")
async def delete_exemption(
    store: StoreDep,
    actor: ActorDep,
    exemption_id: Annotated[str, Path(min_length=1, max_length=64)],
    tenant: TenantQuery = None,
) -> Response:
    await governance.delete_exemption(store, actor, exemption_id, tenant)
    return Response(status_code=204)
