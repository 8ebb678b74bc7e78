"""/v1/sources: discovery sources (configured by API or by the AGENTREG_SOURCES file), their status, syncs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from agentreg.api import schemas_discovery as sd
from agentreg.api.bodies import one_document
from agentreg.api.deps import ActorDep, StoreDep
from agentreg.api.responses import ERROR_RESPONSES, json_model
from agentreg.services import inventory
from agentreg.services.inventory import SourceView

router = APIRouter(prefix="/v1/sources", tags=["discovery"], responses=ERROR_RESPONSES)
# No pattern here: a name that cannot exist is simply not found (a body's name is validated with the rest).
SourceName = Annotated[str, Path(min_length=1, max_length=63)]
_SOURCE_BODY = {
    "requestBody": {
        "required": True,
        "description": "One source, in the shape of an entry of the AGENTREG_SOURCES file",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "object"}},
        },
    }
}


def _files_root(request: Request) -> str | None:
    root = request.app.state.settings.sources_root
    return str(root) if root is not None else None


def _wake(request: Request) -> None:
    """The discovery leader in this process looks at the change now (another replica's within seconds)."""
    runner = getattr(request.app.state, "discovery", None)
    if runner is not None:
        runner.wake()


def _out(view: SourceView) -> sd.SourceOut:
    return sd.SourceOut.model_validate(view.to_json())


@router.get("", response_model=sd.SourceList, summary="Sources: state, last sync, object counts, errors")
async def list_sources(request: Request, store: StoreDep, actor: ActorDep) -> Response:
    views = await inventory.list_sources(store, actor)
    return json_model(request, sd.SourceList(items=[_out(v) for v in views]))


@router.post(
    "",
    status_code=201,
    response_model=sd.SourceOut,
    openapi_extra=_SOURCE_BODY,
    summary="Create a source (409 if the name is taken)",
)
async def create_source(request: Request, store: StoreDep, actor: ActorDep) -> Response:
    view, _ = await inventory.put_source(
        store, actor, await one_document(request), create_only=True, files_root=_files_root(request)
    )
    _wake(request)
    return json_model(request, _out(view), status=201)


@router.get("/{name}", response_model=sd.SourceOut, summary="A source and its status")
async def get_source(request: Request, name: SourceName, store: StoreDep, actor: ActorDep) -> Response:
    return json_model(request, _out(await inventory.get_source(store, actor, name)))


@router.put(
    "/{name}",
    response_model=sd.SourceOut,
    openapi_extra=_SOURCE_BODY,
    summary="Create (201) or replace (200) an API-managed source",
)
async def put_source(request: Request, name: SourceName, store: StoreDep, actor: ActorDep) -> Response:
    view, created = await inventory.put_source(
        store, actor, await one_document(request), name, files_root=_files_root(request)
    )
    _wake(request)
    return json_model(request, _out(view), status=201 if created else 200)


@router.delete("/{name}", status_code=204, summary="Remove an API-managed source and the rows it owns")
async def delete_source(request: Request, name: SourceName, store: StoreDep, actor: ActorDep) -> Response:
    await inventory.delete_source(store, actor, name)
    _wake(request)
    return Response(status_code=204)


@router.post(
    "/{name}/sync",
    status_code=202,
    response_model=sd.SourceOut,
    summary="Ask the discovery leader to re-list the source now",
)
async def sync_source(request: Request, name: SourceName, store: StoreDep, actor: ActorDep) -> Response:
    view = await inventory.request_sync(store, actor, name)
    _wake(request)
    return json_model(request, _out(view), status=202)
