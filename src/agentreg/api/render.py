"""Service results → wire models (shared by the FastAPI routes and the fast lane)."""

from __future__ import annotations

from agentreg.api import schemas as s
from agentreg.api.errors import status_and_code
from agentreg.domain.errors import AgentRegError, FieldIssue
from agentreg.services.publish import ApplyResult
from agentreg.services.resolve import RefResolution
from agentreg.services.views import Dependency, PublishOutcome, ResolvedView, ResourceView, VersionView
from agentreg.store.interface import AliasRow, VersionRow


def issues(items: tuple[FieldIssue, ...] | list[FieldIssue]) -> list[s.Issue]:
    return [s.Issue(field=i.field, issue=i.issue) for i in items]


def status(version: VersionRow) -> s.VersionStatus:
    return s.VersionStatus(
        digest=version.digest,
        publishedAt=version.published_at,
        publishedBy=version.published_by,
        origin=version.origin,
        warnings=issues(version.warnings),
    )


def version_summary(version: VersionRow) -> s.VersionSummary:
    return s.VersionSummary(version=version.version, title=version.title, status=status(version))


def version_out(view: VersionView) -> s.VersionOut:
    return s.VersionOut(document=view.document, status=status(view.version))


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
        latest=version_summary(view.latest) if view.latest else None,
        versionCount=view.version_count,
        aliases={a.alias: a.version for a in view.aliases},
        createdAt=r.created_at,
        updatedAt=r.updated_at,
    )


def publish_out(outcome: PublishOutcome) -> s.PublishOut:
    return s.PublishOut(
        result="created" if outcome.result == "created" else "unchanged",
        document=outcome.view.document,
        status=status(outcome.view.version),
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
        status=status(dep.view.version),
        dependencies=[_dependency(d) for d in dep.dependencies],
    )


def resolved_out(view: ResolvedView) -> s.ResolvedOut:
    return s.ResolvedOut(
        document=view.root.document,
        status=status(view.root.version),
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
        status=status(item.view.version),
    )
