"""/v1/{plural}/{namespace}/{name}/aliases: movable pointers to versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Request, Response

from agentreg.api import render, schemas
from agentreg.api.deps import ActorDep, KindDep, NamePath, NamespacePath, StoreDep
from agentreg.api.responses import ERROR_RESPONSES, json_model
from agentreg.services import aliases

router = APIRouter(
    prefix="/v1/{plural}/{namespace}/{name}/aliases", tags=["aliases"], responses=ERROR_RESPONSES
)
AliasPath = Annotated[str, Path(min_length=1, max_length=63)]


def _alias_etag(version: str) -> str:
    return f'"{version}"'


@router.get("", response_model=schemas.AliasList, summary="List aliases")
async def list_aliases(
    request: Request,
    kind: KindDep,
    namespace: NamespacePath,
    name: NamePath,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    rows = await aliases.list_aliases(store, actor, kind, namespace, name)
    return json_model(request, schemas.AliasList(items=[render.alias_out(r) for r in rows]))


@router.get("/{alias}", response_model=schemas.AliasOut, summary="Get an alias")
async def get_alias(
    request: Request,
    kind: KindDep,
    namespace: NamespacePath,
    name: NamePath,
    alias: AliasPath,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    row = await aliases.get_alias(store, actor, kind, namespace, name, alias)
    return json_model(request, render.alias_out(row), etag=_alias_etag(row.version))


@router.put(
    "/{alias}",
    response_model=schemas.AliasOut,
    summary="Point an alias at a version (If-Match: the version it points at now)",
)
async def set_alias(
    request: Request,
    kind: KindDep,
    namespace: NamespacePath,
    name: NamePath,
    alias: AliasPath,
    body: schemas.AliasIn,
    store: StoreDep,
    actor: ActorDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    expected = if_match.strip().removeprefix("W/").strip('"') if if_match else None
    row = await aliases.set_alias(store, actor, kind, namespace, name, alias, body.version, if_match=expected)
    return json_model(request, render.alias_out(row), etag=_alias_etag(row.version))


@router.delete("/{alias}", status_code=204, summary="Remove an alias")
async def delete_alias(
    kind: KindDep,
    namespace: NamespacePath,
    name: NamePath,
    alias: AliasPath,
    store: StoreDep,
    actor: ActorDep,
    if_match: Annotated[str | None, Header(description="the version it points at now; 412 if not")] = None,
) -> Response:
    expected = if_match.strip().removeprefix("W/").strip('"') if if_match else None
    await aliases.delete_alias(store, actor, kind, namespace, name, alias, if_match=expected)
    return Response(status_code=204)
