"""Initial schema: tenants, namespaces, resources, labels, versions, refs, aliases, audit events.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentreg.store.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "namespaces",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_namespaces_tenant_id", "namespaces", ["tenant_id"])
    op.create_table(
        "resources",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("namespace", sa.String(200), sa.ForeignKey("namespaces.name"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("title", sa.Text(), nullable=False, server_default=""),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("labels", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("annotations", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("latest_version", sa.String(255), nullable=True),
        sa.Column("version_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("kind", "namespace", "name", name="uq_resources_kind_namespace_name"),
    )
    op.create_index(
        "ix_resources_tenant_id_kind_namespace_name", "resources", ["tenant_id", "kind", "namespace", "name"]
    )
    op.create_table(
        "resource_labels",
        sa.Column("resource_id", _id(), sa.ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String(317), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_index("ix_resource_labels_key_value", "resource_labels", ["key", "value"])
    op.create_table(
        "versions",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("resource_id", _id(), sa.ForeignKey("resources.id"), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
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
        sa.UniqueConstraint("resource_id", "version", name="uq_versions_resource_id_version"),
        sa.UniqueConstraint("resource_id", "semver_key", name="uq_versions_resource_id_semver_key"),
    )
    op.create_table(
        "version_refs",
        sa.Column("version_id", _id(), sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("field", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("namespace", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("selector", sa.String(255), nullable=False),
    )
    op.create_index("ix_version_refs_kind_namespace_name", "version_refs", ["kind", "namespace", "name"])
    op.create_table(
        "aliases",
        sa.Column("resource_id", _id(), sa.ForeignKey("resources.id"), primary_key=True),
        sa.Column("alias", sa.String(63), primary_key=True),
        sa.Column("version_id", _id(), sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("details", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("request_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_audit_events_tenant_id_id", "audit_events", ["tenant_id", "id"])


def downgrade() -> None:
    for table in (
        "audit_events",
        "aliases",
        "version_refs",
        "versions",
        "resource_labels",
        "resources",
        "namespaces",
        "tenants",
    ):
        op.drop_table(table)
