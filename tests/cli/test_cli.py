"""The CLI over the SDK, against the in-process app (the client is pointed at a TestClient transport)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from agentreg.api.app import create_app
from agentreg.cli import context
from agentreg.cli.main import app as cli_app
from agentreg.cli.main import main
from agentreg.client import Client
from agentreg.config import Settings
from tests import factories as f

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE = "http://agentreg.test"


@pytest.fixture
def run(tmp_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("COLUMNS", "200")
    app = create_app(Settings(data_dir=tmp_data_dir))
    with TestClient(app, base_url=BASE) as http:
        monkeypatch.setattr(context.Options, "client", lambda self: Client(BASE, http_client=http))
        yield CliRunner()


def invoke(runner: CliRunner, *args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(cli_app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_apply_get_versions_alias_resolve(run: CliRunner) -> None:
    code, out, _ = invoke(run, "apply", "-f", str(EXAMPLES))
    assert code == 0 and out.count("created") == 6
    code, out, _ = invoke(run, "get", "agent")
    assert code == 0 and "com.acme/support-bot" in out and "com.acme/research-assistant" in out
    code, out, _ = invoke(run, "-o", "json", "get", "mcp-server", "-l", "tier=core")
    assert code == 0 and [r["name"] for r in json.loads(out)] == ["github"]
    code, out, _ = invoke(run, "alias", "set", "mcp-server", "com.acme/github", "stable", "1.4.2")
    assert code == 0 and "1.4.2" in out
    code, out, _ = invoke(run, "versions", "mcp-server", "com.acme/github")
    assert code == 0 and "1.4.2" in out and "stable" in out
    code, out, _ = invoke(run, "-o", "yaml", "get", "mcp-server", "com.acme/github@stable")
    assert code == 0 and yaml.safe_load(out)["document"]["spec"]["name"] == "com.acme/github"
    code, out, _ = invoke(run, "resolve", "agent/com.acme/support-bot@^1")
    assert code == 0 and "/spec/config/mcpServers/0/ref" in out and "ticket-triage" in out
    code, out, _ = invoke(run, "-o", "json", "resolve", "com.acme/support-bot")
    assert code == 0 and len(json.loads(out)["dependencies"]) == 3
    code, _, _ = invoke(run, "alias", "rm", "mcp-server", "com.acme/github", "stable")
    assert code == 0


def test_apply_from_stdin_dry_run(run: CliRunner) -> None:
    code, out, _ = invoke(run, "apply", "-f", "-", "--dry-run", input=yaml.safe_dump(f.skill()))
    assert code == 0 and "valid" in out
    code, out, _ = invoke(run, "get", "skill")
    assert "triage" not in out


def test_apply_with_a_failing_document_exits_non_zero(run: CliRunner) -> None:
    text = (
        yaml.safe_dump(f.skill())
        + "---\n"
        + yaml.safe_dump(f.with_(f.skill("bad"), "/spec/description", ...))
    )
    code, out, _ = invoke(run, "apply", "-f", "-", input=text)
    assert code == 1 and "created" in out and "failed" in out


def test_server_errors_are_one_stderr_line_and_a_non_zero_exit(
    run: CliRunner, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["agentreg", "get", "skill", "com.acme/missing"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "skill com.acme/missing not found" in err and "not_found" in err
    assert len(err.strip().splitlines()) == 1


def test_version_command(run: CliRunner) -> None:
    code, out, _ = invoke(run, "version")
    assert code == 0 and out.strip() == "0.1.0"


def test_errors_with_brackets_print_verbatim(
    run: CliRunner, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(run, "apply", "-f", str(EXAMPLES))
    monkeypatch.setattr("sys.argv", ["agentreg", "resolve", "com.acme/support-bot"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "/spec/config/mcpServers/0/ref" in err and "unresolved_ref" in err


def test_output_format_is_accepted_after_the_command(run: CliRunner) -> None:
    invoke(run, "apply", "-f", str(EXAMPLES))
    code, out, _ = invoke(run, "get", "agent", "-o", "json")
    assert code == 0 and len(json.loads(out)) == 2
