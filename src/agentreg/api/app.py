"""The application factory: FastAPI for every route, behind the fast lane for the hot read paths."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from agentreg import __version__
from agentreg.api import errors
from agentreg.api.asgi import ASGIApp, Receive, Scope, Send
from agentreg.api.auth import Authenticator
from agentreg.api.fastlane import FastLane
from agentreg.api.headers import SecurityHeaders
from agentreg.api.idempotency import Idempotency
from agentreg.api.metrics import Metrics
from agentreg.api.observe import Observe
from agentreg.api.routes import health
from agentreg.api.routes.v1 import aliases, audit, batch, lifecycle, resources, versions_extra
from agentreg.api.routes.v1 import deployments as deployment_routes
from agentreg.api.routes.v1 import evidence as evidence_routes
from agentreg.api.routes.v1 import identity as identity_routes
from agentreg.api.routes.v1 import policy as policy_routes
from agentreg.api.routes.v1 import sources as source_routes
from agentreg.api.routes.v1 import tools as tools_routes
from agentreg.config import Settings
from agentreg.domain.sources import SourceConfig
from agentreg.services import cards, discovery, fetcher, identity, introspect
from agentreg.services.auditlog import AuditFiles, Checkpointer, load_signer
from agentreg.services.demo import load_examples
from agentreg.services.oidc import OidcVerifier
from agentreg.store import migrate
from agentreg.store.factory import create_store
from agentreg.store.interface import Store

DESCRIPTION = """\
Registry and live inventory for agentic infrastructure: publish immutable, SemVer-versioned agents
(A2A AgentCard), MCP servers (server.json), skills and models; resolve refs, aliases and ranges; serve an
agent's active config on the hot path.

Errors on /v1 use one envelope: `{"error": {"code", "message", "details": [{"field", "issue"}], "request_id"}}`.
"""


@dataclass
class AgentRegApp:
    """The ASGI app uvicorn serves, with handles on its parts for tests and benchmarks."""

    asgi: ASGIApp
    api: FastAPI
    store: Store
    metrics: Metrics
    fast_lane: FastLane | None
    authenticator: Authenticator
    checkpointer: Checkpointer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.asgi(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    store: Store | None = None,
    run_migrations: bool = True,
    demo_dir: Path | None = None,
    oidc: OidcVerifier | None = None,
) -> AgentRegApp:
    """Build the app. With ``store`` given, the caller owns it (starts, migrates and closes it)."""
    settings = settings or Settings.from_env()
    fetcher.configure(settings.fetch_allow)
    owns_store = store is None
    the_store: Store = store if store is not None else create_store(settings.effective_database_url)
    metrics = Metrics()
    authenticator = Authenticator(the_store, settings, oidc)
    files = AuditFiles(settings.data_dir / "audit")
    checkpointer = Checkpointer(
        the_store,
        load_signer(files, settings.audit_key),
        files,
        webhook=settings.audit_webhook,
        retention=timedelta(days=settings.audit_retention_days) if settings.audit_retention_days else None,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if owns_store:
            if run_migrations:
                await migrate.upgrade(settings.effective_database_url)
            await the_store.start()
        if settings.bootstrap_key:
            await identity.bootstrap(the_store, settings.bootstrap_key)
        if demo_dir is not None:
            await load_examples(the_store, demo_dir)
        checkpoints = asyncio.create_task(checkpointer.run(settings.audit_checkpoint_seconds))
        configs: list[SourceConfig] = []
        if settings.sources_file is not None:
            configs = await asyncio.to_thread(discovery.read_sources_file, settings.sources_file)
        if demo_dir is not None:
            configs += discovery.demo_sources(demo_dir)
        if configs or settings.sources_file is not None:
            await discovery.load_file(the_store, configs)
        discoverer = discovery.Discovery(
            the_store,
            fetcher.default(),
            enrichers=[cards.CardSync(fetcher.default()), introspect.ToolSync(fetcher.default())],
        )
        api.state.discovery = discoverer
        discovering = asyncio.create_task(discoverer.run()) if settings.discovery else None
        # Everything loaded so far lives as long as the process: keep the collector from rescanning it.
        gc.freeze()
        try:
            yield
        finally:
            checkpoints.cancel()
            if discovering is not None:
                discovering.cancel()
            await asyncio.gather(checkpoints, *([discovering] if discovering else []), return_exceptions=True)
            with contextlib.suppress(Exception):  # a last checkpoint, so a clean stop leaves the head signed
                await checkpointer.checkpoint()
            await authenticator.aclose()
            if owns_store:
                await the_store.close()

    api = FastAPI(title="agentreg", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    api.state.store = the_store
    api.state.metrics = metrics
    api.state.settings = settings
    api.state.authenticator = authenticator
    api.state.checkpointer = checkpointer
    errors.install(api)
    api.include_router(health.router)
    api.include_router(identity_routes.router)
    api.include_router(audit.router)
    api.include_router(batch.router)
    api.include_router(aliases.router)
    api.include_router(versions_extra.router)
    api.include_router(lifecycle.router)
    api.include_router(evidence_routes.router)
    api.include_router(policy_routes.router)
    api.include_router(source_routes.router)
    api.include_router(deployment_routes.router)
    api.include_router(tools_routes.router)
    api.include_router(resources.router)
    # The fast lane adds the security headers to its own answers; everything else gets them here.
    observed = SecurityHeaders(Observe(Idempotency(api, the_store, authenticator), metrics))
    lane = (
        FastLane(observed, the_store, authenticator, metrics, settings.cache_entries, settings.cache_bytes)
        if settings.fast_lane
        else None
    )
    return AgentRegApp(
        asgi=lane or observed,
        api=api,
        store=the_store,
        metrics=metrics,
        fast_lane=lane,
        authenticator=authenticator,
        checkpointer=checkpointer,
    )
