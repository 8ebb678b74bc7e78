"""Lifecycle, evidence and governance: version status columns, resource blocks, evaluations, scans,
approvals, usage buckets, tenant policies and exemptions (with row-level security on PostgreSQL).

Existing versions start in ``draft``, as new ones do under the default policy.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from agentreg.store.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ROLE = "agentreg_tenant"
_SETTING = "current_setting('agentreg.tenants', true)"


def _owns(column: str) -> str:
    return f"({column} = ANY (string_to_array({_SETTING}, ',')) OR {_SETTING} = '*')"


def _via_version(table: str, own: bool) -> str:
    """A row follows its version: visible through versions' own policy, or owned through its resource."""
    if not own:
        return f"EXISTS (SELECT 1 FROM versions v WHERE v.id = {table}.version_id)"
    return (
        "EXISTS (SELECT 1 FROM versions v JOIN resources r ON r.id = v.resource_id"
        f" WHERE v.id = {table}.version_id AND {_owns('r.tenant_id')})"
    )


# A tenant's policy decides how its shared resources resolve, so a tenant reading them (a namespace granted
# to it, or public) reads the owner's policy and exemptions too; only members write them. The API still
# shows a policy document to members only.
_SHARES_WITH_READER = (
    "EXISTS (SELECT 1 FROM namespaces n JOIN namespace_grants g ON g.namespace = n.name"
    " WHERE n.tenant_id = {table}.tenant_id AND (g.grantee = '*' OR " + _owns("g.grantee") + "))"
)


def _policy_read(table: str) -> str:
    return f"({_owns('tenant_id')} OR {_SHARES_WITH_READER.format(table=table)})"


# table -> (read rule, write rule), as in 0003.
POLICIES: dict[str, tuple[str, str]] = {
    "evaluations": (_via_version("evaluations", False), _via_version("evaluations", True)),
    "scans": (_via_version("scans", False), _via_version("scans", True)),
    "approvals": (_via_version("approvals", False), _via_version("approvals", True)),
    "usage_buckets": (_via_version("usage_buckets", False), _via_version("usage_buckets", True)),
    "policies": (_policy_read("policies"), _owns("tenant_id")),
    "policy_exemptions": (_policy_read("policy_exemptions"), _owns("tenant_id")),
}
_WRITES = {
    "insert": "FOR INSERT TO {role} WITH CHECK ({w})",
    "update": "FOR UPDATE TO {role} USING ({w}) WITH CHECK ({w})",
    "delete": "FOR DELETE TO {role} USING ({w})",
}


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _version_fk(primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        "version_id", _id(), sa.ForeignKey("versions.id"), nullable=False, primary_key=primary_key
    )


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=False, server_default="draft"))
        batch.add_column(sa.Column("state_changed_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("state_before", sa.String(16), nullable=True))
        batch.add_column(sa.Column("successor", sa.String(500), nullable=True))
        batch.add_column(sa.Column("sunset", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("blocked", sa.Text(), nullable=True))
        batch.add_column(sa.Column("redacted", sa.Text(), nullable=True))
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("blocked", sa.Text(), nullable=True))
    op.create_table(
        "evaluations",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        _version_fk(),
        sa.Column("suite", sa.String(200), nullable=False),
        sa.Column("level", sa.String(20), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("report_url", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_evaluations_version_id_id", "evaluations", ["version_id", "id"])
    op.create_table(
        "scans",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        _version_fk(),
        sa.Column("scanner", sa.String(200), nullable=False),
        sa.Column("findings", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_scans_version_id_id", "scans", ["version_id", "id"])
    op.create_table(
        "approvals",
        _version_fk(primary_key=True),
        sa.Column("target", sa.String(16), primary_key=True),
        sa.Column("approver", sa.String(200), primary_key=True),
        sa.Column("roles", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("comment", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "usage_buckets",
        _version_fk(primary_key=True),
        sa.Column("reporter", sa.String(200), primary_key=True),
        sa.Column("bucket_start", UTCDateTime(), primary_key=True),
        sa.Column("bucket_seconds", sa.Integer(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("latency", sa.Text(), nullable=False),
        sa.Column("callers", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "ix_usage_buckets_version_id_bucket_start", "usage_buckets", ["version_id", "bucket_start"]
    )
    op.create_table(
        "policies",
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("revision", sa.Integer(), primary_key=True),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "policy_exemptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("resource", sa.String(500), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("approved_by", sa.String(200), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_policy_exemptions_tenant_id", "policy_exemptions", ["tenant_id"])
    _row_level_security()


def _row_level_security() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    if not op.get_bind().scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": ROLE}):
        return  # 0003 installed nothing (no CREATEROLE): nothing to extend
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(POLICIES)} TO {ROLE}")
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {_schema()} TO {ROLE}")
    for table, (read, write) in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_read ON {table} FOR SELECT TO {ROLE} USING ({read})")
        for verb, rule in _WRITES.items():
            op.execute(f"CREATE POLICY {table}_{verb} ON {table} {rule.format(role=ROLE, w=write)}")


def _schema() -> str:
    return str(op.get_bind().scalar(sa.text("SELECT quote_ident(current_schema())")))


def downgrade() -> None:
    for table in ("policy_exemptions", "policies", "usage_buckets", "approvals", "scans", "evaluations"):
        op.drop_table(table)
    with op.batch_alter_table("resources") as batch:
        batch.drop_column("blocked")
    with op.batch_alter_table("versions") as batch:
        for column in (
            "redacted",
            "blocked",
            "sunset",
            "successor",
            "state_before",
            "state_changed_at",
            "state",
        ):
            batch.drop_column(column)
