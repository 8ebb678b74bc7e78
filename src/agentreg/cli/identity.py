"""whoami, tenant, namespace and key: who may do what, and where (SDK only)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from agentreg.api import schemas as s
from agentreg.cli.context import OutputOption, options
from agentreg.cli.output import Format, emit_data, table, when

app_tenant = typer.Typer(help="Tenants: who owns namespaces and keys.", no_args_is_help=True)
app_namespace = typer.Typer(help="Claim and share namespaces.", no_args_is_help=True)
app_key = typer.Typer(help="API keys for service accounts.", no_args_is_help=True)

_DURATION = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str, param: str) -> timedelta:
    """``30d``, ``12h``, ``1w2d``, ``90m``, ``45s``."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise typer.BadParameter(f"{text!r} is not a duration like 30d, 12h or 90m", param_hint=param)
    return sum((timedelta(**{_UNITS[u]: int(n)}) for n, u in parts), timedelta())


def whoami(ctx: typer.Context, output: OutputOption = None) -> None:
    """Show who the registry takes you for: tenants and roles, key scope, expiry."""
    opts = options(ctx, output)
    with opts.client() as client:
        me = client.whoami()
    if opts.output != Format.table:
        emit_data(me, opts.output)
        return
    rows = [
        ["subject", me.subject],
        ["kind", me.kind],
        ["name", me.displayName],
        ["super admin", "yes" if me.superAdmin else "no"],
        ["tenants", "; ".join(f"{t}: {', '.join(r)}" for t, r in me.tenants.items())],
        ["scope", "; ".join(f"{k}: {', '.join(v)}" for k, v in me.scope.items())],
        ["expires", when(me.expiresAt) if me.expiresAt else ""],
        ["authentication", me.authentication],
    ]
    table(["FIELD", "VALUE"], rows)


# --- tenant -----------------------------------------------------------------------------------------------


def _tenants(items: list[s.TenantOut]) -> None:
    table(["ID", "NAME", "CREATED"], [[t.id, t.displayName, when(t.createdAt)] for t in items])


@app_tenant.command("create")
def create_tenant(
    ctx: typer.Context,
    tenant_id: Annotated[str, typer.Argument(metavar="ID", help="1-63 lowercase letters, digits and '-'")],
    display_name: Annotated[str | None, typer.Option("--display-name", help="human-readable name")] = None,
    output: OutputOption = None,
) -> None:
    """Create a tenant (super admin)."""
    opts = options(ctx, output)
    with opts.client() as client:
        tenant = client.create_tenant(tenant_id, display_name)
    if opts.output != Format.table:
        emit_data(tenant, opts.output)
    else:
        _tenants([tenant])


@app_tenant.command("list")
def list_tenants(ctx: typer.Context, output: OutputOption = None) -> None:
    """Tenants you belong to (every tenant, for a super admin)."""
    opts = options(ctx, output)
    with opts.client() as client:
        result = client.list_tenants()
    if opts.output != Format.table:
        emit_data(result.items, opts.output)
    else:
        _tenants(result.items)


# --- namespace --------------------------------------------------------------------------------------------


def _namespaces(items: list[s.NamespaceOut]) -> None:
    table(
        ["NAME", "TENANT", "PUBLIC", "SHARED WITH", "CREATED"],
        [
            [n.name, n.tenant, "yes" if n.public else "no", ", ".join(n.sharedWith), when(n.createdAt)]
            for n in items
        ],
    )


@app_namespace.command("claim")
def claim_namespace(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="namespace, e.g. com.acme")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="default: your only tenant")] = None,
    output: OutputOption = None,
) -> None:
    """Claim an unclaimed namespace for a tenant."""
    opts = options(ctx, output)
    with opts.client() as client:
        namespace = client.claim_namespace(name, tenant)
    if opts.output != Format.table:
        emit_data(namespace, opts.output)
    else:
        _namespaces([namespace])


@app_namespace.command("list")
def list_namespaces(ctx: typer.Context, output: OutputOption = None) -> None:
    """Namespaces you can read."""
    opts = options(ctx, output)
    with opts.client() as client:
        result = client.list_namespaces()
    if opts.output != Format.table:
        emit_data(result.items, opts.output)
    else:
        _namespaces(result.items)


@app_namespace.command("share")
def share_namespace(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="namespace")],
    public: Annotated[
        bool, typer.Option("--public/--private", help="readable by every tenant, or not")
    ] = False,
    tenant: Annotated[list[str], typer.Option("--tenant", help="tenant granted read; repeatable")] = [],  # noqa: B006
    output: OutputOption = None,
) -> None:
    """Replace who may read NAME besides its owner (no --tenant and --private: the owner only)."""
    opts = options(ctx, output)
    with opts.client() as client:
        namespace = client.share_namespace(name, public=public, tenants=tenant)
    if opts.output != Format.table:
        emit_data(namespace, opts.output)
    else:
        _namespaces([namespace])


# --- key --------------------------------------------------------------------------------------------------


def _keys(items: list[s.KeyOut]) -> None:
    rows = [
        [
            k.id,
            k.name,
            k.tenant or "",
            ", ".join(k.roles),
            "; ".join(f"{part}: {', '.join(v)}" for part, v in k.scope.items()),
            when(k.createdAt),
            when(k.expiresAt) if k.expiresAt else "",
            when(k.lastUsedAt) if k.lastUsedAt else "",
            "revoked" if k.revokedAt else "",
        ]
        for k in items
    ]
    table(["ID", "NAME", "TENANT", "ROLES", "SCOPE", "CREATED", "EXPIRES", "LAST USED", "STATE"], rows)


@app_key.command("create")
def create_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="what the key is for, e.g. ci-publisher")],
    role: Annotated[
        list[str],
        typer.Option(
            "--role", help="tenant_admin, developer, operator, analyst, auditor, viewer, super_admin"
        ),
    ],
    tenant: Annotated[str | None, typer.Option("--tenant", help="default: your only tenant")] = None,
    namespace: Annotated[
        list[str], typer.Option("--namespace", help="limit the key to this namespace; repeatable")
    ] = [],  # noqa: B006
    resource: Annotated[
        list[str], typer.Option("--resource", help="limit to kind/namespace/name; repeatable")
    ] = [],  # noqa: B006
    action: Annotated[list[str], typer.Option("--action", help="limit to this permission; repeatable")] = [],  # noqa: B006
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="lifetime, e.g. 30d or 12h [default: none]")
    ] = None,
    output: OutputOption = None,
) -> None:
    """Create an API key and print its secret (shown only this once)."""
    opts = options(ctx, output)
    expires_at = (
        datetime.now(UTC) + parse_duration(expires_in, "--expires-in") if expires_in is not None else None
    )
    scope = {
        part: values
        for part, values in (("namespaces", namespace), ("resources", resource), ("actions", action))
        if values
    }
    with opts.client() as client:
        created = client.create_key(name, role, tenant=tenant, scope=scope or None, expires_at=expires_at)
    if opts.output != Format.table:
        emit_data(created, opts.output)
    else:
        typer.echo(created.key)
    typer.echo(
        f"created key {created.id} ({created.name}); the secret is shown only once: store it now", err=True
    )


@app_key.command("list")
def list_keys(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option("--tenant", help="default: your only tenant")] = None,
    output: OutputOption = None,
) -> None:
    """A tenant's API keys (never their secrets)."""
    opts = options(ctx, output)
    with opts.client() as client:
        result = client.list_keys(tenant)
    if opts.output != Format.table:
        emit_data(result.items, opts.output)
    else:
        _keys(result.items)


@app_key.command("revoke")
def revoke_key(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="ID", help="the key's id (k...), not its secret")],
    output: OutputOption = None,
) -> None:
    """Revoke an API key: it stops working at once."""
    if key_id.startswith("agr_"):
        # Never put a secret in a URL (access logs); the id is in `agentreg key list`.
        raise typer.BadParameter(
            "give the key's id (see `agentreg key list`), not its secret", param_hint="ID"
        )
    opts = options(ctx, output)
    with opts.client() as client:
        key = client.revoke_key(key_id)
    if opts.output != Format.table:
        emit_data(key, opts.output)
    else:
        _keys([key])
