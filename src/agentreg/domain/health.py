"""One health enum for everything that runs: discovered deployments and registered instances."""

from __future__ import annotations

from enum import StrEnum


class Health(StrEnum):
    PASSING = "passing"
    WARNING = "warning"
    CRITICAL = "critical"
    UNKNOWN = "unknown"


def from_condition(status: str | None) -> Health:
    """A Kubernetes-style condition status (``True``/``False``/``Unknown``) as health."""
    if status == "True":
        return Health.PASSING
    if status == "False":
        return Health.CRITICAL
    return Health.UNKNOWN


def from_replicas(desired: int | None, ready: int | None) -> Health:
    """A workload's replicas: all ready passes, some ready warns, none ready (of some wanted) is critical."""
    if desired is None:
        return Health.UNKNOWN
    ready = ready or 0
    if desired == 0:
        return Health.WARNING  # scaled to zero: present, but nothing serves
    if ready >= desired:
        return Health.PASSING
    return Health.WARNING if ready > 0 else Health.CRITICAL


def worst(*healths: Health) -> Health:
    """The worst of several (critical > warning > unknown > passing); unknown alone stays unknown."""
    order = (Health.CRITICAL, Health.WARNING, Health.UNKNOWN, Health.PASSING)
    for health in order:
        if health in healths:
            return health
    return Health.UNKNOWN
