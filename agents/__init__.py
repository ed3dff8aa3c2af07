"""Agents of the suite; see `embodied.agents.registry` for how to add one."""

from embodied.agents.registry import REGISTRY, AgentSpec

__all__ = ["REGISTRY", "AgentSpec"]
