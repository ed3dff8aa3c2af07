"""The agent registry: one line per agent, imported lazily.

A new agent is a folder `agents/<name>/` with `config.py` (a dataclass subclassing
`embodied.config.AgentConfig`), `model.py`, `agent.py` (a subclass of
`embodied.agent.Agent`) and one `AgentSpec` line here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentSpec:
    config: str
    """"module:Class" of the config dataclass."""
    agent: str
    """"module:Class" of the Agent implementation."""


REGISTRY: dict[str, AgentSpec] = {
    "sac": AgentSpec("embodied.agents.sb3.config:SACConfig", "embodied.agents.sb3.agent:SB3Agent"),
    "ppo": AgentSpec("embodied.agents.sb3.config:PPOConfig", "embodied.agents.sb3.agent:SB3Agent"),
    "act": AgentSpec("embodied.agents.act_jepa.config:ACTConfig", "embodied.agents.act_jepa.agent:ACTAgent"),
    "act_jepa": AgentSpec("embodied.agents.act_jepa.config:ACTJEPAConfig", "embodied.agents.act_jepa.agent:ACTAgent"),
    "ptp": AgentSpec("embodied.agents.ptp.config:PTPConfig", "embodied.agents.ptp.agent:PTPAgent"),
    "slim": AgentSpec("embodied.agents.slim.config:SLIMConfig", "embodied.agents.slim.agent:SLIMAgent"),
    "homeostatic_ppo": AgentSpec(
        "embodied.agents.homeostatic.config:HomeostaticPPOConfig",
        "embodied.agents.homeostatic.agent:HomeostaticPPOAgent",
    ),
}
