"""apply, get, versions, resolve: the catalog commands (SDK only)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

from agentreg.cli.context import OutputOption, options
from agentreg.cli.output import Format, emit_data, short_digest, table, when
from agentreg.client import ResolvedOut
from agentreg.client._core import split_name
from agentreg.domain.names import parse_ref

DOCUMENT_SUFFIXES = (".yaml", ".yml", ".json")


def read_stream(source: str) -> str:
    """Files, a directory (its *.yaml/*.yml/*.json in name order, recursively) or '-' as one YAML stream."""
    if source == "-":
        return sys.stdin.read()
    path = Path(source)
    if not path.exists():
        raise typer.BadParameter(f"{source} does not exist", param_hint="-f")
    files = (
        sorted(p for p in path.rglob("*") if p.suffix in DOCUMENT_SUFFIXES and p.is_file())
        if path.is_dir()
        else [path]
    )
    chunks: list[str] = []
    for file in files:
        text = file.read_text("utf-8")
        if file.suffix == ".json":
            loaded = json.loads(text)
            docs = loaded if isinstance(loaded, list) else [loaded]
            chunks.extend(yaml.safe_dump(doc, sort_keys=False) for doc in docs)
        else:
            chunks.append(text)
    return "\n---\n".join(chunks)


def apply(
    ctx: typer.Context,
    file: Annotated[list[str], typer.Option("-f", "--file", help="file, directory or - (stdin); repeatable")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="validate and report, write nothing")] = False,
    output: OutputOption = None,
) -> None:
    """Publish documents (multi-document YAML or JSON), referenced ones first."""
    opts = options(ctx, output)
    stream = "\n---\n".join(read_stream(f) for f in file)
    with opts.client() as client:
        result = client.apply(stream, dry_run=dry_run)
    if opts.output != Format.table:
        emit_data(result, opts.output)
    else:
        rows = []
        for item in result.results:
            note = (
                item.error.message
                if item.error
                else "; ".join(f"{w.field}: {w.issue}" for w in item.warnings)
            )
            rows.append([item.index, item.kind or "", item.name or "", item.version or "", item.result, note])
        table(["#", "KIND", "NAME", "VERSION", "RESULT", "NOTE"], rows)
    if any(item.result == "failed" for item in result.results):
        raise typer.Exit(1)


def get(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="agent, mcp-server, skill or model")],
    ref: Annotated[str | None, typer.Argument(help="NAMESPACE/NAME[@SELECTOR]")] = None,
    namespace: Annotated[
        str | None, typer.Option("-n", "--namespace", help="list only this namespace")
    ] = None,
    label: Annotated[list[str], typer.Option("-l", "--label", help="key=value filter; repeatable")] = [],  # noqa: B006
    query: Annotated[
        str | None, typer.Option("-q", "--query", help="substring of name or description")
    ] = None,
    output: OutputOption = None,
) -> None:
    """List resources of a kind, show one, or show the version a selector picks."""
    opts = options(ctx, output)
    with opts.client() as client:
        if ref is None:
            labels = dict(item.partition("=")[::2] for item in label)
            items = list(client.list(kind, namespace=namespace, labels=labels, q=query))
            if opts.output != Format.table:
                emit_data(items, opts.output)
                return
            rows = [
                [
                    f"{r.namespace}/{r.name}",
                    r.latest.version if r.latest else "",
                    r.versionCount,
                    r.title,
                    _labels(r.labels),
                ]
                for r in items
            ]
            table(["NAME", "LATEST", "VERSIONS", "TITLE", "LABELS"], rows)
            return
        name, sep, selector = ref.partition("@")
        split_name(name)
        if not sep:
            resource = client.get(kind, name)
            if opts.output != Format.table:
                emit_data(resource, opts.output)
                return
            aliases = ", ".join(f"{a}→{v}" for a, v in resource.aliases.items())
            latest = resource.latest.version if resource.latest else ""
            rows = [
                ["kind", resource.kind],
                ["name", f"{resource.namespace}/{resource.name}"],
                ["title", resource.title],
                ["description", resource.description],
                ["latest", latest],
                ["versions", resource.versionCount],
                ["aliases", aliases],
                ["labels", _labels(resource.labels)],
            ]
            table(["FIELD", "VALUE"], rows)
            return
        version = client.get_version(kind, name, selector)
    if opts.output == Format.table:
        emit_data(version.document, Format.yaml)
        table(
            ["DIGEST", "PUBLISHED", "BY", "ORIGIN"],
            [
                [
                    version.status.digest,
                    when(version.status.publishedAt),
                    version.status.publishedBy,
                    version.status.origin,
                ]
            ],
        )
    else:
        emit_data(version, opts.output)


def versions(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="agent, mcp-server, skill or model")],
    name: Annotated[str, typer.Argument(help="NAMESPACE/NAME")],
    output: OutputOption = None,
) -> None:
    """List a resource's versions, newest first."""
    opts = options(ctx, output)
    with opts.client() as client:
        result = client.versions(kind, name)
        aliases = client.aliases(kind, name)
    if opts.output != Format.table:
        emit_data(result, opts.output)
        return
    by_version: dict[str, list[str]] = {}
    for alias in aliases.items:
        by_version.setdefault(alias.version, []).append(alias.alias)
    rows = [
        [
            v.version,
            ", ".join(by_version.get(v.version, [])),
            short_digest(v.status.digest),
            when(v.status.publishedAt),
            v.status.publishedBy,
            v.status.origin,
        ]
        for v in result.items
    ]
    table(
        ["VERSION", "ALIASES", "DIGEST", "PUBLISHED", "BY", "ORIGIN"],
        rows,
        title=f"{result.kind} {result.namespace}/{result.name}",
    )


def resolve(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(help="[KIND/]NAMESPACE/NAME[@SELECTOR]; an agent gives its active config")
    ],
    output: OutputOption = None,
) -> None:
    """Resolve a ref to a concrete version (for an agent: every ref in its config too)."""
    opts = options(ctx, output)
    parse_ref(ref, "ref")
    with opts.client() as client:
        result = client.resolve(ref)
    if opts.output != Format.table:
        emit_data(result, opts.output)
        return
    meta = result.document["metadata"]
    rows = [
        [
            "",
            f"{result.document['kind']} {meta['namespace']}/{meta['name']}",
            meta["version"],
            short_digest(result.status.digest),
        ]
    ]
    if isinstance(result, ResolvedOut):
        stack = [(dep, 1) for dep in result.dependencies]
        while stack:
            dep, depth = stack.pop(0)
            rows.append(
                [("  " * (depth - 1)) + dep.field, dep.ref, dep.version, short_digest(dep.status.digest)]
            )
            stack[0:0] = [(d, depth + 1) for d in dep.dependencies]
    table(["FIELD", "REF", "VERSION", "DIGEST"], rows)


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())
