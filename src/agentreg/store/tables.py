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
