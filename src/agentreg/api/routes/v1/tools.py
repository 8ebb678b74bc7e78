"""/v1/mcp-servers/{namespace}/{name}/versions/{version}/introspect and /tools: an MCP server's tools."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import Field

from agentreg.api.deps import ActorDep, NamePath, NamespacePath, StoreDep
from agentreg.api.responses import ERROR_RESPONSES, json_model
from agentreg.api.schemas import Wire
from agentreg.domain.kinds import Kind
from agentreg.services import introspect
from agentreg.services.views import VersionAddress
from agentreg.store.inventory import ToolsRow

router = APIRouter(
    prefix="/v1/mcp-servers/{namespace}/{name}/versions/{version}", tags=["tools"], responses=ERROR_RESPONSES
)
VersionPath = Annotated[str, Path(min_length=1, max_length=255, description="an exact version")]


class ToolOut(Wire):
    name: str
    description: str
    inputSchema: dict[str, Any] = Field(
        description="the tool's input JSON Schema; {'x-agentreg-omitted': <bytes>} when it was too large to keep"
    )


class ToolsOut(Wire):
    endpoint: str = Field(description="the remote the tools were listed from")
    tools: list[ToolOut] = Field(description="the tools last listed successfully")
    digest: str = Field(description="sha256 of the canonical JSON of tools")
    introspectedAt: datetime = Field(description="when the server was last asked")
    error: str | None = Field(description="why the last attempt failed (the tools are then the earlier ones)")


def _tools_out(row: ToolsRow) -> ToolsOut:
    return ToolsOut(
        endpoint=row.endpoint,
        tools=[ToolOut(**tool) for tool in row.tools],
        digest=row.digest,
        introspectedAt=row.introspected_at,
        error=row.error,
    )


@router.post(
    "/introspect",
    response_model=ToolsOut,
    summary="List the version's tools from its streamable-http remote and record them",
    description=(
        "Asks the server named in the version's server.json `remotes` (type `streamable-http`) for its tools, "
        "through the SSRF-hardened fetcher (10 s, 1 MiB per response, at most 500 tools). A failed attempt is "
        "recorded too: `error` says why, and the tools listed before are kept."
    ),
)
async def introspect_version(
    request: Request,
    namespace: NamespacePath,
    name: NamePath,
    version: VersionPath,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    at = VersionAddress(Kind.MCP_SERVER, namespace, name, version)
    row = await introspect.introspect_version(store, actor, at)
    return json_model(request, _tools_out(row))


@router.get("/tools", response_model=ToolsOut, summary="The tools last introspected from the version")
async def get_tools(
    request: Request,
    namespace: NamespacePath,
    name: NamePath,
    version: VersionPath,
    store: StoreDep,
    actor: ActorDep,
) -> Response:
    at = VersionAddress(Kind.MCP_SERVER, namespace, name, version)
    row = await introspect.get_tools(store, actor, at)
    return json_model(request, _tools_out(row))
