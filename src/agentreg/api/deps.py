"""Request dependencies as Annotated aliases (async: FastAPI runs sync ones in a thread pool)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from agentreg.api.auth import client_address
from agentreg.domain.errors import NotFound
from agentreg.domain.kinds import Kind, kind_from_plural
from agentreg.domain.principals import Principal
from agentreg.services.views import VersionAddress
from agentreg.store.interface import Store


async def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


async def _actor(request: Request) -> Principal:
    """The caller, authenticated once per request (the idempotency layer may have done it already)."""
    state = request.scope.setdefault("state", {})
    principal: Principal | None = state.get("principal")
    if principal is None:
        principal = await request.app.state.authenticator.authenticate(
            request.headers.get("authorization"), client_address(request.scope)
        )
        state["principal"] = principal
    return principal


async def _kind(plural: Annotated[str, Path(description="agents, mcp-servers, skills or models")]) -> Kind:
    kind = kind_from_plural(plural)
    if kind is None:
        raise NotFound(f"no such collection /v1/{plural}; use agents, mcp-servers, skills or models")
    return kind


StoreDep = Annotated[Store, Depends(_store)]
ActorDep = Annotated[Principal, Depends(_actor)]
KindDep = Annotated[Kind, Depends(_kind)]
# No length or pattern checks here: a name that cannot exist is simply not found, as in the fast lane.
NamespacePath = Annotated[str, Path(min_length=1)]
NamePath = Annotated[str, Path(min_length=1)]
SelectorPath = Annotated[
    str, Path(min_length=1, max_length=255, description="version, 'latest', alias or range")
]


async def _version_address(
    kind: KindDep,
    namespace: Annotated[str, Path(min_length=1)],
    name: Annotated[str, Path(min_length=1)],
    version: Annotated[str, Path(min_length=1, max_length=255, description="an exact version")],
) -> VersionAddress:
    return VersionAddress(kind, namespace, name, version)


# /v1/{plural}/{namespace}/{name}/versions/{version}/…: the one version a route acts on.
VersionDep = Annotated[VersionAddress, Depends(_version_address)]
