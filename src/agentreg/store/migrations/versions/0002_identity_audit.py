"""Identity and audit: API keys, namespace sharing, idempotency keys, and the audit hash chain.

Existing audit events are chained in id order per tenant, so a database from 0001 verifies cleanly.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from agentreg.domain.auditchain import GENESIS, ChainedEvent, chain_hash
from agentreg.store.tables import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.alter_column("request_id", type_=sa.String(128), existing_nullable=True)
        batch.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("client_ip", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("before_digest", sa.String(71), nullable=True))
        batch.add_column(sa.Column("after_digest", sa.String(71), nullable=True))
        batch.add_column(sa.Column("prev_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("hash", sa.String(64), nullable=True))
    op.create_table(
        "audit_heads",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("anchor_seq", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("anchor_hash", sa.String(64), nullable=False, server_default="0" * 64),
    )
    _chain_existing_events()
    with op.batch_alter_table("audit_events") as batch:
        for column in ("seq", "prev_hash", "hash"):
            batch.alter_column(column, existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_audit_events_tenant_id_seq", ["tenant_id", "seq"])
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", _id(), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    op.create_index("ix_audit_checkpoints_tenant_id_seq", "audit_checkpoints", ["tenant_id", "seq"])
    op.create_table(
        "namespace_grants",
        sa.Column("namespace", sa.String(200), sa.ForeignKey("namespaces.name"), primary_key=True),
        sa.Column("grantee", sa.String(64), primary_key=True),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_namespace_grants_grantee", "namespace_grants", ["grantee"])
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id"), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("principal", sa.String(200), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def _chain_existing_events() -> None:
    conn = op.get_bind()
    events = sa.table(
        "audit_events",
        *(sa.column(c) for c in ("id", "tenant_id", "actor", "action", "target", "details", "request_id")),
        sa.column("at", UTCDateTime()),
        *(sa.column(c) for c in ("seq", "prev_hash", "hash")),
    )
    heads: dict[str, tuple[int, str]] = {}
    for row in conn.execute(sa.select(events).order_by(events.c.id)).mappings():
        seq, prev = heads.get(row["tenant_id"], (0, GENESIS))
        at = row["at"]
        if isinstance(at, str):  # SQLite without the type's result processing
            at = datetime.fromisoformat(at).replace(tzinfo=UTC)
        event = ChainedEvent(
            row["tenant_id"],
            seq + 1,
            at,
            row["actor"],
            row["action"],
            row["target"],
            json.loads(row["details"]),
            row["request_id"],
            None,
            None,
            None,
            None,
        )
        digest = chain_hash(prev, event)
        conn.execute(
            events.update().where(events.c.id == row["id"]).values(seq=seq + 1, prev_hash=prev, hash=digest)
        )
        heads[row["tenant_id"]] = (seq + 1, digest)
    audit_heads = sa.table("audit_heads", sa.column("tenant_id"), sa.column("seq"), sa.column("hash"))
    for tenant, (seq, digest) in heads.items():
        conn.execute(audit_heads.insert().values(tenant_id=tenant, seq=seq, hash=digest))


def downgrade() -> None:
    for table in ("idempotency_keys", "api_keys", "namespace_grants", "audit_checkpoints", "audit_heads"):
        op.drop_table(table)
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_constraint("uq_audit_events_tenant_id_seq", type_="unique")
        for column in ("hash", "prev_hash", "after_digest", "before_digest", "reason", "client_ip", "seq"):
            batch.drop_column(column)
