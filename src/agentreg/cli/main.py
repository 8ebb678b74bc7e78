"""The ``agentreg`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from agentreg import __version__
from agentreg.cli import (
    aliases,
    audit,
    catalog,
    discovery,
    evidence,
    identity,
    lifecycle,
    login,
    policy,
    server,
)
from agentreg.cli.context import Options
from agentreg.cli.output import Format, error_line
from agentreg.client.errors import APIConnectionError, APIError
from agentreg.domain.errors import AgentRegError

app = typer.Typer(
    name="agentreg",
    help="Registry and live inventory for agents, MCP servers, skills and models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", envvar="AGENTREG_URL", help="registry URL [default http://127.0.0.1:8080]"),
    ] = None,
    output: Annotated[Format, typer.Option("-o", "--output", help="table, json or yaml")] = Format.table,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="AGENTREG_API_KEY", help="API key (agr_...) to authenticate with"),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="AGENTREG_TOKEN", help="OIDC token to authenticate with"),
    ] = None,
) -> None:
    api_key, token = _one_credential(ctx, api_key, token)
    ctx.obj = Options(url=url, output=output, api_key=api_key, token=token)


def _one_credential(
    ctx: typer.Context, api_key: str | None, token: str | None
) -> tuple[str | None, str | None]:
    """An option given on the command line wins over the other's variable; two of a kind is a usage error."""
    if not (api_key and token):
        return api_key, token
    from_env = {
        name
        for name in ("api_key", "token")
        if getattr(ctx.get_parameter_source(name), "name", None) == "ENVIRONMENT"
    }
    if from_env == {"api_key"}:
        return None, token
    if from_env == {"token"}:
        return api_key, None
    raise typer.BadParameter(
        "give --api-key or --token, not both"
        if not from_env
        else "set AGENTREG_API_KEY or AGENTREG_TOKEN, not both",
        param_hint="--api-key/--token",
    )


@app.command("version")
def version() -> None:
    """Print the agentreg version."""
    typer.echo(__version__)


app.command("serve")(server.serve)
app.add_typer(server.app_db, name="db")
app.command("apply")(catalog.apply)
app.command("get")(discovery.get)  # catalog.get, and deployments
app.command("versions")(catalog.versions)
app.command("resolve")(catalog.resolve)
app.add_typer(aliases.app, name="alias")
app.command("promote")(lifecycle.promote)
app.command("readiness")(lifecycle.readiness)
app.command("deprecate")(lifecycle.deprecate)
app.command("undeprecate")(lifecycle.undeprecate)
app.command("retire")(lifecycle.retire)
app.command("block")(lifecycle.block)
app.command("unblock")(lifecycle.unblock)
app.command("approve")(lifecycle.approve)
app.command("approvals")(lifecycle.approvals)
app.command("compatibility")(lifecycle.compatibility)
app.command("redact")(lifecycle.redact)
app.add_typer(evidence.app, name="evidence")
app.command("usage")(evidence.usage)
app.add_typer(policy.app, name="policy")
app.add_typer(discovery.app_sources, name="sources")
app.command("whoami")(identity.whoami)
app.add_typer(identity.app_tenant, name="tenant")
app.add_typer(identity.app_namespace, name="namespace")
app.add_typer(identity.app_key, name="key")
app.add_typer(audit.app, name="audit")
app.command("login")(login.login)
app.command("logout")(login.logout)
app.add_typer(server.app_admin, name="admin")

EXIT_API_ERROR = 1
EXIT_UNREACHABLE = 3


def main() -> None:
    """Entry point: one line on stderr and a non-zero exit code for every failure."""
    try:
        app()
    except APIError as exc:
        details = "; ".join(f"{d.get('field')}: {d.get('issue')}" for d in exc.details[:5])
        error_line(
            f"{exc.message}"
            + (f" [{details}]" if details and details not in exc.message else "")
            + f" ({exc.code})"
        )
        raise SystemExit(EXIT_API_ERROR) from None
    except APIConnectionError as exc:
        error_line(str(exc))
        raise SystemExit(EXIT_UNREACHABLE) from None
    except (AgentRegError, ValueError) as exc:
        error_line(getattr(exc, "message", str(exc)))
        raise SystemExit(2) from None
