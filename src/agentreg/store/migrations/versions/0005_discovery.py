"""Discovery: sources, the inventory rows (deployments) they own, and introspected MCP tools per version
(with row-level security on PostgreSQL).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentreg.store.tables import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ROLE = "agentreg_tenant"
_SETTING = "current_setting('agentreg.tenants', true)"


def _owns(column: str) -> str:
    return f"({column} = ANY (string_to_array({_SETTING}, ',')) OR {_SETTING} = '*')"


_TOOLS_READ = "EXISTS (SELECT 1 FROM versions v WHERE v.id = version_tools.version_id)"
_TOOLS_WRITE = (
    "EXISTS (SELECT 1 FROM versions v JOIN resources r ON r.id = v.resource_id"
    f" WHERE v.id = version_tools.version_id AND {_owns('r.tenant_id')})"
)
# table -> (read rule, write rule), as in 0003: a tenant sees and changes its own sources and rows only.
POLICIES: dict[str, tuple[str, str]] = {
    "sources": (_owns("tenant_id"), _owns("tenant_id")),
    "deployments": (_owns("tenant_id"), _owns("tenant_id")),
    "version_tools": (_TOOLS_READ, _TOOLS_WRITE),
}
_WRITES = {
    "insert": "FOR INSERT TO {role} WITH CHECK ({w})",
    "update": "FOR UPDATE TO {role} USING ({w}) WITH CHECK ({w})",
    "delete": "FOR DELETE TO {role} USING ({w})",
}


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("managed_by", sa.String(10), nullable=False),
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
    op.create_index("ix_sources_tenant_id", "sources", ["tenant_id"])
    op.create_table(
        "deployments",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
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
        sa.Column("observed", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("health", sa.String(10), nullable=False),
        sa.Column("declared_ref", sa.String(500), nullable=True),
        sa.Column("claim", sa.String(500), nullable=True),
        sa.Column("link_state", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(500), nullable=True),
        sa.Column("link_via", sa.String(16), nullable=True),
        sa.Column("link_reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("resource_id", _id(), sa.ForeignKey("resources.id"), nullable=True),
        sa.Column("version_id", _id(), sa.ForeignKey("versions.id"), nullable=True),
        sa.Column("overlay_labels", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("overlay_annotations", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("orphaned_at", UTCDateTime(), nullable=True),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "tenant_id", "cluster", "api_group", "runtime_kind", "runtime_namespace", "runtime_name"
        ),
    )
    op.create_index("ix_deployments_source_id", "deployments", ["source", "id"])
    op.create_index("ix_deployments_resource_id", "deployments", ["resource_id"])
    op.create_index("ix_deployments_tenant_id_id", "deployments", ["tenant_id", "id"])
    op.create_table(
        "version_tools",
        sa.Column("version_id", _id(), sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("tools", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("introspected_at", UTCDateTime(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
    )
    _row_level_security()


def _row_level_security() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    if not op.get_bind().scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": ROLE}):
        return  # 0003 installed nothing (no CREATEROLE): nothing to extend
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(POLICIES)} TO {ROLE}")
    schema = op.get_bind().scalar(sa.text("SELECT quote_ident(current_schema())"))
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {ROLE}")
    for table, (read, write) in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT TO {ROLE} USING ({read})")
        for verb, rule in _WRITES.items():
            op.execute(f"CREATE POLICY {table}_{verb} ON {table} {rule.format(role=ROLE, w=write)}")


def downgrade() -> None:
    for table in ("version_tools", "deployments", "sources"):
        op.drop_table(table)
