"""The permission matrix, checked cell by cell against a table written out by hand from the documented intent.

The expected grid below is deliberately NOT derived from ``MATRIX``: it is the product's intent, typed in
independently, so a change to the matrix must be a change to this table too.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentreg.domain.errors import Forbidden
from agentreg.domain.permissions import (
    MATRIX,
    Action,
    allowed,
    authorize,
    can_grant,
    grant_problem,
    render_markdown,
    scope_allows,
)
from agentreg.domain.principals import ANONYMOUS, TENANT_ROLES, KeyScope, Principal, Role, member

TENANT = "acme"
OTHER = "globex"
SECURITY_MD = Path(__file__).resolve().parents[2] / "docs" / "security.md"

# Columns: super_admin, tenant_admin, developer, operator, analyst, auditor, viewer.
ROLES = ("super_admin", "tenant_admin", "developer", "operator", "analyst", "auditor", "viewer")
# fmt: off
EXPECTED = """
action               SA  TA  DEV OPS ANL AUD VIEW
catalog.read         x   x   x   x   x   x   x
version.publish      x   x   x   .   .   .   .
resource.annotate    x   x   x   .   .   .   .
alias.write          x   x   x   .   .   .   .
promotion.request    x   x   x   .   .   .   .
promotion.approve    x   x   x   .   .   .   .
lifecycle.admin      x   x   .   .   .   .   .
evidence.attest      x   x   x   .   .   .   .
usage.report         x   x   .   x   .   .   .
usage.read           x   x   x   x   x   .   .
instance.report      x   x   .   x   .   .   .
deployment.manage    x   x   .   x   .   .   .
discovery.manage     x   x   .   x   .   .   .
policy.manage        x   x   .   .   .   .   .
audit.read           x   x   .   .   .   x   .
namespace.claim      x   x   .   .   .   .   .
namespace.share      x   x   .   .   .   .   .
key.manage           x   x   .   .   .   .   .
tenant.create        x   .   .   .   .   .   .
"""
# fmt: on


def _grid() -> dict[tuple[str, str], bool]:
    lines = [line.split() for line in EXPECTED.strip().splitlines()[1:]]
    cells: dict[tuple[str, str], bool] = {}
    for action, *marks in lines:
        assert len(marks) == len(ROLES), action
        for role, mark in zip(ROLES, marks, strict=True):
            assert mark in ("x", "."), (action, role, mark)
            cells[(role, action)] = mark == "x"
    return cells


GRID = _grid()


def test_the_grid_covers_every_action_and_role_exactly() -> None:
    assert {a for _, a in GRID} == {a.value for a in Action}
    assert set(ROLES) == {r.value for r in Role}
    assert len(GRID) == len(Action) * len(Role)


def _principal(role: Role, tenant: str = TENANT, scope: KeyScope | None = None) -> Principal:
    if role is Role.SUPER_ADMIN:
        return Principal(subject="root", super_admin=True, scope=scope or KeyScope())
    return member(f"{role.value}@{tenant}", tenant, role, scope=scope or KeyScope())


@pytest.mark.parametrize(("role", "action"), sorted(GRID), ids=[f"{r}-{a}" for r, a in sorted(GRID)])
def test_cell(role: str, action: str) -> None:
    expected = GRID[(role, action)]
    principal = _principal(Role(role))
    tenant = None if action == Action.TENANT_CREATE.value else TENANT
    assert allowed(principal, Action(action), tenant) is expected
    # The same answer with a namespace and resource named, for an unscoped principal.
    assert (
        allowed(principal, Action(action), tenant, namespace="com.acme", resource="agent/com.acme/bot")
        is expected
    )
    if expected:
        authorize(principal, Action(action), tenant)
    else:
        with pytest.raises(Forbidden):
            authorize(principal, Action(action), tenant)


@pytest.mark.parametrize("role", TENANT_ROLES)
@pytest.mark.parametrize("action", list(Action))
def test_roles_in_another_tenant_grant_nothing_here(role: Role, action: Action) -> None:
    elsewhere = member("someone", OTHER, role)
    assert not allowed(elsewhere, action, TENANT)
    assert not allowed(elsewhere, action, None)  # global actions need super_admin


def test_a_tenant_role_grants_no_global_action() -> None:
    admin = member("admin", TENANT, *TENANT_ROLES)
    assert not allowed(admin, Action.TENANT_CREATE, None)
    assert not allowed(admin, Action.TENANT_CREATE, TENANT)


def test_roles_combine_within_a_tenant_only() -> None:
    both = Principal(
        subject="multi",
        memberships={TENANT: frozenset({Role.VIEWER}), OTHER: frozenset({Role.DEVELOPER})},
    )
    assert allowed(both, Action.PUBLISH, OTHER)
    assert not allowed(both, Action.PUBLISH, TENANT)
    assert allowed(both, Action.READ, TENANT)


def test_anonymous_is_the_default_tenants_admin_only() -> None:
    assert allowed(ANONYMOUS, Action.PUBLISH, "default")
    assert allowed(ANONYMOUS, Action.NAMESPACE_CLAIM, "default")
    assert not allowed(ANONYMOUS, Action.TENANT_CREATE, None)
    assert not allowed(ANONYMOUS, Action.READ, TENANT)


def test_a_principal_without_a_tenant_may_do_nothing_tenant_scoped() -> None:
    nobody = Principal(subject="nobody")
    for action in Action:
        assert not allowed(nobody, action, TENANT)
        assert not allowed(nobody, action, None)


# --- key scopes -------------------------------------------------------------------------------------------


def test_scope_actions_narrow() -> None:
    scope = KeyScope(actions=frozenset({"catalog.read"}))
    dev = _principal(Role.DEVELOPER, scope=scope)
    assert allowed(dev, Action.READ, TENANT)
    assert not allowed(dev, Action.PUBLISH, TENANT)
    root = _principal(Role.SUPER_ADMIN, scope=scope)
    assert not allowed(root, Action.TENANT_CREATE, None)
    assert allowed(root, Action.READ, TENANT)


def test_scope_actions_never_widen() -> None:
    scope = KeyScope(actions=frozenset({"version.publish", "tenant.create"}))
    viewer = _principal(Role.VIEWER, scope=scope)
    assert not allowed(viewer, Action.PUBLISH, TENANT)
    assert not allowed(viewer, Action.READ, TENANT)  # not in the scope, though the role allows it
    admin = _principal(Role.TENANT_ADMIN, scope=scope)
    assert not allowed(admin, Action.TENANT_CREATE, None)


def test_scope_namespaces_narrow() -> None:
    dev = _principal(Role.DEVELOPER, scope=KeyScope(namespaces=frozenset({"com.acme"})))
    assert allowed(dev, Action.PUBLISH, TENANT, namespace="com.acme")
    assert not allowed(dev, Action.PUBLISH, TENANT, namespace="com.acme.other")
    assert not allowed(dev, Action.PUBLISH, TENANT, namespace="org.other")
    # No namespace named (a tenant-wide action): a namespace-scoped key is not enough.
    assert not allowed(dev, Action.PUBLISH, TENANT)
    assert not allowed(
        _principal(Role.TENANT_ADMIN, scope=KeyScope(namespaces=frozenset({"com.acme"}))),
        Action.KEY_MANAGE,
        TENANT,
    )


def test_scope_resources_narrow() -> None:
    scope = KeyScope(resources=frozenset({"agent/com.acme/bot"}))
    dev = _principal(Role.DEVELOPER, scope=scope)
    assert allowed(dev, Action.PUBLISH, TENANT, namespace="com.acme", resource="agent/com.acme/bot")
    assert not allowed(dev, Action.PUBLISH, TENANT, namespace="com.acme", resource="agent/com.acme/other")
    assert not allowed(dev, Action.PUBLISH, TENANT, namespace="com.acme", resource="skill/com.acme/bot")
    assert not allowed(dev, Action.PUBLISH, TENANT, namespace="com.acme")


def test_scope_in_another_tenant_grants_nothing() -> None:
    scope = KeyScope(namespaces=frozenset({"com.acme"}), actions=frozenset({"version.publish"}))
    elsewhere = _principal(Role.DEVELOPER, tenant=OTHER, scope=scope)
    assert not allowed(elsewhere, Action.PUBLISH, TENANT, namespace="com.acme")


def test_scope_allows_directly() -> None:
    assert scope_allows(KeyScope(), Action.PUBLISH, None, None)
    assert not scope_allows(KeyScope(namespaces=frozenset()), Action.READ, "x", "agent/x/y")
    assert not scope_allows(KeyScope(resources=frozenset()), Action.READ, "x", "agent/x/y")
    assert not scope_allows(KeyScope(actions=frozenset()), Action.READ, "x", "agent/x/y")
    both = KeyScope(namespaces=frozenset({"x"}), resources=frozenset({"agent/x/y"}))
    assert scope_allows(both, Action.READ, "x", "agent/x/y")
    assert not scope_allows(both, Action.READ, "z", "agent/x/y")


NAMESPACES = ("com.acme", "org.other", "x")
RESOURCES = ("agent/com.acme/bot", "skill/org.other/triage", "model/x/llama")


def _subset(values: tuple[str, ...]) -> st.SearchStrategy[frozenset[str] | None]:
    return st.none() | st.frozensets(st.sampled_from(values))


scopes = st.builds(
    KeyScope,
    namespaces=_subset(NAMESPACES),
    resources=_subset(RESOURCES),
    actions=_subset(tuple(a.value for a in Action)),
)


@given(
    scope=scopes,
    role=st.sampled_from(list(Role)),
    action=st.sampled_from(list(Action)),
    tenant=st.sampled_from([TENANT, OTHER, None]),
    namespace=st.none() | st.sampled_from(NAMESPACES),
    resource=st.none() | st.sampled_from(RESOURCES),
)
def test_scopes_only_ever_narrow(
    scope: KeyScope,
    role: Role,
    action: Action,
    tenant: str | None,
    namespace: str | None,
    resource: str | None,
) -> None:
    unscoped = _principal(role)
    scoped = _principal(role, scope=scope)
    with_scope = allowed(scoped, action, tenant, namespace=namespace, resource=resource)
    without = allowed(unscoped, action, tenant, namespace=namespace, resource=resource)
    assert not with_scope or without, "a scope widened what the roles allow"
    assert with_scope == (without and scope_allows(scope, action, namespace, resource))


@given(outer=scopes, inner=scopes, action=st.sampled_from(list(Action)))
def test_a_narrower_scope_allows_no_more(outer: KeyScope, inner: KeyScope, action: Action) -> None:
    """Intersecting a scope with another never allows something the first refused."""

    def meet(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
        return b if a is None else a if b is None else a & b

    narrower = KeyScope(
        meet(outer.namespaces, inner.namespaces),
        meet(outer.resources, inner.resources),
        meet(outer.actions, inner.actions),
    )
    for namespace in (None, *NAMESPACES):
        for resource in (None, *RESOURCES):
            if scope_allows(narrower, action, namespace, resource):
                assert scope_allows(outer, action, namespace, resource)


# --- granting roles ---------------------------------------------------------------------------------------


def test_can_grant() -> None:
    root = _principal(Role.SUPER_ADMIN)
    admin = _principal(Role.TENANT_ADMIN)
    every_tenant_role = frozenset(TENANT_ROLES)
    assert can_grant(root, TENANT, frozenset({Role.SUPER_ADMIN}))
    assert can_grant(root, OTHER, every_tenant_role)
    assert can_grant(admin, TENANT, every_tenant_role)
    assert not can_grant(admin, TENANT, frozenset({Role.SUPER_ADMIN}))
    assert not can_grant(admin, TENANT, frozenset({Role.SUPER_ADMIN, Role.VIEWER}))
    assert not can_grant(admin, OTHER, frozenset({Role.VIEWER}))  # admin of acme, not of globex
    for role in TENANT_ROLES:
        if role is Role.TENANT_ADMIN:
            continue
        assert not can_grant(_principal(role), TENANT, frozenset({Role.VIEWER})), role


def test_a_scoped_admin_cannot_grant_outside_its_scope() -> None:
    no_keys = _principal(Role.TENANT_ADMIN, scope=KeyScope(actions=frozenset({"catalog.read"})))
    assert not can_grant(no_keys, TENANT, frozenset({Role.VIEWER}))


def test_a_scoped_super_admin_cannot_mint_keys_unless_its_scope_allows_it() -> None:
    read_only_root = _principal(Role.SUPER_ADMIN, scope=KeyScope(actions=frozenset({"catalog.read"})))
    assert not can_grant(read_only_root, "", frozenset({Role.SUPER_ADMIN}))
    assert not can_grant(read_only_root, TENANT, frozenset({Role.VIEWER}))


def test_a_key_never_mints_a_wider_or_longer_lived_key() -> None:
    later = datetime(2030, 1, 1, tzinfo=UTC)
    sooner = datetime(2029, 1, 1, tzinfo=UTC)
    key_bot = member(
        "bot", TENANT, Role.TENANT_ADMIN, scope=KeyScope(actions=frozenset({"key.manage", "catalog.read"}))
    )
    assert grant_problem(key_bot, KeyScope(), None) == (
        "/scope/actions",
        "must stay within your own key's actions: catalog.read, key.manage",
    )
    assert grant_problem(key_bot, KeyScope(actions=frozenset({"version.publish"})), None) is not None
    assert grant_problem(key_bot, KeyScope(actions=frozenset({"catalog.read"})), None) is None
    expiring = Principal(
        subject="temp", memberships={TENANT: frozenset({Role.TENANT_ADMIN})}, expires_at=sooner
    )
    assert grant_problem(expiring, KeyScope(), None) is not None
    assert grant_problem(expiring, KeyScope(), later) is not None
    assert grant_problem(expiring, KeyScope(), sooner) is None
    assert grant_problem(_principal(Role.TENANT_ADMIN), KeyScope(), None) is None


# --- the documented table ---------------------------------------------------------------------------------


def test_render_markdown_matches_the_grid() -> None:
    rows = render_markdown().strip().splitlines()[2:]
    assert len(rows) == len(Action)
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        action = cells[0].strip("`")
        marks = cells[2:]
        assert marks == ["✓" if GRID[(role, action)] else "" for role in ROLES], action


def test_matrix_roles_are_exactly_the_grid() -> None:
    for role in Role:
        assert {a.value for a in MATRIX[role]} == {a for (r, a), ok in GRID.items() if r == role.value and ok}


def test_docs_security_md_contains_the_rendered_matrix() -> None:
    if not SECURITY_MD.exists():
        pytest.fail(f"{SECURITY_MD} is missing: render it with python -m agentreg.domain.permissions")
    text = SECURITY_MD.read_text()
    found = re.search(r"<!-- matrix:start -->\n(.*?)<!-- matrix:end -->", text, re.DOTALL)
    assert found, "docs/security.md has no <!-- matrix:start --> ... <!-- matrix:end --> block"
    assert found.group(1).strip("\n") == render_markdown().strip("\n"), (
        "docs/security.md is out of date: paste the output of python -m agentreg.domain.permissions"
    )
