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
    sa.Column("request_id", sa.String(64), nullable=True),
    sa.Index(None, "tenant_id", "id"),
)
