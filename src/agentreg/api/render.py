"""Service results → wire models (shared by the FastAPI routes and the fast lane)."""

from __future__ import annotations

from email.utils import format_datetime

from agentreg.api import schemas as s
from agentreg.api.errors import status_and_code
from agentreg.domain.errors import AgentRegError, FieldIssue
from agentreg.services.publish import ApplyResult
from agentreg.services.resolve import RefResolution
from agentreg.services.selection import successor_path
from agentreg.services.views import Dependency, PublishOutcome, ResolvedView, ResourceView, VersionView
from agentreg.store.interface import AliasRow, Mark, ResourceRow, VersionRow


def issues(items: tuple[FieldIssue, ...] | list[FieldIssue]) -> list[s.Issue]:
    return [s.Issue(field=i.field, issue=i.issue) for i in items]


def mark(value: Mark | None) -> s.MarkOut | None:
    return s.MarkOut(reason=value.reason, at=value.at, by=value.by) if value is not None else None


def status(version: VersionRow, resource: ResourceRow | None = None) -> s.VersionStatus:
    """A version's status; a blocked resource blocks each of its versions."""
    block = version.blocked or (resource.blocked if resource is not None else None)
    deprecation = None
    if version.state == "deprecated":
        deprecation = s.DeprecationOut(
            since=version.state_changed_at, successor=version.successor, sunset=version.sunset
        )
    return s.VersionStatus(
        digest=version.digest,
        publishedAt=version.published_at,
        publishedBy=version.published_by,
        origin=version.origin,
        warnings=issues(version.warnings),
        state=version.state,  # type: ignore[arg-type]
        stateChangedAt=version.state_changed_at,
        blocked=block is not None,
        block=mark(block),
        deprecation=deprecation,
        redacted=mark(version.redacted),
    )


def version_summary(version: VersionRow, resource: ResourceRow | None = None) -> s.VersionSummary:
    return s.VersionSummary(version=version.version, title=version.title, status=status(version, resource))


def version_out(view: VersionView) -> s.VersionOut:
    return s.VersionOut(document=view.document, status=status(view.version, view.resource))


def version_headers(view: VersionView) -> list[tuple[str, str]]:
    """Deprecation (RFC 9745), Sunset (RFC 8594) and the successor link for a deprecated version."""
    version = view.version
    if version.state != "deprecated":
        return []
    since = version.state_changed_at or version.published_at
    headers = [("deprecation", f"@{int(since.timestamp())}")]
    if version.sunset is not None:
        headers.append(("sunset", format_datetime(version.sunset, usegmt=True)))
    successor = successor_path(view.resource, version.successor)
    if successor is not None:
        headers.append(("link", f'<{successor}>; rel="successor-version"'))
    return headers


def resource_out(view: ResourceView) -> s.ResourceOut:
    r = view.resource
    return s.ResourceOut(
        kind=r.kind,
        namespace=r.namespace,
        name=r.name,
        title=r.title,
        description=r.description,
        labels=r.labels,
        annotations=r.annotations,
        latest=version_summary(view.latest, r) if view.latest else None,
        versionCount=view.version_count,
        aliases={a.alias: a.version for a in view.aliases},
        blocked=mark(r.blocked),
        createdAt=r.created_at,
        updatedAt=r.updated_at,
    )


def publish_out(outcome: PublishOutcome) -> s.PublishOut:
    return s.PublishOut(
        result="created" if outcome.result == "created" else "unchanged",
        document=outcome.view.document,
        status=status(outcome.view.version, outcome.view.resource),
        warnings=issues(outcome.warnings),
    )


def error_info(error: AgentRegError, request_id: str | None) -> s.ErrorInfo:
    _, code = status_and_code(error)
    return s.ErrorInfo(code=code, message=error.message, details=issues(error.details), request_id=request_id)


def apply_item(result: ApplyResult, request_id: str | None) -> s.ApplyItemOut:
    return s.ApplyItemOut(
        index=result.index,
        kind=result.kind,
        name=result.name,
        version=result.version,
        result=result.result,  # type: ignore[arg-type]
        digest=result.digest,
        warnings=issues(result.warnings),
        error=error_info(result.error, request_id) if result.error else None,
    )


def alias_out(row: AliasRow) -> s.AliasOut:
    return s.AliasOut(
        alias=row.alias, version=row.version, updatedAt=row.updated_at, updatedBy=row.updated_by
    )


def _dependency(dep: Dependency) -> s.DependencyOut:
    r = dep.view.resource
    return s.DependencyOut(
        field=dep.field,
        ref=dep.ref,
        kind=r.kind,
        namespace=r.namespace,
        name=r.name,
        version=dep.view.version.version,
        document=dep.view.document,
        status=status(dep.view.version, dep.view.resource),
        dependencies=[_dependency(d) for d in dep.dependencies],
    )


def resolved_out(view: ResolvedView) -> s.ResolvedOut:
    return s.ResolvedOut(
        document=view.root.document,
        status=status(view.root.version, view.root.resource),
        dependencies=[_dependency(d) for d in view.dependencies],
    )


def resolve_item(item: RefResolution, request_id: str | None) -> s.ResolveItemOut:
    if item.view is None:
        assert item.error is not None
        return s.ResolveItemOut(ref=item.ref, error=error_info(item.error, request_id))
    r = item.view.resource
    return s.ResolveItemOut(
        ref=item.ref,
        kind=r.kind,
        namespace=r.namespace,
        name=r.name,
        version=item.view.version.version,
        document=item.view.document,
        status=status(item.view.version, item.view.resource),
    )
