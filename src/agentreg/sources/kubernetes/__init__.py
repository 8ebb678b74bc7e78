"""Kubernetes discovery: list + watch of kagent, kmcp, kagenti, agentgateway, inference-extension and llm-d
objects (and annotated workloads) in one cluster, or a dump of one."""

from agentreg.sources.kubernetes.dump import DumpSource
from agentreg.sources.kubernetes.kinds import KINDS, KindSpec
from agentreg.sources.kubernetes.source import KubernetesSource

__all__ = ["KINDS", "DumpSource", "KindSpec", "KubernetesSource"]
