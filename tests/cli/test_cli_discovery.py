"""``agentreg sources …`` and ``agentreg get deployments``, run through ``main()`` like a shell would.

The registry is a real uvicorn server on loopback in single-user mode (``tests.client.test_sdk_discovery.
serving``), seeded by the real ``Reconciler``. Rich draws boxes and wraps lines, so output is flattened
before matching.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import Run
from tests.cli.test_cli_lifecycle import flat
from tests.client.test_sdk_discovery import serving


@pytest.fixture
def ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    for name in ("AGENTREG_API_KEY", "AGENTREG_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with serving(tmp_path / "data") as (base, seeded):
        monkeypatch.setenv("AGENTREG_URL", base)
        yield seeded


def test_sources_list_get_and_sync(ids: dict[str, int], run: Run) -> None:
    code, out, err = run("sources", "list")
    assert code == 0, err
    text = flat(out)
    assert "prod-eu kubernetes default api pending" in text and "5 1 1 1" in text
    code, out, _ = run("-o", "json", "sources", "get", "prod-eu")
    assert code == 0 and json.loads(out)["counts"]["total"] == 5
    code, out, _ = run("sources", "sync", "prod-eu")
    assert code == 0 and "sync of source prod-eu requested" in out
    code, out, err = run("sources", "sync", "nosuch")
    assert code == 1 and out == "" and "source 'nosuch' not found" in err


def test_sources_apply_and_delete(ids: dict[str, int], run: Run, tmp_path: Path) -> None:
    file = tmp_path / "sources.yaml"
    file.write_text(
        yaml.safe_dump(
            {
                "sources": [
                    {"name": "catalog", "type": "manifests", "path": "catalog"},
                    {"name": "lab", "type": "manifests", "path": "lab", "interval": "30s"},
                ]
            }
        )
    )
    code, out, err = run("sources", "apply", "-f", str(file))
    assert code == 0, err
    assert "catalog manifests" in flat(out) and "lab manifests" in flat(out)
    code, out, _ = run("-o", "yaml", "sources", "list")
    assert [s["name"] for s in yaml.safe_load(out)] == ["catalog", "lab", "prod-eu"]
    code, out, _ = run("sources", "delete", "lab")
    assert code == 0 and "deleted" in out
    code, _, err = run("sources", "apply", "-f", "-", input="name: broken\ntype: kubernetes\n")
    assert code == 1 and "/kubeconfig" in err


def test_get_deployments_with_filters(ids: dict[str, int], run: Run) -> None:
    code, out, err = run("get", "deployments")
    assert code == 0, err
    text = flat(out)
    for name in ("linked", "drifted", "shadow", "openai", "gone"):
        assert f"team-a/{name}" in text
    assert "agent/com.acme/support-bot@1.0.0" in text
    code, out, _ = run("-o", "json", "get", "deployments", "--drift", "--unregistered")
    assert code == 0 and sorted(d["object"]["name"] for d in json.loads(out)) == ["drifted", "shadow"]
    code, out, _ = run("-o", "json", "get", "deployments", "--resource", "agent/com.acme/support-bot")
    assert sorted(d["object"]["name"] for d in json.loads(out)) == ["drifted", "gone", "linked"]
    code, out, _ = run("-o", "yaml", "get", "deployments", "--cluster", "prod-eu", "--environment", "dev")
    assert code == 0 and yaml.safe_load(out) == []
    code, out, _ = run("-o", "json", "get", "deployments", "--orphaned")
    assert [d["object"]["name"] for d in json.loads(out)] == ["gone"]
    code, out, _ = run("get", "deployments", str(ids["drifted"]))
    assert code == 0 and "never published" in flat(out)


def test_get_still_reads_the_catalog(ids: dict[str, int], run: Run) -> None:
    code, out, err = run("get", "agent")
    assert code == 0, err
    assert "com.acme/support-bot" in flat(out)
    code, _, err = run("get", "agent", "--drift")
    assert code == 2 and "deployments only" in err
