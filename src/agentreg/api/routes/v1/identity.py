"""/v1/tenants, /v1/namespaces, /v1/keys and /v1/whoami: who may do what, and where."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from agentreg.api import schemas
from agentreg.api.bodies import strict_json
from agentreg.api.deps import ActorDep, StoreDep
from agentreg.api.responses import ERROR_RESPONSES, json_model
from agentreg.services import identity, tenancy
from agentreg.services.identity import scope_json
from agentreg.store.interface import ApiKeyRow, NamespaceRow, TenantRow

router = APIRouter(prefix="/v1", tags=["identity"], responses=ERROR_RESPONSES)


def _tenant_out(row: TenantRow) -> schemas.TenantOut:
    return schemas.TenantOut(id=row.id, displayName=row.display_name, createdAt=row.created_at)


def _namespace_out(row: NamespaceRow) -> schemas.NamespaceOut:
    return schemas.NamespaceOut(
        name=row.name,
        tenant=row.tenant_id,
        createdAt=row.created_at,
        public=row.public,
        sharedWith=[g for g in row.grantees if g != "*"],
    )


def _key_fields(row: ApiKeyRow) -> dict[str, object]:
    return {
        "id": row.id,
        "name": row.name,
        "tenant": row.tenant_id,
        "roles": list(row.roles),
        "scope": row.scope,
        "createdAt": row.created_at,
        "createdBy": row.created_by,
        "expiresAt": row.expires_at,
        "lastUsedAt": row.last_used_at,
        "revokedAt": row.revoked_at,
    }


@router.post(
    "/tenants", status_code=201, response_model=schemas.TenantOut, summary="Create a tenant (super admin)"
)
async def create_tenant(request: Request, store: StoreDep, actor: ActorDep) -> Response:
    body = await strict_json(request, schemas.TenantIn)
    row = await tenancy.create_tenant(store, actor, body.id, body.displayName)
    return json_model(request, _tenant_out(row), status=201)


@router.get(
    "/tenants", response_model=schemas.TenantList, summary="Tenants you belong to (all, for a super admin)"
)
async def list_tenants(request: Request, store: StoreDep, actor: ActorDep) -> Response:
    rows = await tenancy.list_tenants(store, actor)
    return json_model(request, schemas.TenantList(items=[_tenant_out(r) for r in rows]))


@router.post(
    "/namespaces",
    status_code=201,
    response_model=schemas.NamespaceOut,
    summary="Claim an unclaimed namespace (200 if your tenant holds it already, 409 if another does)",
)
async def claim_namespace(request: Request, store: StoreDep, actor: ActorDep) -> Response:
    body = await strict_json(request, schemas.NamespaceIn)
    claim = await tenancy.claim_namespace(store, actor, body.name, body.tenant)
    return json_model(request, _namespace_out(claim.namespace), status=201 if claim.created else 200)


@router.get("/namespaces", response_model=schemas.NamespaceList, summary="Namespaces you can read")
async def list_namespaces(request: Request, store: StoreDep, actor: ActorDep) -> Response:
    rows = await tenancy.list_namespaces(store, actor)
    return json_model(request, schemas.NamespaceList(items=[_namespace_out(r) for r in rows]))


@router.get(
    "/namespaces/{name}", response_model=schemas.NamespaceOut, summary="One namespace and its sharing"
)
async def get_namespace(request: Request, name: str, store: StoreDep, actor: ActorDep) -> Response:
    row = await tenancy.get_namespace(store, actor, name)
    etag = tenancy.sharing_etag(row) if row.tenant_id in actor.memberships or actor.super_admin else None
    return json_model(request, _namespace_out(row), etag=etag)


@router.put(
    "/namespaces/{name}/sharing",
    response_model=schemas.NamespaceOut,
    summary="Replace who may read a namespace: public, and/or named tenants",
)
async def share_namespace(
    request: Request,
    name: str,
    store: StoreDep,
    actor: ActorDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    body = await strict_json(request, schemas.SharingIn)
    row = await tenancy.share_namespace(
        store, actor, name, public=body.public, tenants=body.tenants, if_match=if_match
    )
    return json_model(request, _namespace_out(row), etag=tenancy.sharing_etag(row))


@router.post(
    "/keys",
    status_code=201,
    response_model=schemas.CreatedKeyOut,
    summary="Create an API key for a service account (the secret is shown once)",
)
async def create_key(request: Request, store: StoreDep, actor: ActorDep) -> Response:
    body = await strict_json(request, schemas.KeyIn)
    created = await identity.create_key(
        store,
        actor,
        name=body.name,
        tenant=body.tenant,
        roles=body.roles,
        scope=body.scope.model_dump(exclude_none=True) if body.scope is not None else None,
        expires_at=body.expiresAt,
    )
    out = schemas.CreatedKeyOut(**_key_fields(created.row), key=created.secret)  # type: ignore[arg-type]
    response = json_model(request, out, status=201)
    response.headers["cache-control"] = "no-store"
    return response


@router.get("/keys", response_model=schemas.KeyList, summary="A tenant's API keys (never their secrets)")
async def list_keys(
    request: Request, store: StoreDep, actor: ActorDep, tenant: Annotated[str | None, Query()] = None
) -> Response:
    rows = await identity.list_keys(store, actor, tenant)
    return json_model(request, schemas.KeyList(items=[schemas.KeyOut(**_key_fields(r)) for r in rows]))  # type: ignore[arg-type]


@router.delete("/keys/{key_id}", response_model=schemas.KeyOut, summary="Revoke an API key")
async def revoke_key(request: Request, key_id: str, store: StoreDep, actor: ActorDep) -> Response:
    row = await identity.revoke_key(store, actor, key_id)
    request.app.state.authenticator.keys.forget()
    return json_model(request, schemas.KeyOut(**_key_fields(row)))  # type: ignore[arg-type]


@router.get("/whoami", response_model=schemas.WhoAmI, summary="The principal this request acts as")
async def whoami(request: Request, actor: ActorDep) -> Response:
    out = schemas.WhoAmI(
        subject=actor.subject,
        kind=actor.kind.value,
        displayName=actor.display_name,
        superAdmin=actor.super_admin,
        tenants={t: sorted(r.value for r in actor.roles_in(t)) for t in actor.tenants},
        scope=scope_json(actor.scope),
        expiresAt=actor.expires_at,
        authentication=request.app.state.settings.auth,
    )
    return json_model(request, out)


@router.get(
    "/auth/config", response_model=schemas.AuthConfig, summary="How to sign in (no credentials needed)"
)
async def auth_config(request: Request) -> Response:
    settings = request.app.state.settings
    out = schemas.AuthConfig(
        authentication=settings.auth,
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        clientId=settings.oidc_client_id,
    )
    return json_model(request, out)
