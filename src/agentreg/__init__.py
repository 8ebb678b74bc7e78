"""agentreg: a registry and live inventory for agentic infrastructure."""

__version__ = "0.1.0"
