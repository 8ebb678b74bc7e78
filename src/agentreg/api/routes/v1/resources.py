"""/v1/{plural}: publish, list, get, patch metadata, versions, a version by selector, the active config."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from agentreg.api import render, schemas
from agentreg.api.bodies import json_object, one_document
from agentreg.api.deps import ActorDep, KindDep, NamePath, NamespacePath, SelectorPath, StoreDep
from agentreg.api.fastlane import version_etag
from agentreg.api.responses import ERROR_RESPONSES, json_model, version_response
from agentreg.domain.names import ENVIRONMENT_PATTERN
from agentreg.services import catalog, publish, resolve, resources, selection
from agentreg.services.selection import Reading

EnvironmentQuery = Annotated[
    str | None,
    Query(
        pattern=f"^{ENVIRONMENT_PATTERN}$",
        description="resolve among the versions this environment's policy admits",
    ),
]
IncludeBlockedQuery = Annotated[
    bool, Query(description="read a blocked version (needs lifecycle.admin in the owning tenant)")
]

router = APIRouter(prefix="/v1", tags=["catalog"], responses=ERROR_RESPONSES)

_DOCUMENT_BODY = {
    "requestBody": {
        "required": True,
        "description": "One envelope: apiVersion, kind, metadata, spec",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "object"}},
        },
    }
}


@router.post(
    "/{plural}",
    response_model=schemas.PublishOut,
    status_code=201,
    openapi_extra=_DOCUMENT_BODY,
    summary="Publish a version (201 created, 200 unchanged)",
)
async def publish_version(request: Request, kind: KindDep, store: StoreDep, actor: ActorDep) -> Response:
    outcome = await publish.publish(store, actor, await one_document(request), expected_kind=kind)
    status = 201 if outcome.result == "created" else 200
    return json_model(request, render.publish_out(outcome), status=status, etag=version_etag(outcome.view))


@router.get("/{plural}", response_model=schemas.ResourcePage, summary="List resources of a kind")
async def list_resources(
    request: Request,
    kind: KindDep,
    store: StoreDep,
    actor: ActorDep,
    namespace: Annotated[str | None, Query(max_length=200)] = None,
    label: Annotated[list[str], Query(description="key=value; repeat to require several")] = [],  # noqa: B006
    q: Annotated[
        str | None, Query(max_length=200, description="substring of name, title or description")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    views, next_cursor = await catalog.list_resources(
        store, actor, kind, namespace=namespace, labels=label, text=q, limit=limit, cursor=cursor
    )
    page = schemas.ResourcePage(items=[render.resource_out(v) for v in views], nextCursor=next_cursor)
    return json_model(request, page)


@router.get("/{plural}/{namespace}/{name}", response_model=schemas.ResourceOut, summary="Get a resource")
async def get_resource(
    request: Request,
    kind: KindDep,
    namespace: NamespacePath,
    name: NamePath,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    view = await catalog.get_resource(store, actor, kind, namespace, name)
    return json_model(request, render.resource_out(view), etag=view.etag)


@router.patch(
    "/{plural}/{namespace}/{name}",
    response_model=schemas.ResourceOut,
    summary="Change labels or annotations (JSON Merge Patch)",
    openapi_extra={
        "requestBody": {
            "content": {"application/merge-patch+json": {"schema": schemas.ResourcePatch.model_json_schema()}}
        }
    },
)
async def patch_resource(
    request: Request,
    kind: KindDep,
    namespace: NamePath,
    name: NamePath,
    store: StoreDep,
    actor: ActorDep,
    if_match: Annotated[str | None, Header(description="the resource's ETag; 412 if it changed")] = None,
) -> Response:
    patch = await json_object(request)
    view = await resources.update_metadata(store, actor, kind, namespace, name, patch, if_match=if_match)
    return json_model(request, render.resource_out(view), etag=view.etag)


@router.get(
    "/{plural}/{namespace}/{name}/versions",
    response_model=schemas.VersionList,
    summary="List versions, newest first",
)
async def list_versions(
    request: Request,
    kind: KindDep,
    namespace: NamespacePath,
    name: NamePath,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    resource, versions = await catalog.list_versions(store, actor, kind, namespace, name)
    out = schemas.VersionList(
        kind=resource.kind,
        namespace=resource.namespace,
        name=resource.name,
        items=[render.version_summary(v, resource) for v in versions],
    )
    return json_model(request, out)


@router.get(
    "/{plural}/{namespace}/{name}/versions/{selector}",
    response_model=schemas.VersionOut,
    summary="Get the version a selector picks (exact, latest, alias or range)",
)
async def get_version(
    request: Request,
    kind: KindDep,
    namespace: NamespacePath,
    name: NamePath,
    selector: SelectorPath,
    store: StoreDep,
    actor: ActorDep,
    environment: EnvironmentQuery = None,
    includeBlocked: IncludeBlockedQuery = False,
) -> Response:
    reading = Reading(environment=environment, include_blocked=includeBlocked)
    view = await selection.get_version(store, actor, kind, namespace, name, selector, reading)
    return version_response(request, view)


@router.get(
    "/agents/{namespace}/{name}/versions/{selector}/resolved",
    response_model=schemas.ResolvedOut,
    summary="An agent's active config: every ref in its config resolved to a version and its document",
)
async def get_resolved(
    request: Request,
    namespace: NamespacePath,
    name: NamePath,
    selector: SelectorPath,
    store: StoreDep,
    actor: ActorDep,
    environment: EnvironmentQuery = None,
    includeBlocked: IncludeBlockedQuery = False,
) -> Response:
    reading = Reading(environment=environment, include_blocked=includeBlocked)
    view = await resolve.resolve_agent(store, actor, namespace, name, selector, reading)
    return json_model(request, render.resolved_out(view), headers=render.version_headers(view.root))
