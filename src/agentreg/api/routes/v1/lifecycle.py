"""Lifecycle moves on a version (promote, deprecate, retire, block ...), readiness, approvals, the resource
kill switch, and the governance check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from agentreg.api import render
from agentreg.api import schemas_lifecycle as sl
from agentreg.api.bodies import strict_json
from agentreg.api.deps import ActorDep, KindDep, NamePath, NamespacePath, StoreDep, VersionDep
from agentreg.api.fastlane import version_etag
from agentreg.api.responses import ERROR_RESPONSES, json_model, version_response
from agentreg.api.schemas import ResourceOut, VersionOut
from agentreg.domain.kinds import Kind
from agentreg.domain.principals import Principal
from agentreg.services import lifecycle, selection
from agentreg.store.evidence import ApprovalRow
from agentreg.store.interface import Store

router = APIRouter(prefix="/v1", tags=["lifecycle"], responses=ERROR_RESPONSES)
VERSION = "/{plural}/{namespace}/{name}/versions/{version}"


def _approval(row: ApprovalRow) -> sl.ApprovalOut:
    return sl.ApprovalOut(
        target=row.target,  # type: ignore[arg-type]
        approver=row.approver,
        roles=list(row.roles),
        comment=row.comment,
        createdAt=row.created_at,
    )


@router.get(f"{VERSION}/readiness", response_model=sl.ReadinessOut, summary="Every gate of the next tier")
async def readiness(
    request: Request,
    at: VersionDep,
    store: StoreDep,
    actor: ActorDep,
    to: Annotated[str | None, Query(description="experimental or certified (default: the next tier)")] = None,
) -> Response:
    report = await lifecycle.get_readiness(store, actor, at, to)
    return json_model(request, sl.ReadinessOut.model_validate(lifecycle.report_json(report)))


@router.post(
    f"{VERSION}/promote",
    response_model=sl.PromoteOut,
    summary="Promote one tier (409 gates_not_passed with error.report when a gate fails)",
)
async def promote(request: Request, at: VersionDep, store: StoreDep, actor: ActorDep) -> Response:
    body = await strict_json(request, sl.PromoteIn)
    view, report = await lifecycle.promote(
        store, actor, at, to=body.to, reason=body.reason, fast_track=body.fastTrack
    )
    out = render.version_out(view)
    report_out = sl.ReadinessOut.model_validate(lifecycle.report_json(report))
    promoted = sl.PromoteOut(document=out.document, status=out.status, report=report_out)
    return json_model(request, promoted, etag=version_etag(view))


@router.post(
    f"{VERSION}/deprecate", response_model=VersionOut, summary="Deprecate, naming a successor and a sunset"
)
async def deprecate(request: Request, at: VersionDep, store: StoreDep, actor: ActorDep) -> Response:
    body = await strict_json(request, sl.DeprecateIn)
    view = await lifecycle.deprecate(
        store, actor, at, reason=body.reason, successor=body.successor, sunset=body.sunset
    )
    return version_response(request, view)


@router.post(
    f"{VERSION}/undeprecate",
    response_model=VersionOut,
    summary="Return a deprecated version to the state it left",
)
async def undeprecate(request: Request, at: VersionDep, store: StoreDep, actor: ActorDep) -> Response:
    body = await strict_json(request, sl.ReasonIn)
    return version_response(request, await lifecycle.undeprecate(store, actor, at, reason=body.reason))


@router.post(f"{VERSION}/retire", response_model=VersionOut, summary="Retire (final)")
async def retire(request: Request, at: VersionDep, store: StoreDep, actor: ActorDep) -> Response:
    body = await strict_json(request, sl.ReasonIn)
    return version_response(request, await lifecycle.retire(store, actor, at, reason=body.reason))


@router.post(f"{VERSION}/block", response_model=VersionOut, summary="Block a version at once (kill switch)")
async def block_version(request: Request, at: VersionDep, store: StoreDep, actor: ActorDep) -> Response:
    body = await strict_json(request, sl.ReasonIn)
    return version_response(
        request, await lifecycle.block_version(store, actor, at, reason=body.reason, blocked=True)
    )


@router.post(
    f"{VERSION}/unblock", response_model=VersionOut, summary="Unblock a version (explicit, with a reason)"
)
async def unblock_version(request: Request, at: VersionDep, store: StoreDep, actor: ActorDep) -> Response:
    body = await strict_json(request, sl.ReasonIn)
    return version_response(
        request, await lifecycle.block_version(store, actor, at, reason=body.reason, blocked=False)
    )


async def _block_resource(
    request: Request, kind: Kind, namespace: str, name: str, store: Store, actor: Principal, blocked: bool
) -> Response:
    body = await strict_json(request, sl.ReasonIn)
    view = await lifecycle.block_resource(
        store, actor, kind, namespace, name, reason=body.reason, blocked=blocked
    )
    return json_model(request, render.resource_out(view), etag=view.etag)


@router.post(
    "/{plural}/{namespace}/{name}/block",
    response_model=ResourceOut,
    summary="Block every version of a resource at once",
)
async def block_resource(
    request: Request,
    kind: KindDep,
    namespace: NamespacePath,
    name: NamePath,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    return await _block_resource(request, kind, namespace, name, store, actor, True)


@router.post(
    "/{plural}/{namespace}/{name}/unblock",
    response_model=ResourceOut,
    summary="Unblock a resource (explicit, with a reason)",
)
async def unblock_resource(
    request: Request,
    kind: KindDep,
    namespace: NamespacePath,
    name: NamePath,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    return await _block_resource(request, kind, namespace, name, store, actor, False)


@router.post(
    f"{VERSION}/approvals",
    status_code=201,
    response_model=sl.ApprovalOut,
    summary="Approve for a tier (never one's own)",
)
async def approve(request: Request, at: VersionDep, store: StoreDep, actor: ActorDep) -> Response:
    body = await strict_json(request, sl.ApproveIn)
    row = await lifecycle.approve(store, actor, at, to=body.to, comment=body.comment, approver=body.approver)
    return json_model(request, _approval(row), status=201)


@router.get(f"{VERSION}/approvals", response_model=sl.ApprovalList, summary="Approvals of a version")
async def list_approvals(request: Request, at: VersionDep, store: StoreDep, actor: ActorDep) -> Response:
    rows = await lifecycle.list_approvals(store, actor, at)
    return json_model(request, sl.ApprovalList(items=[_approval(r) for r in rows]))


@router.post(
    "/governance/check",
    response_model=sl.CheckOut,
    tags=["governance"],
    summary="May this ref run in this environment? The version it resolves to and every rule's result",
)
async def governance_check(request: Request, store: StoreDep, actor: ActorDep) -> Response:
    body = await strict_json(request, sl.CheckIn)
    result = await selection.check(store, actor, body.ref, body.environment)
    out = sl.CheckOut(
        allowed=result.allowed,
        ref=result.ref,
        environment=result.environment,
        resolvedVersion=result.version.version if result.version else None,
        state=result.version.state if result.version else None,  # type: ignore[arg-type]
        rules=[sl.RuleOut.model_validate(r) for r in result.decision["rules"]],
        exemptions=[sl.ExemptionUsed.model_validate(e) for e in result.decision.get("exemptions", [])],
    )
    return json_model(request, out)
