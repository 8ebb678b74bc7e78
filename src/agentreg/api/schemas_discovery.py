"""Wire models of discovery: sources and the inventory rows (deployments) they own."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from agentreg.api.schemas import Wire

Health = Literal["passing", "warning", "critical", "unknown"]


class SourceError(Wire):
    message: str
    at: datetime | None = None


class SourceOut(Wire):
    name: str
    type: str = Field(description="kubernetes | manifests")
    tenant: str
    managedBy: Literal["api", "file"] = Field(description="file: only the AGENTREG_SOURCES file changes it")
    config: dict[str, Any] = Field(description="the configuration as given (the AGENTREG_SOURCES shape)")
    state: str = Field(description="pending | syncing | ready | degraded | failed | standby")
    lastSyncAt: datetime | None = None
    error: SourceError | None = Field(default=None, description="the last failure; its last good data stays")
    counts: dict[str, int] = Field(
        description="rows by link state and health (health.passing, ...), total, orphaned, and the runner's"
    )
    details: dict[str, Any] = Field(description="what the runner reports, e.g. kinds not installed")


class SourceList(Wire):
    items: list[SourceOut]


class RuntimeObject(Wire):
    apiVersion: str
    kind: str
    namespace: str
    name: str
    uid: str


class LinkOut(Wire):
    state: Literal["linked", "drift", "unregistered", "none"]
    ref: str | None = Field(default=None, description="kind/namespace/name@version it runs, when known")
    via: str | None = Field(default=None, description="annotation | claim")
    reason: str = ""


class OverlayOut(Wire):
    labels: dict[str, str]
    annotations: dict[str, str]


class DeploymentOut(Wire):
    """An inventory row: read-only but for its overlay."""

    id: int
    source: str
    cluster: str
    environment: str | None = None
    object: RuntimeObject
    kind: str | None = Field(default=None, description="the catalog kind, when it is one of ours")
    title: str
    health: Health
    healthReason: str = ""
    link: LinkOut
    drift: bool
    unregistered: bool
    orphaned: bool
    orphanedAt: datetime | None = None
    firstSeenAt: datetime
    observedAt: datetime
    labels: dict[str, str] = Field(description="observed, with the overlay laid over them")
    annotations: dict[str, str] = Field(description="observed, with the overlay laid over them")
    overlay: OverlayOut
    spec: dict[str, Any]
    status: dict[str, Any]
    endpoint: str | None = None
    card: dict[str, Any] | None = Field(default=None, description="the A2A card as last fetched")
    conditions: list[dict[str, Any]] = Field(description="CardSynced, SignatureVerified, IdentityBound")
    identity: dict[str, Any] | None = None
    tools: dict[str, Any] | None = Field(default=None, description="introspected MCP tools")


class DeploymentPage(Wire):
    items: list[DeploymentOut]
    nextCursor: str | None = None


class DeploymentList(Wire):
    items: list[DeploymentOut]


class DeploymentPatch(Wire):
    """JSON Merge Patch of the overlay: a ``null`` value removes a key."""

    model_config = ConfigDict(extra="forbid")
    labels: dict[str, str | None] | None = None
    annotations: dict[str, str | None] | None = None
