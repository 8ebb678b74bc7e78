"""Settings from the environment (``AGENTREG_*``), shared by ``agentreg serve`` and the app factory."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

RATE_LIMIT = "50000/s:100000"
RATE_LIMIT_IP = "50000/s:100000"
AUTH_FAILURE_LIMIT = "1/s:10"


def _flag(value: str) -> bool:
    return value.lower() not in ("0", "false", "no", "off", "")


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=lambda: Path("./.agentreg"))
    database_url: str | None = None
    fast_lane: bool = True
    cache_entries: int = 10_000
    cache_bytes: int = 256 * 1024 * 1024
    # Identity: "single-user" (no authentication; the default tenant's admin) or "required".
    auth: str = "single-user"
    bootstrap_key: str | None = None
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_client_id: str | None = None  # a public client for `agentreg login --device`
    oidc_roles_claim: str = "groups"
    oidc_role_map: str = "{}"
    # Token buckets ("rate/s[:burst]", "rate/m", or "off"); failed authentication is throttled per client IP.
    rate_limit: str = RATE_LIMIT
    rate_limit_ip: str = RATE_LIMIT_IP
    auth_failure_limit: str = AUTH_FAILURE_LIMIT
    # Audit: checkpoint signing key (base64url Ed25519 seed; generated into the data dir when unset).
    audit_key: str | None = None
    audit_checkpoint_seconds: float = 60.0
    audit_webhook: str | None = None
    audit_retention_days: int | None = None
    # Hosts and CIDRs the fetcher may reach over http and at private addresses (webhooks, discovery).
    fetch_allow: str = ""
    # Discovery: the sources file (AGENTREG_SOURCES), and whether this process runs sources when it leads.
    sources_file: Path | None = None
    sources_root: Path | None = None  # where API-configured sources may name files (kubeconfigs, directories)
    discovery: bool = True

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        auth = env.get("AGENTREG_AUTH", "single-user")
        if auth not in ("single-user", "required"):
            raise ValueError(f"AGENTREG_AUTH must be 'single-user' or 'required', not {auth!r}")
        retention = env.get("AGENTREG_AUDIT_RETENTION_DAYS")
        return cls(
            host=env.get("AGENTREG_HOST", "127.0.0.1"),
            port=int(env.get("AGENTREG_PORT", "8080")),
            data_dir=Path(env.get("AGENTREG_DATA_DIR", "./.agentreg")),
            database_url=env.get("AGENTREG_DATABASE_URL") or None,
            fast_lane=_flag(env.get("AGENTREG_FAST_LANE", "true")),
            cache_entries=int(env.get("AGENTREG_CACHE_ENTRIES", "10000")),
            cache_bytes=int(env.get("AGENTREG_CACHE_BYTES", str(256 * 1024 * 1024))),
            auth=auth,
            bootstrap_key=env.get("AGENTREG_BOOTSTRAP_KEY") or None,
            oidc_issuer=env.get("AGENTREG_OIDC_ISSUER") or None,
            oidc_audience=env.get("AGENTREG_OIDC_AUDIENCE") or None,
            oidc_jwks_url=env.get("AGENTREG_OIDC_JWKS_URL") or None,
            oidc_client_id=env.get("AGENTREG_OIDC_CLIENT_ID") or None,
            oidc_roles_claim=env.get("AGENTREG_OIDC_ROLES_CLAIM", "groups"),
            oidc_role_map=env.get("AGENTREG_OIDC_ROLE_MAP", "{}"),
            rate_limit=env.get("AGENTREG_RATE_LIMIT", RATE_LIMIT),
            rate_limit_ip=env.get("AGENTREG_RATE_LIMIT_IP", RATE_LIMIT_IP),
            auth_failure_limit=env.get("AGENTREG_AUTH_FAILURE_LIMIT", AUTH_FAILURE_LIMIT),
            audit_key=env.get("AGENTREG_AUDIT_KEY") or None,
            audit_checkpoint_seconds=float(env.get("AGENTREG_AUDIT_CHECKPOINT_SECONDS", "60")),
            audit_webhook=env.get("AGENTREG_AUDIT_WEBHOOK") or None,
            audit_retention_days=int(retention) if retention else None,
            fetch_allow=env.get("AGENTREG_FETCH_ALLOW", ""),
            sources_file=Path(env["AGENTREG_SOURCES"]) if env.get("AGENTREG_SOURCES") else None,
            sources_root=Path(env["AGENTREG_SOURCES_ROOT"]) if env.get("AGENTREG_SOURCES_ROOT") else None,
            discovery=_flag(env.get("AGENTREG_DISCOVERY", "true")),
        )

    @property
    def auth_required(self) -> bool:
        return self.auth == "required"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'agentreg.db').resolve()}"
