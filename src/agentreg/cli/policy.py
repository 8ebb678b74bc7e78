"""policy apply|get|revisions|check|exemptions|exempt|unexempt: the tenant's governance policy (SDK only)."""

from __future__ import annotations

from typing import Annotated

import typer

from agentreg.api.schemas_policy import ExemptionOut
from agentreg.cli.catalog import read_stream
from agentreg.cli.context import OutputOption, options
from agentreg.cli.lifecycle import parse_moment
from agentreg.cli.output import Format, emit_data, table, when

app = typer.Typer(
    help="The tenant's governance policy, admission checks and exemptions.", no_args_is_help=True
)
TenantOption = Annotated[str | None, typer.Option("--tenant", help="default: your only tenant")]


def _exemptions(items: list[ExemptionOut]) -> None:
    table(
        ["ID", "RESOURCE", "RULES", "REASON", "APPROVED BY", "EXPIRES", "ACTIVE"],
        [
            [
                e.id,
                e.resource,
                ", ".join(e.rules),
                e.reason,
                e.approvedBy,
                when(e.expiresAt),
                "yes" if e.active else "no",
            ]
            for e in items
        ],
    )


@app.command("apply")
def apply(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Option("-f", "--file", help="the policy document (YAML or JSON), or - (stdin)")
    ],
    tenant: TenantOption = None,
    if_match: Annotated[
        str | None,
        typer.Option("--if-match", help="only if the policy is still at this revision (a number or an ETag)"),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Replace the tenant's policy with a document (kind: Policy); an unchanged document makes no revision."""
    opts = options(ctx, output)
    text = read_stream(file)
    expected: int | str | None = int(if_match) if if_match and if_match.isdigit() else if_match
    with opts.client() as client:
        result = client.put_policy(text, tenant, if_match=expected)
    if opts.output != Format.table:
        emit_data(result, opts.output)
    else:
        table(
            ["TENANT", "REVISION", "UPDATED", "BY"],
            [
                [
                    result.tenant,
                    result.revision,
                    when(result.updatedAt) if result.updatedAt else "",
                    result.updatedBy or "",
                ]
            ],
        )


@app.command("get")
def get(
    ctx: typer.Context,
    tenant: TenantOption = None,
    effective: Annotated[
        bool, typer.Option("--effective", help="the policy in effect, every default filled in")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Print the tenant's policy document as put (YAML, or -o json), ready for `policy apply -f`."""
    opts = options(ctx, output)
    with opts.client() as client:
        result = client.get_policy(tenant)
    document = result.effective if effective else result.document
    if result.revision == 0:
        typer.echo(f"# tenant {result.tenant} has no policy: the defaults apply (see --effective)", err=True)
    else:
        typer.echo(f"# tenant {result.tenant}, revision {result.revision}", err=True)
    emit_data(document, Format.yaml if opts.output == Format.table else opts.output)


@app.command("revisions")
def revisions(ctx: typer.Context, tenant: TenantOption = None, output: OutputOption = None) -> None:
    """Every revision of the tenant's policy, newest first."""
    opts = options(ctx, output)
    with opts.client() as client:
        result = client.policy_revisions(tenant)
    if opts.output != Format.table:
        emit_data(result.items, opts.output)
    else:
        table(
            ["REVISION", "DIGEST", "CREATED", "BY"],
            [[r.revision, r.digest[:19], when(r.createdAt), r.createdBy] for r in result.items],
            title=f"tenant {result.tenant}",
        )


@app.command("check")
def check(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="KIND/NAMESPACE/NAME[@SELECTOR]")],
    environment: Annotated[
        str | None, typer.Option("--environment", "-e", help="the environment it would run in, e.g. prod")
    ] = None,
    output: OutputOption = None,
) -> None:
    """May REF run (in an environment)? Prints the version it resolves to and every rule's result.

    Exit code 0 when allowed, 1 when not (so an admission script can `agentreg policy check ... && deploy`).
    """
    opts = options(ctx, output)
    with opts.client() as client:
        result = client.check(ref, environment)
    if opts.output != Format.table:
        emit_data(result, opts.output)
    else:
        verdict = "allowed" if result.allowed else "refused"
        where = f" in {result.environment}" if result.environment else ""
        version = f" → {result.resolvedVersion} ({result.state})" if result.resolvedVersion else ""
        table(
            ["RULE", "EFFECT", "RESULT", "MESSAGE"],
            [[r.id, r.effect, r.result, r.message] for r in result.rules],
            title=f"{result.ref}{version}{where}: {verdict}",
        )
        for used in result.exemptions:
            typer.echo(f"exemption {used.id} ({used.reason}) covers {', '.join(used.rules)}", err=True)
    if not result.allowed:
        raise typer.Exit(1)


@app.command("exemptions")
def exemptions(ctx: typer.Context, tenant: TenantOption = None, output: OutputOption = None) -> None:
    """The tenant's exemptions (expired ones inactive)."""
    opts = options(ctx, output)
    with opts.client() as client:
        result = client.exemptions(tenant)
    if opts.output != Format.table:
        emit_data(result.items, opts.output)
    else:
        _exemptions(result.items)


@app.command("exempt")
def exempt(
    ctx: typer.Context,
    resource: Annotated[
        str, typer.Option("--resource", help="KIND/NAMESPACE/NAME, optionally @RANGE: agent/com.acme/bot@^1")
    ],
    rule: Annotated[
        list[str], typer.Option("--rule", help="a rule id (deny.0, cel.my-rule) or glob; repeatable")
    ],
    reason: Annotated[str, typer.Option("--reason", help="why the rules do not apply")],
    expires: Annotated[
        str, typer.Option("--expires", help="when it lapses: +30d, or an ISO date-time (at most a year)")
    ],
    tenant: TenantOption = None,
    output: OutputOption = None,
) -> None:
    """Exempt a resource from rules until a date."""
    opts = options(ctx, output)
    expires_at = parse_moment(expires, "--expires")
    with opts.client() as client:
        result = client.add_exemption(resource, rule, reason, expires_at, tenant)
    if opts.output != Format.table:
        emit_data(result, opts.output)
    else:
        _exemptions([result])


@app.command("unexempt")
def unexempt(
    ctx: typer.Context,
    exemption_id: Annotated[str, typer.Argument(metavar="ID", help="the exemption's id")],
    tenant: TenantOption = None,
) -> None:
    """Remove an exemption."""
    with options(ctx).client() as client:
        client.delete_exemption(exemption_id, tenant)
    typer.echo(f"removed exemption {exemption_id}", err=True)
