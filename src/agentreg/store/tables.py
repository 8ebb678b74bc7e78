"""The schema, as SQLAlchemy Core tables. Alembic migrations create and change it; nothing else does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite returns naive ones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

namespaces = sa.Table(
    "namespaces",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

resources = sa.Table(
    "resources",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("namespace", sa.String(200), sa.ForeignKey("namespaces.name"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("title", sa.Text(), nullable=False, server_default=""),
    sa.Column("description", sa.Text(), nullable=False, server_default=""),
    # Labels live here (read with the row) and in resource_labels (indexed for filters); one method writes both.
    sa.Column("labels", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("annotations", sa.Text(), nullable=False, server_default="{}"),
    # Maintained on publish by domain.resolution.supersedes, so reads never scan every version.
    sa.Column("latest_version", sa.String(255), nullable=True),
    sa.Column("version_count", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("blocked", sa.Text(), nullable=True),  # JSON {reason, at, by}: every version is blocked
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("kind", "namespace", "name"),
    sa.Index(None, "tenant_id", "kind", "namespace", "name"),
)

resource_labels = sa.Table(
    "resource_labels",
    metadata,
    sa.Column(
        "resource_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("resources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("key", sa.String(317), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
    sa.Index(None, "key", "value"),
)

versions = sa.Table(
    "versions",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column(
        "resource_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("resources.id"),
        nullable=False,
    ),
    sa.Column("version", sa.String(255), nullable=False),
    # The SemVer version without build metadata: two versions differing only in build metadata collide here.
    sa.Column("semver_key", sa.String(255), nullable=True),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("document", sa.Text(), nullable=False),
    sa.Column("title", sa.Text(), nullable=False, server_default=""),
    sa.Column("description", sa.Text(), nullable=False, server_default=""),
    sa.Column("protocol", sa.String(16), nullable=True),
    sa.Column("warnings", sa.Text(), nullable=False, server_default="[]"),
    sa.Column("origin", sa.String(200), nullable=False),
    sa.Column("published_at", UTCDateTime(), nullable=False),
    sa.Column("published_by", sa.String(200), nullable=False),
    # Lifecycle status: the one mutable part of a version (its document never changes, except by redaction).
    sa.Column("state", sa.String(16), nullable=False, server_default="draft"),
    sa.Column("state_changed_at", UTCDateTime(), nullable=True),
    sa.Column("state_before", sa.String(16), nullable=True),  # the state a deprecation left (un-deprecate)
    sa.Column("successor", sa.String(500), nullable=True),
    sa.Column("sunset", UTCDateTime(), nullable=True),
    sa.Column("blocked", sa.Text(), nullable=True),  # JSON {reason, at, by} while blocked
    sa.Column("redacted", sa.Text(), nullable=True),  # JSON {reason, at, by} once redacted
    sa.UniqueConstraint("resource_id", "version"),
    sa.UniqueConstraint("resource_id", "semver_key"),
)

version_refs = sa.Table(
    "version_refs",
    metadata,
    sa.Column(
        "version_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("versions.id"),
        primary_key=True,
    ),
    sa.Column("field", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("namespace", sa.String(200), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("selector", sa.String(255), nullable=False),
    sa.Index(None, "kind", "namespace", "name"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column(
        "resource_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("resources.id"),
        primary_key=True,
    ),
    sa.Column("alias", sa.String(63), primary_key=True),
    sa.Column(
        "version_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("versions.id"),
        nullable=False,
    ),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(500), nullable=False),
    sa.Column("details", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("request_id", sa.String(128), nullable=True),
    # The hash chain (domain.auditchain): seq counts per tenant from 1; hash covers prev_hash and the event.
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("client_ip", sa.String(64), nullable=True),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("before_digest", sa.String(71), nullable=True),
    sa.Column("after_digest", sa.String(71), nullable=True),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.UniqueConstraint("tenant_id", "seq"),
    sa.Index(None, "tenant_id", "id"),
)

# One row per tenant: the chain's head. Locking it (last in a transaction) serializes appends.
audit_heads = sa.Table(
    "audit_heads",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # Retention removes events up to anchor_seq; verification starts from their last hash.
    sa.Column("anchor_seq", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("anchor_hash", sa.String(64), nullable=False, server_default="0" * 64),
)

audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
    sa.Index(None, "tenant_id", "seq"),
)

# Read access to a namespace for other tenants: grantee "*" makes it public.
namespace_grants = sa.Table(
    "namespace_grants",
    metadata,
    sa.Column("namespace", sa.String(200), sa.ForeignKey("namespaces.name"), primary_key=True),
    sa.Column("grantee", sa.String(64), primary_key=True),
    sa.Column("granted_at", UTCDateTime(), nullable=False),
    sa.Column("granted_by", sa.String(200), nullable=False),
    sa.Index(None, "grantee"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # NULL for a global key (super admin, e.g. the bootstrap key).
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=True, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    # sha256 of the whole key: keys carry 256 random bits, so a fast hash is as strong as a slow one.
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("roles", sa.Text(), nullable=False),
    sa.Column("scope", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
)

# Responses remembered for Idempotency-Key replays (per principal, for a day).
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("principal", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status", sa.Integer(), nullable=False),
    sa.Column("headers", sa.Text(), nullable=False),
    sa.Column("body", sa.LargeBinary(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
)


def _version_fk() -> sa.Column[int]:
    return sa.Column(
        "version_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("versions.id"),
        nullable=False,
    )


# --- evidence: immutable attestations about one version ----------------------------------------------

evaluations = sa.Table(
    "evaluations",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    _version_fk(),
    sa.Column("suite", sa.String(200), nullable=False),
    sa.Column("level", sa.String(20), nullable=False),
    sa.Column("score", sa.Float(), nullable=True),
    sa.Column("passed", sa.Boolean(), nullable=False),
    sa.Column("metrics", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("report_url", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Index(None, "version_id", "id"),
)

scans = sa.Table(
    "scans",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    _version_fk(),
    sa.Column("scanner", sa.String(200), nullable=False),
    sa.Column("findings", sa.Text(), nullable=False, server_default="[]"),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Index(None, "version_id", "id"),
)

approvals = sa.Table(
    "approvals",
    metadata,
    sa.Column(
        "version_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("versions.id"),
        primary_key=True,
    ),
    sa.Column("target", sa.String(16), primary_key=True),  # the state approved for
    sa.Column("approver", sa.String(200), primary_key=True),
    sa.Column("roles", sa.Text(), nullable=False, server_default="[]"),
    sa.Column("comment", sa.Text(), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# Usage per (version, reporter, bucket): a report for the same key replaces the previous one (idempotent).
usage_buckets = sa.Table(
    "usage_buckets",
    metadata,
    sa.Column(
        "version_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("versions.id"),
        primary_key=True,
    ),
    sa.Column("reporter", sa.String(200), primary_key=True),
    sa.Column("bucket_start", UTCDateTime(), primary_key=True),
    sa.Column("bucket_seconds", sa.Integer(), nullable=False),
    sa.Column("requests", sa.BigInteger(), nullable=False),
    sa.Column("errors", sa.BigInteger(), nullable=False),
    sa.Column("latency", sa.Text(), nullable=False),  # JSON counts per fixed bucket bound
    sa.Column("callers", sa.LargeBinary(), nullable=False),  # HyperLogLog registers
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index(None, "version_id", "bucket_start"),
)

# --- governance: one policy document per tenant, every revision kept ----------------------------------

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("revision", sa.Integer(), primary_key=True),
    sa.Column("document", sa.Text(), nullable=False),
    sa.Column("digest", sa.String(71), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
)

policy_exemptions = sa.Table(
    "policy_exemptions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("resource", sa.String(500), nullable=False),
    sa.Column("rules", sa.Text(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("approved_by", sa.String(200), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

# --- discovery: sources, the inventory rows they own, and tools introspected from MCP servers ----------

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("config", sa.Text(), nullable=False),  # the source's configuration as JSON
    sa.Column("managed_by", sa.String(10), nullable=False),  # file | api
    sa.Column("state", sa.String(20), nullable=False, server_default="pending"),
    sa.Column("last_sync_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("error_at", UTCDateTime(), nullable=True),
    sa.Column("counts", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("details", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("sync_requested_at", UTCDateTime(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
    sa.Column("source", sa.String(63), sa.ForeignKey("sources.name"), nullable=False),
    sa.Column("cluster", sa.String(200), nullable=False),
    sa.Column("api_group", sa.String(253), nullable=False),
    sa.Column("runtime_kind", sa.String(100), nullable=False),
    sa.Column("runtime_namespace", sa.String(253), nullable=False),
    sa.Column("runtime_name", sa.String(253), nullable=False),
    sa.Column("api_version", sa.String(300), nullable=False),
    sa.Column("uid", sa.String(100), nullable=False, server_default=""),
    sa.Column("environment", sa.String(63), nullable=True),
    sa.Column("catalog_kind", sa.String(20), nullable=True),
    sa.Column("title", sa.Text(), nullable=False, server_default=""),
    sa.Column("observed", sa.Text(), nullable=False),  # the observation as JSON (spec, status, card, ...)
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("health", sa.String(10), nullable=False),
    sa.Column("declared_ref", sa.String(500), nullable=True),
    sa.Column("claim", sa.String(500), nullable=True),  # name@version the runtime claims
    sa.Column("link_state", sa.String(16), nullable=False),
    sa.Column("ref", sa.String(500), nullable=True),
    sa.Column("link_via", sa.String(16), nullable=True),
    sa.Column("link_reason", sa.Text(), nullable=False, server_default=""),
    sa.Column(
        "resource_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("resources.id"),
        nullable=True,
    ),
    sa.Column(
        "version_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("versions.id"),
        nullable=True,
    ),
    sa.Column("overlay_labels", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("overlay_annotations", sa.Text(), nullable=False, server_default="{}"),
    sa.Column("orphaned_at", UTCDateTime(), nullable=True),
    sa.Column("first_seen_at", UTCDateTime(), nullable=False),
    sa.Column("observed_at", UTCDateTime(), nullable=False),  # when what was observed last changed
    sa.UniqueConstraint(
        "tenant_id", "cluster", "api_group", "runtime_kind", "runtime_namespace", "runtime_name"
    ),
    sa.Index(None, "source", "id"),
    sa.Index(None, "resource_id"),
    sa.Index(None, "tenant_id", "id"),
)

# Tools an MCP server listed when asked (introspection), per published version.
version_tools = sa.Table(
    "version_tools",
    metadata,
    sa.Column(
        "version_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("versions.id"),
        primary_key=True,
    ),
    sa.Column("endpoint", sa.Text(), nullable=False),
    sa.Column("tools", sa.Text(), nullable=False),  # [{name, description, inputSchema}]
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("introspected_at", UTCDateTime(), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
)
