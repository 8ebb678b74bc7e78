"""Discovery benchmark: 10,000 Kubernetes objects across 3 clusters, reconciled from the initial list, and how
soon a created object is visible through the API.

Usage (from the repository root):
    .venv/bin/python bench/discovery.py [--objects 10000] [--clusters 3] [--rounds 3] [--probes 20]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/agentreg_bench_discovery]

Three fake Kubernetes API servers (``tests/support/kube_server.py``: real HTTP list/watch) run in this
process, pinned to CPU 1, each holding its share of kagent Agents (a third of them annotated with
``agentreg.dev/ref``, some linked, some drifted) plus annotated Deployments; their memory and CPU are not the
registry's. One ``agentreg serve`` process runs pinned to CPU 0 (SQLite in a fresh data dir, or the given
PostgreSQL database). Each round:

1. the baseline: kubernetes-asyncio lists every object of every cluster (paged, raw JSON, nothing else), the
   floor any discovery pays;
2. three sources are added with ``POST /v1/sources`` and the time until ``GET /v1/sources`` counts every
   object as a row is measured (the initial list, mapping, linking and writing every row), with the server's
   peak RSS (VmHWM) before and after;
3. ``--probes`` objects are created one at a time in one cluster; for each, the time from the create (the
   watch event leaves the API server then) until ``GET /v1/deployments?resource=…`` shows its row (they alone
   link to that resource, so each poll is one small page).

Between rounds the sources are deleted (their rows with them). Reports medians; targets (printed, never
asserted): initial reconcile < 10 s and < 300 MB RSS; a created object visible < 1 s after its event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from read_path import LOAD_CPU, processes
from tests.support.kube_server import KubeServer

AGENTREG = os.path.join(os.path.dirname(sys.executable), "agentreg")
PROBE_REF = "com.bench/probe@1.0.0"
FRESH_REF = "com.bench/fresh@1.0.0"  # only the objects created during the run link to it
TARGET_RECONCILE_S, TARGET_RSS_MB, TARGET_VISIBLE_S = 10.0, 300.0, 1.0


def agent(cluster: int, index: int) -> dict[str, Any]:
    annotations = {}
    if index % 3 == 0:
        annotations["agentreg.dev/ref"] = (
            PROBE_REF if index % 6 == 0 else f"com.bench/agent-{index % 50}@1.0.0"
        )
    return {
        "apiVersion": "kagent.dev/v1alpha2",
        "kind": "Agent",
        "metadata": {
            "name": f"agent-{index}",
            "namespace": f"team-{index % 40}",
            "uid": f"{cluster}-{index}",
            "generation": 1,
            "labels": {"app.kubernetes.io/part-of": "kagent", "team": f"team-{index % 40}"},
            "annotations": annotations,
        },
        "spec": {
            "type": "Declarative",
            "description": f"Bench agent {index}: answers questions about service {index % 97}.",
            "declarative": {
                "modelConfig": "default-model-config",
                "systemMessage": "You are a helpful agent. " * 8,
                "tools": [
                    {
                        "type": "McpServer",
                        "mcpServer": {
                            "apiGroup": "kagent.dev",
                            "kind": "RemoteMCPServer",
                            "name": "tools",
                            "toolNames": ["get", "list"],
                        },
                    }
                ],
            },
        },
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Accepted",
                    "status": "True",
                    "reason": "AgentReconciled",
                    "lastTransitionTime": "2026-11-01T00:00:00Z",
                },
                {
                    "type": "Ready",
                    "status": "True" if index % 10 else "False",
                    "reason": "DeploymentReady",
                    "lastTransitionTime": "2026-11-01T00:00:00Z",
                },
            ],
        },
    }


def fill(servers: list[KubeServer], total: int) -> None:
    for number, server in enumerate(servers):
        share = total // len(servers) + (1 if number < total % len(servers) else 0)
        for index in range(share):
            server.create(agent(number, index))


async def raw_list(kubeconfigs: list[Path]) -> tuple[float, int]:
    """The floor: list every Agent of every cluster with the source's own client, paged, as raw JSON."""
    from agentreg.domain.sources import parse_source
    from agentreg.sources.kubernetes.client import KubeClient

    started = time.perf_counter()
    count = 0
    for number, path in enumerate(kubeconfigs):
        config = parse_source({"name": f"baseline-{number}", "type": "kubernetes", "kubeconfig": str(path)})
        client = await KubeClient.connect(config)
        try:
            items, _version = await client.list("/apis/kagent.dev/v1alpha2/agents")
            count += len(items)
        finally:
            await client.close()
    return time.perf_counter() - started, count


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rows_total(client: httpx.Client, names: list[str]) -> int:
    items = client.get("/v1/sources").json()["items"]
    return sum(int(s["counts"].get("total", 0)) for s in items if s["name"] in names)


def probe_count(client: httpx.Client) -> int:
    total, cursor = 0, None
    while True:
        params = {
            "resource": "agent/com.bench/fresh",
            "limit": "500",
            **({"cursor": cursor} if cursor else {}),
        }
        page = client.get("/v1/deployments", params=params).json()
        total += len(page["items"])
        cursor = page.get("nextCursor")
        if not cursor:
            return total


def one_round(
    client: httpx.Client,
    pid: int,
    servers: list[KubeServer],
    kubeconfigs: list[Path],
    total: int,
    probes: int,
    round_no: int,
) -> dict[str, float]:
    baseline_s, listed = asyncio.run(raw_list(kubeconfigs))
    assert listed == total + round_no * probes, (listed, total)
    expected = listed
    names = [f"bench-{round_no}-{i}" for i in range(len(servers))]
    rss_before = rss_mb(pid)
    started = time.perf_counter()
    for name, path, number in zip(names, kubeconfigs, range(len(servers)), strict=True):
        body = {
            "name": name,
            "type": "kubernetes",
            "kubeconfig": str(path),
            "cluster": f"c{number}",
            "environment": "prod",
            "kinds": ["kagent.dev/Agent"],
            "cardDiscovery": False,
        }
        response = client.post("/v1/sources", json=body)
        response.raise_for_status()
    while rows_total(client, names) < expected:
        if time.perf_counter() - started > 300:
            raise RuntimeError(f"only {rows_total(client, names)} of {expected} rows after 300 s")
        time.sleep(0.05)
    reconcile_s = time.perf_counter() - started
    peak = peak_rss_mb(pid)
    delays = []
    for probe in range(probes):
        before = probe_count(client)
        obj = agent(0, 100_000 + round_no * probes + probe)
        obj["metadata"]["annotations"] = {"agentreg.dev/ref": FRESH_REF}
        created = time.perf_counter()
        servers[0].create(obj)
        while probe_count(client) <= before:
            if time.perf_counter() - created > 30:
                raise RuntimeError("a created object did not appear within 30 s")
            time.sleep(0.005)
        delays.append(time.perf_counter() - created)
    for name in names:
        client.delete(f"/v1/sources/{name}").raise_for_status()
    return {
        "baseline_s": baseline_s,
        "reconcile_s": reconcile_s,
        "rows": float(expected),
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "visible_p50_s": statistics.median(delays),
        "visible_max_s": max(delays),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(LOAD_CPU)})
    workdir = Path(tempfile.mkdtemp(prefix="agentreg-bench-discovery-"))
    servers = [KubeServer(bookmark_interval_s=30).start() for _ in range(args.clusters)]
    (
        workdir / "default"
    ).mkdir()  # API-configured sources name files under the root, in their tenant's directory
    kubeconfigs = [s.write_kubeconfig(workdir / "default" / f"kubeconfig-{i}") for i, s in enumerate(servers)]
    fill(servers, args.objects)
    env = {
        "AGENTREG_DATA_DIR": str(workdir / "data"),
        "AGENTREG_FETCH_ALLOW": "127.0.0.1/32",
        "AGENTREG_SOURCES_ROOT": str(workdir),  # the kubeconfigs the sources name live there
    }
    if args.database_url:
        _fresh_database(args.database_url)
        env["AGENTREG_DATABASE_URL"] = args.database_url
    results: list[dict[str, float]] = []
    with processes() as procs:
        server = procs.start("agentreg", [AGENTREG, "serve", "--port", "{port}"], env, "/readyz")
        with httpx.Client(base_url=server.base, timeout=30) as client:
            for kind, name in (
                ("agent", "probe"),
                ("agent", "fresh"),
                *(("agent", f"agent-{i}") for i in range(50)),
            ):
                document = {
                    "apiVersion": "agentreg.dev/v1",
                    "kind": "Agent",
                    "metadata": {"namespace": "com.bench", "name": name, "version": "1.0.0"},
                    "spec": {"card": _card(name)},
                }
                client.post(f"/v1/{kind}s", json=document).raise_for_status()
            for round_no in range(args.rounds):
                result = one_round(
                    client, server.proc.pid, servers, kubeconfigs, args.objects, args.probes, round_no
                )
                results.append(result)
                print(
                    f"round {round_no + 1}: " + json.dumps({k: round(v, 3) for k, v in result.items()}),
                    flush=True,
                )
    for s in servers:
        s.stop()
    med = {k: statistics.median(r[k] for r in results) for k in results[0]}
    backend = "PostgreSQL" if args.database_url else "SQLite"
    print()
    print(
        f"Discovery, {args.objects:,} objects across {args.clusters} clusters, {backend}; medians of {args.rounds} round(s)"
    )
    print(f"  raw list (baseline)            {med['baseline_s']:8.2f} s")
    print(
        f"  initial reconcile               {med['reconcile_s']:8.2f} s   ({med['reconcile_s'] / med['baseline_s']:.1f}x the raw list; target < {TARGET_RECONCILE_S:g} s)"
    )
    first, last = results[0], results[-1]
    print(
        f"  server RSS idle / peak, round 1 {first['rss_before_mb']:8.0f} / {first['peak_rss_mb']:.0f} MB"
        f"   (target < {TARGET_RSS_MB:g} MB; after {len(results)} rounds: peak {last['peak_rss_mb']:.0f} MB)"
    )
    print(
        f"  created object visible (p50)    {med['visible_p50_s'] * 1000:8.0f} ms   (max {med['visible_max_s'] * 1000:.0f} ms; target < {TARGET_VISIBLE_S * 1000:g} ms)"
    )
    return 0


def _card(name: str) -> dict[str, Any]:
    return {
        "protocolVersion": "0.3.0",
        "name": name,
        "description": f"bench agent {name}",
        "url": f"https://agents.bench.example/{name}",
        "version": "1.0.0",
        "capabilities": {},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "s", "name": "s", "description": "s", "tags": ["s"]}],
    }


def _fresh_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    for statement in (
        f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)',
        f'CREATE DATABASE "{parsed.database}"',
    ):
        subprocess.run(
            ["psql", "-h", parsed.host or "127.0.0.1", "-U", parsed.username or "postgres", "-qc", statement],
            check=True,
        )


if __name__ == "__main__":
    raise SystemExit(main())
