"""The ``run`` fixture: the installed ``agentreg`` command's entry point, called in process."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable

import pytest

from agentreg.cli.main import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """``run("whoami", input=...)`` → (exit code, stdout, stderr), errors handled as by the installed command."""
    monkeypatch.setenv("COLUMNS", "200")

    def invoke(*args: str, input: str = "") -> tuple[int, str, str]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["agentreg", *args])
        monkeypatch.setattr(sys, "stdin", io.StringIO(input))
        try:
            main()
            code = 0
        except SystemExit as exited:
            code = exited.code if isinstance(exited.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
