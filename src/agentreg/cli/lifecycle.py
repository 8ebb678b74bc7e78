"""promote, readiness, deprecate, undeprecate, retire, block, unblock, approve, approvals, compatibility,
redact: moving a version through its lifecycle (SDK only).

A version is named ``kind/namespace/name@version`` with an exact version; ``block`` and ``unblock`` also
take ``kind/namespace/name`` for the whole resource.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from agentreg.api import schemas as s
from agentreg.api.schemas_lifecycle import ReadinessOut
from agentreg.cli.context import OutputOption, options
from agentreg.cli.identity import parse_duration
from agentreg.cli.output import Format, emit_data, table, when
from agentreg.client import ConflictError
from agentreg.domain.errors import Invalid
from agentreg.domain.kinds import Kind
from agentreg.domain.names import SelectorType, parse_ref

VersionArg = Annotated[str, typer.Argument(metavar="REF", help="KIND/NAMESPACE/NAME@VERSION (exact)")]
ReasonOption = Annotated[str, typer.Option("--reason", help="why (required, at most 500 characters)")]
TargetOption = Annotated[
    str | None, typer.Option("--to", help="experimental or certified [default: the next tier]")
]


# --- refs and times ---------------------------------------------------------------------------------------


def split_ref(text: str, *, version: bool | None = True) -> tuple[Kind, str, str | None]:
    """(kind, "namespace/name", version) from ``kind/namespace/name[@version]``. ``version``: True when
    an exact version is required, False when none may be given, None when either will do."""
    try:
        ref = parse_ref(text, "REF")
    except Invalid as exc:
        raise typer.BadParameter(exc.details[0].issue if exc.details else exc.message) from None
    if ref.kind is None:
        raise typer.BadParameter(f"{text!r} must start with its kind: KIND/NAMESPACE/NAME[@VERSION]")
    given = "@" in text
    if given and ref.selector.type not in (SelectorType.EXACT, SelectorType.LITERAL):
        raise typer.BadParameter(f"{text!r} must name an exact version, not {ref.selector.text!r}")
    if version is True and not given:
        raise typer.BadParameter(f"{text!r} must name a version: KIND/NAMESPACE/NAME@VERSION")
    if version is False and given:
        raise typer.BadParameter(f"{text!r} must name a resource, without @VERSION")
    return ref.kind, ref.full_name, ref.selector.text if given else None


def version_ref(text: str) -> tuple[Kind, str, str]:
    kind, name, version = split_ref(text)
    assert version is not None
    return kind, name, version


def parse_moment(text: str, param: str) -> datetime:
    """``+30d`` (from now, any duration ``parse_duration`` reads) or an ISO 8601 date-time; UTC if no zone."""
    if text.startswith("+"):
        return datetime.now(UTC) + parse_duration(text[1:], param)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither +<duration> (e.g. +30d) nor an ISO 8601 date-time", param_hint=param
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- rendering --------------------------------------------------------------------------------------------


def _brief(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    keys = ("id",) if "severity" in item else ("suite", "scanner", "approver", "id")
    label = next((str(item[k]) for k in keys if item.get(k) is not None), "?")
    notes = [str(item[k]) for k in ("level", "severity") if item.get(k)]
    if isinstance(item.get("passed"), bool):
        notes.append("passed" if item["passed"] else "failed")
    if item.get("score") is not None:
        notes.append(f"score {item['score']}")
    return f"{label} ({', '.join(notes)})" if notes else label


def evidence_summary(evidence: dict[str, Any]) -> str:
    """A gate's evidence on one line: scalars as key=value, lists item by item."""
    parts = []
    for key, value in evidence.items():
        if isinstance(value, list):
            parts.append(f"{key}: " + ("; ".join(_brief(v) for v in value[:5]) or "none"))
            if len(value) > 5:
                parts[-1] += f"; and {len(value) - 5} more"
        elif isinstance(value, dict):
            parts.append(f"{key}: " + ", ".join(f"{k}={v}" for k, v in value.items()))
        elif value is not None:
            parts.append(f"{key}={value}")
    return ", ".join(parts)


def show_readiness(report: ReadinessOut, *, stderr: bool = False) -> None:
    verdict = "fast-tracked" if report.fastTracked else "ready" if report.ready else "not ready"
    table(
        ["GATE", "STATUS", "EVIDENCE", "MISSING"],
        [[g.gate, g.status, evidence_summary(g.evidence), g.missing or ""] for g in report.gates],
        title=f"{report.ref}: {report.state} → {report.target} ({verdict})",
        stderr=stderr,
    )


def show_version(version: s.VersionOut) -> None:
    meta, status = version.document.get("metadata", {}), version.status
    deprecation = status.deprecation
    table(
        ["VERSION", "STATE", "BLOCKED", "SUCCESSOR", "SUNSET", "CHANGED"],
        [
            [
                meta.get("version", ""),
                status.state,
                f"yes: {status.block.reason}" if status.block else "yes" if status.blocked else "no",
                deprecation.successor if deprecation else "",
                when(deprecation.sunset) if deprecation and deprecation.sunset else "",
                when(status.stateChangedAt) if status.stateChangedAt else "",
            ]
        ],
        title=f"{version.document.get('kind', '')} {meta.get('namespace', '')}/{meta.get('name', '')}",
    )


def _done(value: Any, fmt: Format) -> None:
    if fmt != Format.table:
        emit_data(value, fmt)
    elif isinstance(value, s.VersionOut):
        show_version(value)
    else:
        resource: s.ResourceOut = value
        mark = resource.blocked
        table(
            ["NAME", "BLOCKED", "REASON", "BY", "AT"],
            [
                [
                    f"{resource.kind} {resource.namespace}/{resource.name}",
                    "yes" if mark else "no",
                    mark.reason if mark else "",
                    mark.by if mark else "",
                    when(mark.at) if mark else "",
                ]
            ],
        )


# --- commands ---------------------------------------------------------------------------------------------


def promote(
    ctx: typer.Context,
    ref: VersionArg,
    reason: ReasonOption,
    to: TargetOption = None,
    fast_track: Annotated[
        bool,
        typer.Option("--fast-track", help="past failing gates (tenant admin; recorded in the audit trail)"),
    ] = False,
    output: OutputOption = None,
) -> None:
    """Promote a version one tier (draft → experimental → certified) once its gates pass.

    When a gate has not passed, the readiness report goes to stderr and the exit code is 1.
    """
    opts = options(ctx, output)
    kind, name, version = version_ref(ref)
    with opts.client() as client:
        try:
            result = client.promote(kind, name, version, reason=reason, to=to, fast_track=fast_track)
        except ConflictError as exc:
            if exc.report is not None:
                show_readiness(exc.report, stderr=True)
            raise
    if opts.output != Format.table:
        emit_data(result, opts.output)
    else:
        show_version(result)
        show_readiness(result.report)


def readiness(
    ctx: typer.Context, ref: VersionArg, to: TargetOption = None, output: OutputOption = None
) -> None:
    """Every gate of the next tier: pass, fail or pending, the evidence it used, what is missing."""
    opts = options(ctx, output)
    kind, name, version = version_ref(ref)
    with opts.client() as client:
        report = client.readiness(kind, name, version, to)
    if opts.output != Format.table:
        emit_data(report, opts.output)
    else:
        show_readiness(report)


def deprecate(
    ctx: typer.Context,
    ref: VersionArg,
    reason: ReasonOption,
    successor: Annotated[
        str | None,
        typer.Option("--successor", help="a version of this resource, or KIND/NAMESPACE/NAME@VERSION"),
    ] = None,
    sunset: Annotated[
        str | None,
        typer.Option("--sunset", help="when resolution stops picking it: ISO date-time or +30d"),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Deprecate a version, naming its successor and a sunset."""
    opts = options(ctx, output)
    kind, name, version = version_ref(ref)
    moment = parse_moment(sunset, "--sunset") if sunset is not None else None
    with opts.client() as client:
        result = client.deprecate(kind, name, version, reason=reason, successor=successor, sunset=moment)
    _done(result, opts.output)


def undeprecate(
    ctx: typer.Context, ref: VersionArg, reason: ReasonOption, output: OutputOption = None
) -> None:
    """Return a deprecated version to the state it left."""
    opts = options(ctx, output)
    kind, name, version = version_ref(ref)
    with opts.client() as client:
        result = client.undeprecate(kind, name, version, reason=reason)
    _done(result, opts.output)


def retire(ctx: typer.Context, ref: VersionArg, reason: ReasonOption, output: OutputOption = None) -> None:
    """Retire a version (final): resolution skips it; an alias on it answers 410 Gone."""
    opts = options(ctx, output)
    kind, name, version = version_ref(ref)
    with opts.client() as client:
        result = client.retire(kind, name, version, reason=reason)
    _done(result, opts.output)


BlockArg = Annotated[
    str,
    typer.Argument(
        metavar="REF", help="KIND/NAMESPACE/NAME@VERSION, or KIND/NAMESPACE/NAME for every version"
    ),
]


def block(ctx: typer.Context, ref: BlockArg, reason: ReasonOption, output: OutputOption = None) -> None:
    """Block a version, or a whole resource, at once (the kill switch; tenant admin). Reads answer 423."""
    opts = options(ctx, output)
    kind, name, version = split_ref(ref, version=None)
    with opts.client() as client:
        result = client.block(kind, name, version, reason=reason)
    _done(result, opts.output)


def unblock(ctx: typer.Context, ref: BlockArg, reason: ReasonOption, output: OutputOption = None) -> None:
    """Unblock a version, or a whole resource."""
    opts = options(ctx, output)
    kind, name, version = split_ref(ref, version=None)
    with opts.client() as client:
        result = client.unblock(kind, name, version, reason=reason)
    _done(result, opts.output)


def approve(
    ctx: typer.Context,
    ref: VersionArg,
    to: TargetOption = None,
    comment: Annotated[str, typer.Option("--comment", help="a note kept with the approval")] = "",
    approver: Annotated[
        str | None, typer.Option("--as", help="who approves, by name (single-user mode only)")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Approve a version for a tier (never one's own)."""
    opts = options(ctx, output)
    kind, name, version = version_ref(ref)
    with opts.client() as client:
        result = client.approve(kind, name, version, to=to, comment=comment, approver=approver)
    if opts.output != Format.table:
        emit_data(result, opts.output)
    else:
        _approvals([result])


def approvals(ctx: typer.Context, ref: VersionArg, output: OutputOption = None) -> None:
    """A version's approvals."""
    opts = options(ctx, output)
    kind, name, version = version_ref(ref)
    with opts.client() as client:
        result = client.approvals(kind, name, version)
    if opts.output != Format.table:
        emit_data(result.items, opts.output)
    else:
        _approvals(result.items)


def _approvals(items: list[Any]) -> None:
    table(
        ["TARGET", "APPROVER", "ROLES", "COMMENT", "AT"],
        [[a.target, a.approver, ", ".join(a.roles), a.comment, when(a.createdAt)] for a in items],
    )


def compatibility(
    ctx: typer.Context,
    ref: VersionArg,
    against: Annotated[
        str | None, typer.Option("--against", help="exact version [default: the previous one, same major]")
    ] = None,
    output: OutputOption = None,
) -> None:
    """What breaks from an earlier version; exit code 1 when a breaking change lacks its major bump."""
    opts = options(ctx, output)
    kind, name, version = version_ref(ref)
    with opts.client() as client:
        report = client.compatibility(kind, name, version, against)
    if opts.output != Format.table:
        emit_data(report, opts.output)
    else:
        table(
            ["VERSION", "AGAINST", "COMPATIBLE", "NEEDS", "BUMPED"],
            [
                [
                    report.version,
                    report.against or "",
                    "yes" if report.compatible else "no",
                    report.requiredBump,
                    report.versionBump,
                ]
            ],
        )
        if report.breaking:
            table(["FIELD", "BREAKING CHANGE"], [[b.field, b.issue] for b in report.breaking])
    if report.needsMajor:
        raise typer.Exit(1)


def redact(ctx: typer.Context, ref: VersionArg, reason: ReasonOption, output: OutputOption = None) -> None:
    """Replace a version's spec with a tombstone (super admin); its digest, status and audit trail stay."""
    opts = options(ctx, output)
    kind, name, version = version_ref(ref)
    with opts.client() as client:
        result = client.redact(kind, name, version, reason=reason)
    _done(result, opts.output)
