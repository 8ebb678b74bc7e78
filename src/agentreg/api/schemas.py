"""Wire models of the /v1 API. Pydantic only (no FastAPI, no storage): the SDK imports them too."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")


class Issue(Wire):
    field: str = Field(description="RFC 6901 JSON pointer to the field at fault")
    issue: str


class ErrorInfo(Wire):
    code: str
    message: str
    details: list[Issue] = []
    request_id: str | None = None


class ErrorOut(Wire):
    error: ErrorInfo


class MarkOut(Wire):
    reason: str
    at: datetime
    by: str


class DeprecationOut(Wire):
    since: datetime | None = None
    successor: str | None = Field(default=None, description="a version of this resource, or a full ref")
    sunset: datetime | None = None


class VersionStatus(Wire):
    digest: str = Field(
        description="sha256 over the canonical JSON (RFC 8785) of apiVersion, kind, identity, spec"
    )
    publishedAt: datetime
    publishedBy: str
    origin: str
    warnings: list[Issue] = []
    state: Literal["draft", "experimental", "certified", "deprecated", "retired"] = "draft"
    stateChangedAt: datetime | None = None
    blocked: bool = False
    block: MarkOut | None = Field(default=None, description="who blocked it (or its resource), when and why")
    deprecation: DeprecationOut | None = None
    redacted: MarkOut | None = None


class VersionOut(Wire):
    document: dict[str, Any]
    status: VersionStatus


class VersionSummary(Wire):
    version: str
    title: str = ""
    status: VersionStatus


class VersionList(Wire):
    kind: str
    namespace: str
    name: str
    items: list[VersionSummary]


class ResourceOut(Wire):
    kind: str
    namespace: str
    name: str
    title: str
    description: str
    labels: dict[str, str]
    annotations: dict[str, str]
    latest: VersionSummary | None
    versionCount: int
    aliases: dict[str, str] = {}
    blocked: MarkOut | None = None
    createdAt: datetime
    updatedAt: datetime


class ResourcePage(Wire):
    items: list[ResourceOut]
    nextCursor: str | None = None


class ResourcePatch(Wire):
    """JSON Merge Patch of labels and annotations (null removes a key)."""

    model_config = ConfigDict(extra="forbid")
    labels: dict[str, str | None] | None = None
    annotations: dict[str, str | None] | None = None


class PublishOut(Wire):
    result: Literal["created", "unchanged"]
    document: dict[str, Any]
    status: VersionStatus
    warnings: list[Issue] = []


class ApplyItemOut(Wire):
    index: int
    kind: str | None = None
    name: str | None = None
    version: str | None = None
    result: Literal["created", "unchanged", "failed", "valid"]
    digest: str | None = None
    warnings: list[Issue] = []
    error: ErrorInfo | None = None


class ApplyOut(Wire):
    results: list[ApplyItemOut]


class AliasIn(Wire):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1, max_length=255)


class AliasOut(Wire):
    alias: str
    version: str
    updatedAt: datetime
    updatedBy: str


class AliasList(Wire):
    items: list[AliasOut]


class DependencyOut(Wire):
    field: str = Field(description="JSON pointer of the ref in the referring document")
    ref: str
    kind: str
    namespace: str
    name: str
    version: str
    document: dict[str, Any]
    status: VersionStatus
    dependencies: list[DependencyOut] = []


class ResolvedOut(Wire):
    document: dict[str, Any]
    status: VersionStatus
    dependencies: list[DependencyOut]


class ResolveIn(Wire):
    model_config = ConfigDict(extra="forbid")
    refs: list[str] = Field(min_length=1, max_length=200)


class ResolveItemOut(Wire):
    ref: str
    kind: str | None = None
    namespace: str | None = None
    name: str | None = None
    version: str | None = None
    document: dict[str, Any] | None = None
    status: VersionStatus | None = None
    error: ErrorInfo | None = None


class ResolveOut(Wire):
    results: list[ResolveItemOut]


# --- identity ---------------------------------------------------------------------------------------------


class Strict(BaseModel):
    """Request bodies: unknown fields are refused, so a typo never silently does nothing."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class TenantIn(Strict):
    id: str = Field(description="1-63 lowercase letters, digits and '-'")
    displayName: str | None = None


class TenantOut(Wire):
    id: str
    displayName: str
    createdAt: datetime


class TenantList(Wire):
    items: list[TenantOut]


class NamespaceIn(Strict):
    name: str
    tenant: str | None = Field(None, description="default: the caller's only tenant")


class NamespaceOut(Wire):
    name: str
    tenant: str
    createdAt: datetime
    public: bool
    sharedWith: list[str] = Field(description="tenants granted read besides the owner")


class NamespaceList(Wire):
    items: list[NamespaceOut]


class SharingIn(Strict):
    public: bool = False
    tenants: list[str] = Field(default_factory=list, description="tenants granted read")


class KeyScopeIO(Strict):
    namespaces: list[str] | None = None
    resources: list[str] | None = Field(None, description="kind/namespace/name")
    actions: list[str] | None = Field(None, description="permission names, see docs/security.md")


class KeyIn(Strict):
    name: str
    tenant: str | None = Field(
        None, description="default: the caller's only tenant; none for a super_admin key"
    )
    roles: list[str]
    scope: KeyScopeIO | None = None
    expiresAt: datetime | None = None


class KeyOut(Wire):
    id: str
    name: str
    tenant: str | None
    roles: list[str]
    scope: dict[str, list[str]]
    createdAt: datetime
    createdBy: str
    expiresAt: datetime | None = None
    lastUsedAt: datetime | None = None
    revokedAt: datetime | None = None


class CreatedKeyOut(KeyOut):
    key: str = Field(description="the secret, shown only in this response")


class KeyList(Wire):
    items: list[KeyOut]


class WhoAmI(Wire):
    subject: str
    kind: Literal["anonymous", "user", "service"]
    displayName: str = ""
    superAdmin: bool = False
    tenants: dict[str, list[str]] = Field(description="tenant → roles")
    scope: dict[str, list[str]] = {}
    expiresAt: datetime | None = None
    authentication: Literal["single-user", "required"]


class AuthConfig(Wire):
    """What a client needs to sign in (public: served without credentials)."""

    authentication: Literal["single-user", "required"]
    issuer: str | None = None
    audience: str | None = None
    clientId: str | None = Field(None, description="a public OIDC client for the device-code flow")


# --- audit ------------------------------------------------------------------------------------------------


class AuditEventOut(Wire):
    seq: int
    tenant: str
    at: datetime
    actor: str
    action: str
    object: str
    details: dict[str, Any]
    requestId: str | None = None
    clientIp: str | None = None
    reason: str | None = None
    before: str | None = None
    after: str | None = None
    prevHash: str
    hash: str


class AuditList(Wire):
    items: list[AuditEventOut]
    nextCursor: str | None = None


class CheckpointOut(Wire):
    tenant: str
    seq: int
    hash: str
    at: str
    keyId: str
    signature: str


class CheckpointList(Wire):
    items: list[CheckpointOut]


class AuditProblem(Wire):
    seq: int | None
    eventId: int | None
    issue: str


class AuditVerification(Wire):
    tenant: str
    ok: bool
    events: int
    headSeq: int
    headHash: str
    checkpoints: int
    unverifiableCheckpoints: int = Field(0, description="signed by a key this server does not hold; not used")
    firstBad: AuditProblem | None = None
