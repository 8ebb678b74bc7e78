"""/v1/deployments and /v1/{plural}/{namespace}/{name}/deployments: the inventory (read-only but overlays)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response

from agentreg.api import schemas_discovery as sd
from agentreg.api.bodies import strict_json
from agentreg.api.deps import ActorDep, KindDep, NamePath, NamespacePath, StoreDep
from agentreg.api.responses import ERROR_RESPONSES, json_model
from agentreg.services import inventory
from agentreg.services.inventory import DeploymentFilters, DeploymentView

router = APIRouter(prefix="/v1", tags=["discovery"], responses=ERROR_RESPONSES)
DeploymentId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Text = Annotated[str | None, Query(min_length=1, max_length=253)]


def _out(view: DeploymentView) -> sd.DeploymentOut:
    return sd.DeploymentOut.model_validate(view.to_json())


@router.get("/deployments", response_model=sd.DeploymentPage, summary="Discovered objects (inventory rows)")
async def list_deployments(
    request: Request,
    store: StoreDep,
    actor: ActorDep,
    resource: Annotated[
        str | None, Query(max_length=500, description="kind/namespace/name: where it runs")
    ] = None,
    cluster: Text = None,
    environment: Text = None,
    source: Text = None,
    health: Annotated[str | None, Query(description="passing, warning, critical or unknown")] = None,
    drift: Annotated[
        bool, Query(description="only rows running an unpublished or unadmitted version")
    ] = False,
    unregistered: Annotated[bool, Query(description="only rows nothing links to the catalog")] = False,
    orphaned: Annotated[
        bool | None, Query(description="only orphans (true) or only live rows (false)")
    ] = None,
    kind: Annotated[str | None, Query(max_length=40, description="the catalog kind")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    filters = DeploymentFilters(
        resource=resource,
        cluster=cluster,
        environment=environment,
        source=source,
        health=health,
        drift=drift,
        unregistered=unregistered,
        orphaned=orphaned,
        kind=kind,
    )
    views, next_cursor = await inventory.list_deployments(store, actor, filters, limit=limit, cursor=cursor)
    return json_model(request, sd.DeploymentPage(items=[_out(v) for v in views], nextCursor=next_cursor))


@router.get("/deployments/{deployment_id}", response_model=sd.DeploymentOut, summary="One inventory row")
async def get_deployment(
    request: Request, deployment_id: DeploymentId, store: StoreDep, actor: ActorDep
) -> Response:
    view = await inventory.get_deployment(store, actor, deployment_id)
    return json_model(request, _out(view), etag=view.etag)


@router.patch(
    "/deployments/{deployment_id}",
    response_model=sd.DeploymentOut,
    summary="Change a row's overlaid labels or annotations (JSON Merge Patch)",
    openapi_extra={
        "requestBody": {
            "content": {"application/merge-patch+json": {"schema": sd.DeploymentPatch.model_json_schema()}}
        }
    },
)
async def patch_deployment(
    request: Request,
    deployment_id: DeploymentId,
    store: StoreDep,
    actor: ActorDep,
    if_match: Annotated[str | None, Header(description="the row's ETag; 412 if it changed")] = None,
) -> Response:
    body = await strict_json(request, sd.DeploymentPatch)
    view = await inventory.set_overlay(
        store, actor, deployment_id, body.labels, body.annotations, if_match=if_match
    )
    return json_model(request, _out(view), etag=view.etag)


@router.get(
    "/{plural}/{namespace}/{name}/deployments",
    response_model=sd.DeploymentList,
    summary="Where a resource runs: the rows linked to it",
)
async def resource_deployments(
    request: Request,
    kind: KindDep,
    namespace: NamespacePath,
    name: NamePath,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    views = await inventory.deployments_of_resource(store, actor, kind, namespace, name)
    return json_model(request, sd.DeploymentList(items=[_out(v) for v in views]))
