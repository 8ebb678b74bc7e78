"""The Kubernetes source against a fake API server, feeding a real Reconciler on a real store.

The API server is ``tests/support/kube_server.py``: a fake, because no Kubernetes API server can be installed
here; kubernetes-asyncio talks to it unchanged over real HTTP. ``RecordingSink`` only observes the boundary
(what the source reported); the tests that need rows pass everything on to a real ``Reconciler``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio import watch as k8s_watch

from agentreg.domain.health import Health
from agentreg.domain.inventory import Claim, ObjectKey, Observation
from agentreg.domain.sources import SourceConfig, parse_source
from agentreg.services import discovery
from agentreg.services.reconcile import Reconciler
from agentreg.sources.kubernetes import KubernetesSource
from agentreg.store.inventory import DeploymentQuery, DeploymentRow
from agentreg.store.sql import SqlStore
from tests.support.kube_server import KubeServer

EXAMPLES = Path(__file__).resolve().parents[1] / "support" / "kube"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
# every example object the source reports: all but the Service and the unannotated redis Deployment
EXPECTED = {
    "Agent/k8s-agent", "RemoteMCPServer/kagent-tool-server", "ModelConfig/default-model-config",
    "ModelProviderConfig/openai", "ToolServer/legacy-tools", "SandboxAgent/coder", "MCPServer/test-mcp-server",
    "AgentRuntime/weather-agent", "AgentCard/weather-agent-card", "AgentgatewayBackend/mcp-target-static-only",
    "AgentgatewayBackend/mcp-full", "AgentgatewayBackend/ai-simple", "InferencePool/vllm-llama3-8b-instruct",
    "InferenceObjective/food-review", "InferenceModel/food-review", "ModelService/facebook-opt-125m",
    "Deployment/weather-agent", "StatefulSet/github-mcp", "Sandbox/sandbox-example",
}  # fmt: skip


def named(observation: Observation) -> str:
    return f"{observation.key.kind}/{observation.key.name}"


class RecordingSink:
    """Records what the source reports; optionally passes it on to a reconciler."""

    def __init__(self, reconciler: Reconciler | None = None) -> None:
        self.reconciler = reconciler
        self.snapshots: list[tuple[str | None, str | None, list[Observation]]] = []
        self.changes: list[tuple[list[Observation], list[ObjectKey]]] = []
        self.statuses: list[dict[str, Any]] = []
        self.details: dict[str, Any] = {}
        self.error: str | None = None
        self.state: str | None = None

    async def snapshot(
        self, observations: Sequence[Observation], *, group: str | None = None, kind: str | None = None
    ) -> None:
        self.snapshots.append((group, kind, list(observations)))
        if self.reconciler is not None:
            await self.reconciler.snapshot(observations, group=group, kind=kind)

    async def changed(self, upserts: Sequence[Observation], deletes: Sequence[ObjectKey] = ()) -> None:
        self.changes.append((list(upserts), list(deletes)))
        if self.reconciler is not None:
            await self.reconciler.changed(upserts, deletes)

    async def enrich(self, key: ObjectKey, extra: Mapping[str, Any], claim: Claim | None = None) -> None:
        raise AssertionError("the Kubernetes source does not enrich")

    def status(
        self,
        *,
        state: str | None = None,
        error: str | None = None,
        clear_error: bool = False,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.statuses.append({"state": state, "error": error, "clear": clear_error, "details": details})
        self.state = state or self.state
        if error is not None:
            self.error = error
        elif clear_error:
            self.error = None
        self.details.update(details or {})

    def snapshot_count(self, kind: str) -> int:
        return sum(1 for _, k, _ in self.snapshots if k == kind)

    def upserted(self) -> list[Observation]:
        return [o for upserts, _ in self.changes for o in upserts]

    def deleted(self) -> list[ObjectKey]:
        return [k for _, deletes in self.changes for k in deletes]


async def eventually(check: Callable[[], bool | Awaitable[bool]], within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
def kube() -> Iterator[KubeServer]:
    server = KubeServer(bookmark_interval_s=0.2).start()
    try:
        yield server
    finally:
        server.stop()


def kube_source_config(kube: KubeServer, tmp_path: Path, **extra: Any) -> SourceConfig:
    path = kube.write_kubeconfig(tmp_path / "kubeconfig")
    raw = {"name": "prod-eu", "type": "kubernetes", "kubeconfig": str(path), "cluster": "prod-eu"}
    return parse_source({**raw, "environment": "prod", **extra})


def fast(config: SourceConfig) -> KubernetesSource:
    return KubernetesSource(
        config, batch_window_s=0.05, backoff_base_s=0.05, backoff_cap_s=0.4, watch_timeout_s=5
    )


@asynccontextmanager
async def running(source: KubernetesSource, sink: RecordingSink) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(sink))
    try:
        await eventually(lambda: sink.state == "ready" or task.done())
        if task.done():
            task.result()
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def rows(store: SqlStore) -> dict[str, DeploymentRow]:
    async with store.read() as tx:
        found = await tx.list_deployments(DeploymentQuery(readers=None, limit=1000))
    return {f"{row.key.kind}/{row.key.name}": row for row in found}


async def reconciling(store: SqlStore, config: SourceConfig) -> RecordingSink:
    await discovery.load_file(store, [config])
    return RecordingSink(Reconciler(store, config))


# --- the client against the fake server --------------------------------------------------------------


async def test_kubernetes_asyncio_talks_to_the_fake_server_unchanged(
    kube: KubeServer, tmp_path: Path
) -> None:
    kube.load(EXAMPLE_FILES)
    api = await k8s_config.new_client_from_config(str(kube.write_kubeconfig(tmp_path / "kc")))
    async with api:
        agents = await k8s_client.CustomObjectsApi(api).list_namespaced_custom_object(
            "kagent.dev", "v1alpha2", "kagent", "agents"
        )
        assert [a["metadata"]["name"] for a in agents["items"]] == ["k8s-agent"]
        services = await k8s_client.CoreV1Api(api).list_namespaced_service("team1")
        assert services.items[0].spec.selector == {"app.kubernetes.io/name": "weather-agent"}
        groups = await k8s_client.ApisApi(api).get_api_versions()
        assert "kagent.dev" in {g.name for g in groups.groups}
        stream = k8s_watch.Watch().stream(
            k8s_client.CustomObjectsApi(api).list_namespaced_custom_object,
            "kagent.dev", "v1alpha2", "kagent", "agents", resource_version=agents["metadata"]["resourceVersion"],
            timeout_seconds=5,
        )  # fmt: skip
        kube.create({"apiVersion": "kagent.dev/v1alpha2", "kind": "Agent",
                     "metadata": {"name": "new", "namespace": "kagent"}, "spec": {"type": "BYO"}})  # fmt: skip
        async with stream as events:
            async for event in events:
                assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "new")
                break


# --- the source, recorded -----------------------------------------------------------------------------


async def test_initial_list_snapshots_every_kind_and_reports_ready(kube: KubeServer, tmp_path: Path) -> None:
    kube.load(EXAMPLE_FILES)
    sink = RecordingSink()
    async with running(fast(kube_source_config(kube, tmp_path)), sink):
        names = {named(o) for _, _, observations in sink.snapshots for o in observations}
        assert names == EXPECTED
        assert sink.details["kinds"]["kagent.dev/Agent"] == "watching v1alpha2"
        assert sink.details["kinds"]["agents.x-k8s.io/Sandbox"] == "watching v1alpha1"
        assert sink.error is None


async def test_lists_in_pages(kube: KubeServer, tmp_path: Path) -> None:
    for n in range(1100):
        kube.create({"apiVersion": "kagent.dev/v1alpha2", "kind": "ModelConfig",
                     "metadata": {"name": f"m{n}", "namespace": "ns"}, "spec": {"model": "gpt"}})  # fmt: skip
    sink = RecordingSink()
    async with running(fast(kube_source_config(kube, tmp_path, kinds=["ModelConfig"])), sink):
        (_, _, observations) = next(s for s in sink.snapshots if s[1] == "ModelConfig")
        assert len(observations) == 1100
        pages = [r for r in kube.requests if r.startswith("/apis/kagent.dev/v1alpha2/modelconfigs?")]
        assert sum("continue=" in r for r in pages) == 2
        assert all("limit=500" in r for r in pages if "watch" not in r)


async def test_crd_not_installed_is_reported_never_a_crash(tmp_path: Path) -> None:
    kube = KubeServer(install_known=False)
    kube.install("kagent.dev", "v1alpha2", "Agent", "agents")
    kube.start()
    try:
        sink = RecordingSink()
        async with running(fast(kube_source_config(kube, tmp_path)), sink):
            kinds = sink.details["kinds"]
            assert kinds["kagent.dev/Agent"] == "watching v1alpha2"
            assert kinds["llm-d.ai/ModelService"] == "not installed"
            assert kinds["agent.kagenti.dev/AgentCard"] == "not installed"
            assert sink.error is None
            assert not any("/llm-d.ai/" in r and "modelservices" in r for r in kube.requests)
    finally:
        kube.stop()


async def test_crd_removed_while_watching_is_reported(kube: KubeServer, tmp_path: Path) -> None:
    sink = RecordingSink()
    async with running(fast(kube_source_config(kube, tmp_path, kinds=["Agent", "ModelService"])), sink):
        kube.uninstall("llm-d.ai", "ModelService")
        kube.drop_connections()
        await eventually(lambda: sink.details["kinds"]["llm-d.ai/ModelService"] == "not installed")
        assert "404" in (sink.error or "")
        kube.install("llm-d.ai", "v1alpha1", "ModelService", "modelservices")
        await eventually(lambda: sink.details["kinds"]["llm-d.ai/ModelService"] == "watching v1alpha1")
        await eventually(lambda: sink.error is None)


async def test_namespaces_and_label_selector_are_honoured(kube: KubeServer, tmp_path: Path) -> None:
    kube.load(EXAMPLE_FILES)
    config = kube_source_config(kube, tmp_path, namespaces=["team1"], labelSelector="team=weather")
    sink = RecordingSink()
    async with running(fast(config), sink):
        names = {named(o) for _, _, observations in sink.snapshots for o in observations}
        assert names == {"Deployment/weather-agent", "StatefulSet/github-mcp"}
        deployment = next(o for _, _, obs in sink.snapshots for o in obs if o.key.kind == "Deployment")
        assert deployment.endpoint == "http://weather-agent.team1.svc.cluster.local:8000"
        lists = [r for r in kube.requests if "watch" not in r and "limit=" in r]
        assert lists and all("/namespaces/team1/" in r for r in lists)
        assert all("labelSelector=team%3Dweather" in r for r in lists if "/services" not in r)
        assert all("labelSelector" not in r for r in lists if "/services" in r)


async def test_with_several_namespaces_every_snapshot_holds_them_all(
    kube: KubeServer, tmp_path: Path
) -> None:
    """A kind's snapshot waits until each namespace was listed: one namespace's list alone would orphan the
    rows of the others."""
    kube.load(EXAMPLE_FILES)
    for namespace in ("ns-a", "ns-b"):
        kube.create({"apiVersion": "kagent.dev/v1alpha2", "kind": "Agent",
                     "metadata": {"name": f"agent-{namespace}", "namespace": namespace}, "spec": {"type": "BYO"}})  # fmt: skip
    config = kube_source_config(kube, tmp_path, namespaces=["ns-a", "ns-b"], kinds=["kagent.dev/Agent"])
    sink = RecordingSink()
    async with running(fast(config), sink):
        await eventually(lambda: any(kind == "Agent" for _, kind, _ in sink.snapshots))
        agent_snapshots = [obs for _, kind, obs in sink.snapshots if kind == "Agent"]
        assert all({o.key.namespace for o in obs} == {"ns-a", "ns-b"} for obs in agent_snapshots)


async def test_watch_events_are_batched_into_changes(kube: KubeServer, tmp_path: Path) -> None:
    kube.load(EXAMPLE_FILES)
    sink = RecordingSink()
    async with running(fast(kube_source_config(kube, tmp_path)), sink):
        for n in range(30):
            kube.create({"apiVersion": "kagent.dev/v1alpha2", "kind": "Agent",
                         "metadata": {"name": f"a{n}", "namespace": "kagent"}, "spec": {"type": "BYO"}})  # fmt: skip
        await eventually(lambda: len({o.key.name for o in sink.upserted()}) == 30)
        assert len(sink.changes) < 10


async def test_removing_the_kind_annotation_deletes_and_a_service_change_remaps(
    kube: KubeServer, tmp_path: Path
) -> None:
    kube.load(EXAMPLE_FILES)
    sink = RecordingSink()
    async with running(fast(kube_source_config(kube, tmp_path)), sink):
        service = kube.get("v1", "Service", "team1", "weather-agent")
        service["spec"]["ports"] = [{"name": "http", "port": 9000}]
        kube.update(service)
        await eventually(
            lambda: any(
                o.endpoint == "http://weather-agent.team1.svc.cluster.local:9000" for o in sink.upserted()
            )
        )
        sts = kube.get("apps/v1", "StatefulSet", "team1", "github-mcp")
        sts["metadata"]["annotations"] = {}
        kube.update(sts)
        await eventually(lambda: any(k.name == "github-mcp" for k in sink.deleted()))


async def test_bookmarks_keep_the_watch_resumable_across_compaction(kube: KubeServer, tmp_path: Path) -> None:
    sink = RecordingSink()
    async with running(fast(kube_source_config(kube, tmp_path, kinds=["Agent", "ModelConfig"])), sink):
        kube.create({"apiVersion": "kagent.dev/v1alpha2", "kind": "ModelConfig",
                     "metadata": {"name": "m", "namespace": "ns"}, "spec": {"model": "x"}})  # fmt: skip
        await eventually(lambda: bool(sink.upserted()))
        await asyncio.sleep(0.6)  # a bookmark carries the Agent watch past the ModelConfig's resourceVersion
        kube.compact()
        kube.drop_connections()
        kube.create({"apiVersion": "kagent.dev/v1alpha2", "kind": "Agent",
                     "metadata": {"name": "after", "namespace": "ns"}, "spec": {"type": "BYO"}})  # fmt: skip
        await eventually(lambda: any(o.key.name == "after" for o in sink.upserted()))
        assert sink.snapshot_count("Agent") == 1  # resumed from the bookmark, no re-list


async def test_gone_relists_and_resync_relists_every_kind(kube: KubeServer, tmp_path: Path) -> None:
    kube.bookmark_interval_s = 3600  # no bookmarks: the watch's resourceVersion stays at the list's
    sink = RecordingSink()
    source = fast(kube_source_config(kube, tmp_path, kinds=["Agent", "ModelConfig"]))
    async with running(source, sink):
        kube.create({"apiVersion": "kagent.dev/v1alpha2", "kind": "ModelConfig",
                     "metadata": {"name": "m", "namespace": "ns"}, "spec": {"model": "x"}})  # fmt: skip
        await eventually(lambda: bool(sink.upserted()))
        kube.compact()
        kube.drop_connections()
        await eventually(lambda: sink.snapshot_count("Agent") == 2)  # 410 Gone: listed again
        source.resync()
        await eventually(
            lambda: sink.snapshot_count("Agent") == 3 and sink.snapshot_count("ModelConfig") == 2
        )


async def test_server_restart_reconnects_with_backoff(kube: KubeServer, tmp_path: Path) -> None:
    sink = RecordingSink()
    async with running(fast(kube_source_config(kube, tmp_path, kinds=["Agent"])), sink):
        kube.stop()
        await eventually(lambda: sink.error is not None)
        kube.create({"apiVersion": "kagent.dev/v1alpha2", "kind": "Agent",
                     "metadata": {"name": "while-down", "namespace": "ns"}, "spec": {"type": "BYO"}})  # fmt: skip
        kube.start()
        await eventually(lambda: any(o.key.name == "while-down" for o in sink.upserted()))
        await eventually(lambda: sink.error is None)


async def test_periodic_resync(kube: KubeServer, tmp_path: Path) -> None:
    sink = RecordingSink()
    async with running(fast(kube_source_config(kube, tmp_path, kinds=["Agent"], resync="300ms")), sink):
        await eventually(lambda: sink.snapshot_count("Agent") >= 3)


# --- the source feeding the reconciler on the store (both backends) ----------------------------------


async def test_list_and_watch_keep_rows_true(store: SqlStore, kube: KubeServer, tmp_path: Path) -> None:
    kube.load(EXAMPLE_FILES)
    config = kube_source_config(kube, tmp_path)
    sink = await reconciling(store, config)
    async with running(fast(config), sink):
        found = await rows(store)
        assert set(found) == EXPECTED
        assert found["Agent/k8s-agent"].health == Health.PASSING.value
        assert found["Agent/k8s-agent"].declared_ref == "kagent/k8s-agent@0.7.0"
        assert found["Agent/k8s-agent"].link.state.value == "drift"  # never published here
        assert found["ModelService/facebook-opt-125m"].health == Health.WARNING.value
        deployment = found["Deployment/weather-agent"]
        assert deployment.observed["endpoint"] == "http://weather-agent.team1.svc.cluster.local:8000"
        assert found["AgentRuntime/weather-agent"].observed["extra"]["heldCard"]["card"]["version"] == "1.0.0"

        agent = kube.get("kagent.dev/v1alpha2", "Agent", "kagent", "k8s-agent")
        agent["status"]["conditions"][1]["status"] = "False"
        kube.update(agent)
        kube.create({"apiVersion": "kagent.dev/v1alpha2", "kind": "RemoteMCPServer",
                     "metadata": {"name": "new-tools", "namespace": "kagent"},
                     "spec": {"description": "d", "url": "https://tools.example.com/mcp"}})  # fmt: skip
        kube.delete("kagent.dev/v1alpha2", "ModelConfig", "kagent", "default-model-config")

        async def settled() -> bool:
            now = await rows(store)
            return (
                now["Agent/k8s-agent"].health == Health.CRITICAL.value
                and "RemoteMCPServer/new-tools" in now
                and now["ModelConfig/default-model-config"].orphaned_at is not None
            )

        await eventually(settled)
        new = (await rows(store))["RemoteMCPServer/new-tools"]
        assert new.observed["endpoint"] == "https://tools.example.com/mcp"
        assert new.catalog_kind == "mcp-server"


async def test_relist_after_gone_orphans_what_went_away(
    store: SqlStore, kube: KubeServer, tmp_path: Path
) -> None:
    kube.bookmark_interval_s = 3600
    kube.load(EXAMPLE_FILES)
    config = kube_source_config(kube, tmp_path, kinds=["Agent", "ModelConfig"])
    sink = await reconciling(store, config)
    async with running(fast(config), sink):
        kube.compact()
        kube.delete("kagent.dev/v1alpha2", "Agent", "kagent", "k8s-agent")
        kube.compact()  # the deletion is compacted away too: only a re-list can tell
        kube.drop_connections()

        async def orphaned() -> bool:
            return (await rows(store))["Agent/k8s-agent"].orphaned_at is not None

        await eventually(orphaned)
        assert sink.snapshot_count("Agent") == 2


async def test_three_clusters_one_thousand_objects_reconcile(store: SqlStore, tmp_path: Path) -> None:
    servers = [KubeServer().start() for _ in range(3)]
    tasks: list[asyncio.Task[None]] = []
    try:
        configs = []
        for index, server in enumerate(servers):
            for n in range(350):
                server.create({"apiVersion": "kagent.dev/v1alpha2", "kind": "Agent",
                               "metadata": {"name": f"agent-{n}", "namespace": f"ns{n % 7}"},
                               "spec": {"type": "BYO", "description": f"agent {n}"}})  # fmt: skip
            path = server.write_kubeconfig(tmp_path / f"kc{index}")
            configs.append(parse_source({"name": f"c{index}", "type": "kubernetes", "kubeconfig": str(path),
                                         "kinds": ["Agent"]}))  # fmt: skip
        await discovery.load_file(store, configs)
        sinks = [RecordingSink(Reconciler(store, config)) for config in configs]
        tasks = [asyncio.create_task(fast(c).run(s)) for c, s in zip(configs, sinks, strict=True)]
        await eventually(lambda: all(s.state == "ready" for s in sinks), within=60)
        async with store.read() as tx:
            total = len(await tx.list_deployments(DeploymentQuery(readers=None, limit=5000)))
        assert total == 1050
        assert all(s.error is None for s in sinks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in servers:
            server.stop()


# --- a dump directory instead of a cluster -----------------------------------------------------------


async def test_dump_directory_is_a_snapshot_read_again_on_change(store: SqlStore, tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    for path in EXAMPLE_FILES:
        shutil.copy(path, dump / path.name)
    items = [d for d in yaml.safe_load_all((EXAMPLES / "kagent.yaml").read_text()) if d]
    (dump / "kagent.yaml").unlink()
    (dump / "list.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    config = parse_source(
        {"name": "demo", "type": "kubernetes", "path": str(dump), "cluster": "demo", "interval": "100ms"}
    )
    sink = await reconciling(store, config)
    async with running(KubernetesSource(config), sink):
        found = await rows(store)
        assert set(found) == EXPECTED
        endpoint = found["Deployment/weather-agent"].observed["endpoint"]
        assert endpoint == "http://weather-agent.team1.svc.cluster.local:8000"
        assert sink.details == {"objects": len(EXPECTED), "files": len(EXAMPLE_FILES)}
        (dump / "llm-d.yaml").unlink()

        async def orphaned() -> bool:
            return (await rows(store))["ModelService/facebook-opt-125m"].orphaned_at is not None

        await eventually(orphaned)
