"""evidence add|list and usage: what a version has shown (evaluations, security scans, real traffic)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from agentreg.api.schemas_evidence import EvaluationOut, ScanOut
from agentreg.cli.context import OutputOption, options
from agentreg.cli.lifecycle import VersionArg, version_ref
from agentreg.cli.output import Format, emit_data, table, when

app = typer.Typer(help="Attest and list evaluations and security scans of a version.", no_args_is_help=True)
SEVERITIES = ("critical", "high", "medium", "low", "info")


def _metric(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"{text!r} is not NAME=VALUE", param_hint="--metric")
    try:
        value = json.loads(raw)  # numbers and booleans as such
    except ValueError:
        value = raw
    return key, value if isinstance(value, int | float | bool | str) else raw


def _finding(text: str) -> dict[str, str]:
    finding_id, _, rest = text.partition(":")
    severity, _, title = rest.partition(":")
    if not finding_id or severity.lower() not in SEVERITIES:
        raise typer.BadParameter(
            f"{text!r} is not ID:SEVERITY[:TITLE] with a severity of {', '.join(SEVERITIES)}",
            param_hint="--finding",
        )
    return {"id": finding_id, "severity": severity.lower(), "title": title}


def _findings_file(path: Path) -> list[dict[str, Any]]:
    """A JSON or YAML list of findings, or an object holding one under ``findings``."""
    try:
        loaded = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc}", param_hint="--findings-file") from None
    if isinstance(loaded, dict):
        loaded = loaded.get("findings")
    if not isinstance(loaded, list) or not all(isinstance(f, dict) for f in loaded):
        raise typer.BadParameter(
            f"{path} must hold a list of findings {{id, severity, title}} (or {{findings: [...]}})",
            param_hint="--findings-file",
        )
    return loaded


def _evaluations(items: list[EvaluationOut]) -> None:
    table(
        ["ID", "SUITE", "LEVEL", "SCORE", "RESULT", "REPORT", "BY", "AT"],
        [
            [
                e.id,
                e.suite,
                e.level,
                "" if e.score is None else e.score,
                "passed" if e.passed else "failed",
                e.reportUrl or "",
                e.createdBy,
                when(e.createdAt),
            ]
            for e in items
        ],
        title="evaluations",
    )


def _scans(items: list[ScanOut]) -> None:
    table(
        ["ID", "SCANNER", "FINDINGS", "BY", "AT"],
        [
            [
                scan.id,
                scan.scanner,
                ", ".join(f"{n} {severity}" for severity, n in scan.summary.items() if n) or "none",
                scan.createdBy,
                when(scan.createdAt),
            ]
            for scan in items
        ],
        title="scans",
    )


@app.command("add")
def add(
    ctx: typer.Context,
    ref: VersionArg,
    evaluation: Annotated[
        bool, typer.Option("--evaluation", help="attest an evaluation (implied by --suite)")
    ] = False,
    scan: Annotated[
        bool, typer.Option("--scan", help="attest a security scan (implied by --scanner)")
    ] = False,
    suite: Annotated[
        str | None, typer.Option("--suite", help="evaluation: the suite, e.g. helpdesk-qa")
    ] = None,
    level: Annotated[str, typer.Option("--level", help="evaluation: basic or comprehensive")] = "basic",
    score: Annotated[float | None, typer.Option("--score", help="evaluation: from 0 to 1")] = None,
    passed: Annotated[
        bool | None, typer.Option("--passed/--failed", help="evaluation: whether it passed (required)")
    ] = None,
    metric: Annotated[list[str], typer.Option("--metric", help="evaluation: NAME=VALUE; repeatable")] = [],  # noqa: B006
    report_url: Annotated[
        str | None, typer.Option("--report-url", help="evaluation: https URL of the full report")
    ] = None,
    scanner: Annotated[str | None, typer.Option("--scanner", help="scan: the scanner, e.g. trivy")] = None,
    finding: Annotated[
        list[str],
        typer.Option("--finding", help="scan: ID:SEVERITY[:TITLE], e.g. CVE-2026-1:high:RCE; repeatable"),
    ] = [],  # noqa: B006
    findings_file: Annotated[
        Path | None,
        typer.Option("--findings-file", help="scan: JSON or YAML list of {id, severity, title}"),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Attest an evaluation (--evaluation --suite S --passed|--failed ...) or a security scan
    (--scan --scanner S [--finding ID:SEVERITY:TITLE ...] [--findings-file F]) of a version. No findings
    means a clean scan. Both are immutable."""
    opts = options(ctx, output)
    kind, name, version = version_ref(ref)
    evaluation = evaluation or suite is not None
    scan = scan or scanner is not None
    if evaluation == scan:
        raise typer.BadParameter("give --evaluation (with --suite) or --scan (with --scanner)")
    if evaluation:
        if suite is None or passed is None:
            raise typer.BadParameter("an evaluation needs --suite and --passed or --failed")
        with opts.client() as client:
            result: EvaluationOut | ScanOut = client.add_evaluation(
                kind,
                name,
                version,
                suite=suite,
                level=level,
                passed=passed,
                score=score,
                metrics=dict(_metric(m) for m in metric),
                report_url=report_url,
            )
    else:
        if scanner is None:
            raise typer.BadParameter("a scan needs --scanner")
        findings = [_finding(f) for f in finding]
        if findings_file is not None:
            findings.extend(_findings_file(findings_file))
        with opts.client() as client:
            result = client.add_scan(kind, name, version, scanner=scanner, findings=findings)
    if opts.output != Format.table:
        emit_data(result, opts.output)
    elif isinstance(result, EvaluationOut):
        _evaluations([result])
    else:
        _scans([result])


@app.command("list")
def list_evidence(ctx: typer.Context, ref: VersionArg, output: OutputOption = None) -> None:
    """A version's evaluations and security scans."""
    opts = options(ctx, output)
    kind, name, version = version_ref(ref)
    with opts.client() as client:
        evaluations = client.evaluations(kind, name, version).items
        scans = client.scans(kind, name, version).items
    if opts.output != Format.table:
        emit_data(
            {
                "evaluations": [e.model_dump(mode="json") for e in evaluations],
                "scans": [s.model_dump(mode="json") for s in scans],
            },
            opts.output,
        )
        return
    _evaluations(evaluations)
    _scans(scans)


def usage(
    ctx: typer.Context,
    ref: VersionArg,
    window: Annotated[str, typer.Option("--window", help="<n>d or <n>h, from 1h to 90d")] = "30d",
    output: OutputOption = None,
) -> None:
    """A version's usage over a window, every reporter merged."""
    opts = options(ctx, output)
    kind, name, version = version_ref(ref)
    with opts.client() as client:
        result = client.usage(kind, name, version, window)
    if opts.output != Format.table:
        emit_data(result, opts.output)
        return

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f} ms"

    rate = "" if result.errorRate is None else f" ({result.errorRate:.2%})"
    latency = result.latencyMs
    rows: list[list[Any]] = [
        ["window", result.window],
        ["requests", result.requests],
        ["errors", f"{result.errors}{rate}"],
        ["callers", f"~{result.callers}"],
        ["latency p50 / p95 / p99", " / ".join(ms(v) for v in (latency.p50, latency.p95, latency.p99))],
        ["first", when(result.first) if result.first else ""],
        ["last", when(result.last) if result.last else ""],
        ["reporters", result.reporters],
        ["reports", result.buckets],
    ]
    table(["FIELD", "VALUE"], rows)
