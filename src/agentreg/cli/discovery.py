"""sources list|get|apply|delete|sync, and ``get deployments``: discovery (SDK only)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from agentreg.cli import catalog
from agentreg.cli.context import OutputOption, options
from agentreg.cli.output import Format, emit_data, table, when
from agentreg.client import DeploymentOut, SourceOut

app_sources = typer.Typer(help="Discovery sources: what they found, their errors; sync them now.")
DEPLOYMENTS = ("deployments", "deployment", "deploy")


def _source_rows(items: list[SourceOut]) -> list[list[Any]]:
    return [
        [
            s.name,
            s.type,
            s.tenant,
            s.managedBy,
            s.state,
            when(s.lastSyncAt) if s.lastSyncAt else "",
            s.counts.get("total", 0),
            s.counts.get("drift", 0),
            s.counts.get("unregistered", 0),
            s.counts.get("orphaned", 0),
            s.error.message if s.error else "",
        ]
        for s in items
    ]


_SOURCE_COLUMNS = [
    "NAME",
    "TYPE",
    "TENANT",
    "MANAGED BY",
    "STATE",
    "LAST SYNC",
    "OBJECTS",
    "DRIFT",
    "UNREGISTERED",
    "ORPHANED",
    "ERROR",
]


def _show_sources(items: list[SourceOut], fmt: Format) -> None:
    if fmt != Format.table:
        emit_data(items, fmt)
    else:
        table(_SOURCE_COLUMNS, _source_rows(items))


@app_sources.command("list")
def list_sources(ctx: typer.Context, output: OutputOption = None) -> None:
    """List sources: state, last sync, object counts, the last error."""
    opts = options(ctx, output)
    with opts.client() as client:
        _show_sources(client.sources(), opts.output)


@app_sources.command("get")
def get_source(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the source's name")],
    output: OutputOption = None,
) -> None:
    """Show one source with its configuration."""
    opts = options(ctx, output)
    with opts.client() as client:
        source = client.source(name)
    if opts.output != Format.table:
        emit_data(source, opts.output)
        return
    table(_SOURCE_COLUMNS, _source_rows([source]))
    emit_data(source.config, Format.yaml)


def _configs(text: str, where: str) -> list[dict[str, Any]]:
    """Sources from a YAML/JSON stream: the AGENTREG_SOURCES shape ``{sources: [...]}`` or one per document."""
    configs: list[dict[str, Any]] = []
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise typer.BadParameter(f"{where} is not YAML or JSON: {exc}", param_hint="-f") from None
    for document in documents:
        if document is None:
            continue
        items = (
            document.get("sources") if isinstance(document, dict) and "sources" in document else [document]
        )
        for item in items if isinstance(items, list) else [items]:
            if not isinstance(item, dict):
                raise typer.BadParameter(f"{where}: a source must be a mapping", param_hint="-f")
            configs.append(item)
    if not configs:
        raise typer.BadParameter(f"{where} holds no source", param_hint="-f")
    return configs


@app_sources.command("apply")
def apply_sources(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Option("-f", "--file", help="YAML/JSON file (the AGENTREG_SOURCES shape) or -")
    ],
    output: OutputOption = None,
) -> None:
    """Create or replace API-managed sources."""
    opts = options(ctx, output)
    if file == "-":
        text = sys.stdin.read()
    else:
        path = Path(file)
        if not path.is_file():
            raise typer.BadParameter(f"{file} does not exist", param_hint="-f")
        text = path.read_text("utf-8")
    configs = _configs(text, file)
    with opts.client() as client:
        applied = [client.put_source(config) for config in configs]
    _show_sources(applied, opts.output)


@app_sources.command("delete")
def delete_source(ctx: typer.Context, name: Annotated[str, typer.Argument(help="the source's name")]) -> None:
    """Remove an API-managed source and every object it found."""
    with options(ctx).client() as client:
        client.delete_source(name)
    typer.echo(f"source {name} deleted")


@app_sources.command("sync")
def sync_source(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the source's name")],
    output: OutputOption = None,
) -> None:
    """Ask the discovery leader to re-list a source now."""
    opts = options(ctx, output)
    with opts.client() as client:
        source = client.sync_source(name)
    if opts.output != Format.table:
        emit_data(source, opts.output)
    else:
        typer.echo(f"sync of source {source.name} requested (state: {source.state})")


def _deployment_rows(items: list[DeploymentOut]) -> list[list[Any]]:
    rows = []
    for d in items:
        where = f"{d.object.namespace}/{d.object.name}" if d.object.namespace else d.object.name
        flags = [
            f
            for f, on in (("drift", d.drift), ("unregistered", d.unregistered), ("orphan", d.orphaned))
            if on
        ]
        rows.append(
            [
                d.id,
                d.cluster,
                f"{d.object.kind} {where}",
                d.kind or "",
                d.health,
                d.link.ref or "",
                ",".join(flags),
            ]
        )
    return rows


def _deployments(
    ctx: typer.Context,
    ref: str | None,
    output: Format | None,
    filters: dict[str, Any],
) -> None:
    opts = options(ctx, output)
    with opts.client() as client:
        if ref is not None:
            if not ref.isdigit():
                raise typer.BadParameter("a deployment is named by its id", param_hint="REF")
            one = client.deployment(int(ref))
            if opts.output != Format.table:
                emit_data(one, opts.output)
            else:
                table(["ID", "CLUSTER", "OBJECT", "KIND", "HEALTH", "RUNS", "FLAGS"], _deployment_rows([one]))
                if one.link.reason:
                    typer.echo(f"link: {one.link.state} ({one.link.reason})")
            return
        items = list(client.deployments(**filters))
    if opts.output != Format.table:
        emit_data(items, opts.output)
    else:
        table(["ID", "CLUSTER", "OBJECT", "KIND", "HEALTH", "RUNS", "FLAGS"], _deployment_rows(items))


def get(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="agent, mcp-server, skill, model, or deployments")],
    ref: Annotated[
        str | None, typer.Argument(help="NAMESPACE/NAME[@SELECTOR]; for deployments, a deployment id")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("-n", "--namespace", help="list only this namespace")
    ] = None,
    label: Annotated[list[str], typer.Option("-l", "--label", help="key=value filter; repeatable")] = [],  # noqa: B006
    query: Annotated[
        str | None, typer.Option("-q", "--query", help="substring of name or description")
    ] = None,
    resource: Annotated[
        str | None, typer.Option("--resource", help="deployments: of KIND/NAMESPACE/NAME only")
    ] = None,
    cluster: Annotated[str | None, typer.Option("--cluster", help="deployments: in this cluster")] = None,
    environment: Annotated[
        str | None, typer.Option("--environment", help="deployments: in this environment")
    ] = None,
    source: Annotated[str | None, typer.Option("--source", help="deployments: found by this source")] = None,
    drift: Annotated[
        bool, typer.Option("--drift", help="deployments: running unpublished/unadmitted")
    ] = False,
    unregistered: Annotated[
        bool, typer.Option("--unregistered", help="deployments: linked to nothing in the catalog")
    ] = False,
    orphaned: Annotated[bool, typer.Option("--orphaned", help="deployments: no longer seen")] = False,
    output: OutputOption = None,
) -> None:
    """List resources of a kind, show one, or show the version a selector picks; or list deployments."""
    if kind.lower() in DEPLOYMENTS:
        filters = {
            "resource": resource,
            "cluster": cluster,
            "environment": environment,
            "source": source,
            "drift": drift,
            "unregistered": unregistered,
            "orphaned": True if orphaned else None,
        }
        _deployments(ctx, ref, output, filters)
        return
    given = [
        o
        for o, v in (
            ("--resource", resource),
            ("--cluster", cluster),
            ("--environment", environment),
            ("--source", source),
        )
        if v
    ] + [o for o, v in (("--drift", drift), ("--unregistered", unregistered), ("--orphaned", orphaned)) if v]
    if given:
        raise typer.BadParameter(f"{', '.join(given)} filter deployments only", param_hint=given[0])
    catalog.get(ctx, kind, ref, namespace, label, query, output)
