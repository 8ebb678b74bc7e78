"""Row-level security on PostgreSQL: tenant scoping enforced by the database too (a no-op on SQLite).

Every query already filters by tenant in SQL; these policies are the second line of defence. They apply
to the NOLOGIN role ``agentreg_tenant`` only: the store switches to it for a transaction opened with
``readers`` (``SET LOCAL ROLE`` and ``agentreg.tenants``, a comma-separated tenant list or ``*`` for all).
The application's own role owns the tables and bypasses RLS, so unscoped work (migrations, system jobs,
authentication, super admins) is unchanged, and a transaction that never sets ``agentreg.tenants`` while
in ``agentreg_tenant`` sees nothing.

What a scoped transaction may do:

- resources: read its tenants' rows and those in namespaces granted to one of them or to ``*``; write
  only its tenants' rows. Labels, versions, refs and aliases follow their resource.
- audit events, heads and checkpoints, API keys: only its tenants' rows (never a global key).
- namespaces: read every row (names are one global registry, and a claim must see who owns a name);
  write only its tenants' rows. Grants: read those to its tenants, to ``*`` or on its own namespaces;
  write only on its own namespaces.
- tenants: readable (ids are checked across tenants when granting), insertable only as one's own.
- idempotency keys: not granted at all (other principals' stored answers; written outside any scoped
  transaction).

Without CREATEROLE (and no ``agentreg_tenant`` role made by an administrator) this migration installs
nothing and says so in a NOTICE; the store then runs scoped transactions without switching role.

A later migration that adds a table must grant it to ``agentreg_tenant`` (and add policies if it holds
tenant data), or scoped transactions touching it fail with "permission denied".

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLE = "agentreg_tenant"
# The tables scoped transactions read and write (all under policies below). Besides these, the role may
# read tenants and insert its own (a claim makes sure its tenant exists); it never touches
# idempotency_keys (other principals' stored answers) or alembic_version.
TABLES = (
    "namespaces",
    "namespace_grants",
    "resources",
    "resource_labels",
    "versions",
    "version_refs",
    "aliases",
    "audit_events",
    "audit_heads",
    "audit_checkpoints",
    "api_keys",
)

_SETTING = "current_setting('agentreg.tenants', true)"
_LIST = f"string_to_array({_SETTING}, ',')"


def _owns(column: str) -> str:
    """One of the reader's tenants (or every tenant, for '*'). No setting: nobody (NULL is not true)."""
    return f"({column} = ANY ({_LIST}) OR {_SETTING} = '*')"


def _via_resource(table: str, own: bool) -> str:
    """A row of ``table`` follows its resource: visible (through resources' own policy) or owned."""
    owned = f" AND {_owns('r.tenant_id')}" if own else ""
    return f"EXISTS (SELECT 1 FROM resources r WHERE r.id = {table}.resource_id{owned})"


def _own_namespace(table: str) -> str:
    return f"EXISTS (SELECT 1 FROM namespaces n WHERE n.name = {table}.namespace AND {_owns('n.tenant_id')})"


_GRANTED = (
    "EXISTS (SELECT 1 FROM namespace_grants g WHERE g.namespace = resources.namespace"
    f" AND (g.grantee = '*' OR {_owns('g.grantee')}))"
)
_OWN_VERSION = (
    "EXISTS (SELECT 1 FROM versions v JOIN resources r ON r.id = v.resource_id"
    f" WHERE v.id = version_refs.version_id AND {_owns('r.tenant_id')})"
)

# table -> (read: USING for SELECT, or None when the write rule covers reads too; write: USING and WITH
# CHECK for INSERT, UPDATE and DELETE). Correlated EXISTS, not "IN (SELECT ...)": policy quals are never
# pulled up into joins, and IN became a hashed subplan scanning every visible row on each query, where
# EXISTS is one index lookup per row. A lookup through another table goes through that table's policies;
# the chain is versions/aliases/labels/refs -> resources -> namespace_grants -> namespaces, which refers to
# nothing, so there is no recursion.
POLICIES: dict[str, tuple[str | None, str]] = {
    "resources": (f"({_owns('tenant_id')} OR {_GRANTED})", _owns("tenant_id")),
    "resource_labels": (_via_resource("resource_labels", False), _via_resource("resource_labels", True)),
    "versions": (_via_resource("versions", False), _via_resource("versions", True)),
    "version_refs": (
        "EXISTS (SELECT 1 FROM versions v WHERE v.id = version_refs.version_id)",
        _OWN_VERSION,
    ),
    "aliases": (_via_resource("aliases", False), _via_resource("aliases", True)),
    "audit_events": (None, _owns("tenant_id")),
    "audit_heads": (None, _owns("tenant_id")),
    "audit_checkpoints": (None, _owns("tenant_id")),
    "namespaces": ("true", _owns("tenant_id")),
    "namespace_grants": (
        f"(grantee = '*' OR {_owns('grantee')} OR {_own_namespace('namespace_grants')})",
        _own_namespace("namespace_grants"),
    ),
    "api_keys": (None, _owns("tenant_id")),
    "tenants": ("true", _owns("id")),
}
# SELECT gets only the read rule, so reads do not also evaluate the write rule (which implies it).
_WRITES = {
    "insert": "FOR INSERT TO {role} WITH CHECK ({w})",
    "update": "FOR UPDATE TO {role} USING ({w}) WITH CHECK ({w})",
    "delete": "FOR DELETE TO {role} USING ({w})",
}


def _policies(table: str) -> dict[str, str]:
    """Policy name -> what follows ``CREATE POLICY name ON table``."""
    read, write = POLICIES[table]
    if read is None:
        return {f"{table}_all": f"TO {ROLE} USING ({write}) WITH CHECK ({write})"}
    found = {f"{table}_read": f"FOR SELECT TO {ROLE} USING ({read})"}
    found.update({f"{table}_{op_}": rule.format(role=ROLE, w=write) for op_, rule in _WRITES.items()})
    return found


_CREATE_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
            BEGIN
                CREATE ROLE {ROLE} NOLOGIN;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database in this cluster
            END;
        ELSE
            RAISE NOTICE 'agentreg: no CREATEROLE and no role {ROLE}: row-level security not installed';
        END IF;
    END IF;
END
$$
"""

# The role that runs the application switches to the tenant role, so it must be a member.
_JOIN_ROLE = f"""
DO $$
BEGIN
    IF NOT pg_has_role(current_user, '{ROLE}', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT {ROLE} TO %I', current_user);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'agentreg: cannot join role {ROLE}: scoped transactions will not switch to it';
        END;
    END IF;
END
$$
"""


def _role_exists() -> bool:
    return bool(op.get_bind().scalar(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": ROLE}))


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(_CREATE_ROLE)
    if not _role_exists():
        return
    op.execute(_JOIN_ROLE)
    op.execute(f"GRANT USAGE ON SCHEMA {_schema()} TO {ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO {ROLE}")
    op.execute(f"GRANT SELECT, INSERT ON tenants TO {ROLE}")
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {_schema()} TO {ROLE}")
    for table in POLICIES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        for name, clause in _policies(table).items():
            op.execute(f"CREATE POLICY {name} ON {table} {clause}")


def _schema() -> str:
    name = op.get_bind().scalar(sa.text("SELECT quote_ident(current_schema())"))
    return str(name)


def downgrade() -> None:
    """Remove the policies and grants; the role stays (it is shared by every database in the cluster)."""
    if op.get_context().dialect.name != "postgresql":
        return
    for table in POLICIES:
        for name in _policies(table):
            op.execute(f"DROP POLICY IF EXISTS {name} ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    if _role_exists():
        op.execute(f"REVOKE ALL ON {', '.join(TABLES)}, tenants FROM {ROLE}")
        op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {_schema()} FROM {ROLE}")
        op.execute(f"REVOKE USAGE ON SCHEMA {_schema()} FROM {ROLE}")
