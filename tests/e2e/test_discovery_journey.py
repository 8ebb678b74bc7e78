"""End to end: a real `agentreg serve` process discovers a cluster and a manifest directory.

The cluster is the faithful local list/watch API server of ``tests/support/kube_server.py`` (no real
Kubernetes API server can be installed here); everything else is real: the server process reads
``AGENTREG_SOURCES``, lists and watches over HTTP with kubernetes-asyncio, publishes the manifests, and the
CLI reads the inventory back over HTTP.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests import factories as f
from tests.e2e.test_server_process import cli, server
from tests.support.kube_server import KubeServer

pytestmark = pytest.mark.e2e
KUBE = Path(__file__).resolve().parents[1] / "support" / "kube"


def wait_for(check: Callable[[], Any], within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {within} s")
        time.sleep(0.1)


def test_a_cluster_and_a_manifest_directory_appear_in_the_inventory(tmp_path: Path) -> None:
    kube = KubeServer().start()
    try:
        kube.load([KUBE / "kagent.yaml", KUBE / "workloads.yaml"])
        catalog = tmp_path / "catalog"
        catalog.mkdir()
        (catalog / "agents.yaml").write_text(
            yaml.safe_dump_all([f.agent("k8s-agent", "0.7.0", namespace="kagent")])
        )
        sources = {
            "sources": [
                {"name": "catalog", "type": "manifests", "path": str(catalog), "interval": "200ms"},
                {
                    "name": "prod-eu",
                    "type": "kubernetes",
                    "kubeconfig": str(kube.write_kubeconfig(tmp_path / "kubeconfig")),
                    "environment": "prod",
                    "cardDiscovery": False,
                },
            ]
        }
        (tmp_path / "sources.yaml").write_text(yaml.safe_dump(sources))
        env = {
            "AGENTREG_DATA_DIR": str(tmp_path / "data"),
            "AGENTREG_SOURCES": str(tmp_path / "sources.yaml"),
        }
        with server(env) as url, httpx.Client(base_url=url, timeout=10) as http:

            def rows() -> list[dict[str, Any]]:
                return list(
                    http.get("/v1/deployments", params={"source": "prod-eu", "limit": 500}).json()["items"]
                )

            found = wait_for(lambda: [r for r in rows() if r["object"]["name"] == "k8s-agent"])
            # The manifests source published kagent/k8s-agent@0.7.0, which the Agent's annotation names.
            agent = wait_for(
                lambda: next(
                    (
                        r
                        for r in rows()
                        if r["object"]["name"] == "k8s-agent" and r["link"]["state"] == "linked"
                    ),
                    None,
                )
            )
            assert agent["link"]["ref"] == "agent/kagent/k8s-agent@0.7.0" and agent["environment"] == "prod"
            assert found and http.get("/v1/agents/kagent/k8s-agent/deployments").json()["items"]

            # A created object is visible within a second or so of its watch event.
            created = dict(yaml.safe_load((KUBE / "kagent.yaml").read_text().split("\n---\n")[2]))
            created["metadata"] = {"name": "shadow-agent", "namespace": "kagent"}
            started = time.monotonic()
            kube.create(created)
            shadow = wait_for(
                lambda: next((r for r in rows() if r["object"]["name"] == "shadow-agent"), None)
            )
            assert time.monotonic() - started < 5
            assert shadow["unregistered"] and shadow["link"]["state"] == "unregistered"

            # A deleted object becomes an orphan; the CLI shows the drift and the sources.
            kube.delete("kagent.dev/v1alpha2", "Agent", "kagent", "shadow-agent")
            wait_for(
                lambda: next(
                    (r for r in rows() if r["object"]["name"] == "shadow-agent" and r["orphaned"]), None
                )
            )
            listed = cli(url, "-o", "json", "sources", "list")
            assert listed.returncode == 0, listed.stderr
            states = {s["name"]: s["state"] for s in json.loads(listed.stdout)}
            assert states == {"catalog": "ready", "prod-eu": "ready"}
            unregistered = cli(url, "-o", "json", "get", "deployments", "--unregistered")
            assert unregistered.returncode == 0, unregistered.stderr
            assert "shadow-agent" in unregistered.stdout
    finally:
        kube.stop()
