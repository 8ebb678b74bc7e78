"""/v1/{plural}/{namespace}/{name}/versions/{version}/compatibility and /redact."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from agentreg.api import render, schemas
from agentreg.api.bodies import strict_json
from agentreg.api.deps import ActorDep, KindDep, NamePath, NamespacePath, StoreDep
from agentreg.api.responses import ERROR_RESPONSES, json_model
from agentreg.api.schemas_compat import CompatOut, RedactIn
from agentreg.services import compat, redaction

router = APIRouter(
    prefix="/v1/{plural}/{namespace}/{name}/versions/{version}", tags=["lifecycle"], responses=ERROR_RESPONSES
)
VersionPath = Annotated[str, Path(min_length=1, max_length=255, description="an exact version")]


def _compat_out(report: compat.CompatReport) -> CompatOut:
    return CompatOut(
        version=report.version,
        against=report.against,
        compatible=report.compatible,
        requiredBump=report.bump,
        versionBump=report.version_bump,
        needsMajor=report.needs_major,
        breaking=render.issues(report.breaking),
    )


@router.get(
    "/compatibility",
    response_model=CompatOut,
    summary="What breaks from an earlier version (default: the previous one of the same major)",
)
async def get_compatibility(
    request: Request,
    kind: KindDep,
    namespace: NamespacePath,
    name: NamePath,
    version: VersionPath,
    store: StoreDep,
    actor: ActorDep,
    against: Annotated[
        str | None, Query(min_length=1, max_length=255, description="the exact version to compare with")
    ] = None,
) -> Response:
    report = await compat.compatibility(store, actor, kind, namespace, name, version, against)
    return json_model(request, _compat_out(report))


@router.post(
    "/redact",
    response_model=schemas.VersionOut,
    summary="Replace a version's spec with a tombstone (super admin); digest, status and audit trail stay",
)
async def redact_version(
    request: Request,
    kind: KindDep,
    namespace: NamespacePath,
    name: NamePath,
    version: VersionPath,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    body = await strict_json(request, RedactIn)
    view = await redaction.redact(store, actor, kind, namespace, name, version, body.reason)
    return json_model(request, render.version_out(view))
