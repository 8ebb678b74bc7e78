"""agentreg audit list|export|verify|checkpoint (SDK only)."""

from __future__ import annotations

import itertools
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer

from agentreg.cli.context import OutputOption, options
from agentreg.cli.identity import parse_duration
from agentreg.cli.output import Format, emit_data, error_line, table, when

app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)

TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="default: your only tenant (_system: global events)")
]
ActorOption = Annotated[str | None, typer.Option("--actor", help="e.g. key:k0123... or user:alice")]
ActionOption = Annotated[
    str | None, typer.Option("--action", help="exact, or a prefix ending in *, e.g. key.*")
]
ObjectOption = Annotated[
    str | None, typer.Option("--object", help="exact, or a prefix ending in *, e.g. key/*")
]
SinceOption = Annotated[
    str | None, typer.Option("--since", help="ISO time with zone, or an age like 24h or 7d")
]
UntilOption = Annotated[str | None, typer.Option("--until", help="ISO time with zone, or an age like 1h")]


def parse_time(text: str | None, param: str) -> datetime | None:
    """An ISO 8601 time (a time zone is required), or an age (``24h``: 24 hours ago)."""
    if text is None:
        return None
    if text[:1].isdigit() and text[-1:].lower() in "smhdw" and "-" not in text:
        return datetime.now(UTC) - parse_duration(text, param)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither an ISO time (2026-11-23T10:00:00Z) nor an age (24h)", param_hint=param
        ) from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. 2026-11-23T10:00:00Z", param_hint=param)
    return moment


@app.command("list")
def list_events(
    ctx: typer.Context,
    tenant: TenantOption = None,
    actor: ActorOption = None,
    action: ActionOption = None,
    object_: ObjectOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="show at most this many events [default: all]")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Audit events, oldest first."""
    opts = options(ctx, output)
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    page = min(limit or 1000, 1000)
    with opts.client() as client:
        events = list(
            itertools.islice(
                client.audit(tenant, actor, action, object_, start, end, limit=page),
                limit,
            )
        )
    if opts.output != Format.table:
        emit_data(events, opts.output)
        return
    table(
        ["SEQ", "AT", "ACTOR", "ACTION", "OBJECT", "REASON"],
        [[e.seq, when(e.at), e.actor, e.action, e.object, e.reason] for e in events],
    )


@app.command("export")
def export(
    ctx: typer.Context,
    tenant: TenantOption = None,
    actor: ActorOption = None,
    action: ActionOption = None,
    object_: ObjectOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
) -> None:
    """Every matching event as JSON Lines on stdout (hashes included, for offline checks)."""
    opts = options(ctx)
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    with opts.client() as client:
        for event in client.audit_export(tenant, actor, action, object_, start, end):
            sys.stdout.write(event.model_dump_json() + "\n")
    sys.stdout.flush()


@app.command("verify")
def verify(ctx: typer.Context, tenant: TenantOption = None, output: OutputOption = None) -> None:
    """Re-walk the hash chain and check the signed checkpoints; exit 1 if anything is off."""
    opts = options(ctx, output)
    with opts.client() as client:
        result = client.audit_verify(tenant)
    if opts.output != Format.table:
        emit_data(result, opts.output)
    elif result.ok:
        typer.echo(f"ok: {result.events} events, {result.checkpoints} checkpoints, head seq {result.headSeq}")
    if not result.ok:
        bad = result.firstBad
        where = f"seq {bad.seq}: " if bad is not None and bad.seq is not None else ""
        issue = bad.issue if bad is not None else "verification failed"
        error_line(f"audit log of tenant {result.tenant} does not verify: {where}{issue}")
        raise typer.Exit(1)


@app.command("checkpoint")
def checkpoint(ctx: typer.Context, tenant: TenantOption = None, output: OutputOption = None) -> None:
    """Sign a checkpoint over the chain head now."""
    opts = options(ctx, output)
    with opts.client() as client:
        result = client.audit_checkpoint(tenant)
    if opts.output != Format.table:
        emit_data(result.items, opts.output)
        return
    table(
        ["TENANT", "SEQ", "HASH", "AT", "KEY"],
        [[c.tenant, c.seq, c.hash[:16], c.at, c.keyId] for c in result.items],
    )
