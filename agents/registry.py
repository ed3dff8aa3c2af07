"""The agent registry: one entry per agent, everything else reads it.

A new agent is a folder `agents/<name>/` (`config.py`: a dataclass subclassing
`embodied.config.AgentConfig`; `agent.py`: a subclass of `embodied.agent.Agent`) and one
`AgentSpec` entry here. The entry carries what the rest of the suite needs: the schema
(stored as Hydra's `agent/<name>_schema`, and as the group option `agent=<name>` when no
`conf/agent/<name>.yaml` refines it), the Agent class, and how the performance suite
benchmarks it (`benchmarks/agent_speed.py`, `benchmarks/run_all.py`, and whether it is also
timed at its published size). `tests/test_agent_contract.py` runs the agent contract on
every entry. Strings are "module:Name", imported only when used.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchSpec:
    """How the performance suite times an agent (benchmarks/agent_speed.py)."""

    experiment: str
    """The embodied-train experiment it is timed (and contract-tested) on."""
    overrides: tuple[str, ...] = ()
    demos: tuple[str, ...] = ()
    """embodied-collect arguments (without out=) of its demonstration dataset; empty for RL agents."""
    preset: str = ""
    """Size presets (imitation agents): the PRESETS of benchmarks/<preset>.py."""
    cycle: str = "step"
    """What one update cycle is: "rollout" (n_steps x num_envs env steps), "train_freq" (off-policy), "step"."""
    published_size: bool = False
    """Also timed at the paper's size (--preset paper) in the full budget."""
    notes: str = ""

    @property
    def imitation(self) -> bool:
        return bool(self.demos)


@dataclass(frozen=True)
class AgentSpec:
    config: str
    """"module:Class" of the config dataclass."""
    agent: str
    """"module:Class" of the Agent implementation."""
    bench: BenchSpec


MT15_DEMOS = ("env=embodied/MetaWorld-MT15-v0", "episodes=1", "max_episode_steps=40", "keep_failures=true")
MEMORY_DEMOS = ("env=embodied/MemoryPickPlace-v0", "episodes=10", "stop_on_success=true")
NO_PROBE = ("agent.probe_steps=0", "agent.val_every=0")

REGISTRY: dict[str, AgentSpec] = {
    "sac": AgentSpec(
        "embodied.agents.sb3.config:SACConfig",
        "embodied.agents.sb3.agent:SB3Agent",
        BenchSpec("sac_metaworld_reach", cycle="train_freq", notes="1 env, 1 gradient step per env step"),
    ),
    "ppo": AgentSpec(
        "embodied.agents.sb3.config:PPOConfig",
        "embodied.agents.sb3.agent:SB3Agent",
        BenchSpec("ppo_crafter_collect_wood", cycle="rollout", notes="8 envs, symbolic view"),
    ),
    "act": AgentSpec(
        "embodied.agents.act_jepa.config:ACTConfig",
        "embodied.agents.act_jepa.agent:ACTAgent",
        BenchSpec(
            "act_jepa_metaworld15", ("agent=act", *NO_PROBE), MT15_DEMOS, "act_jepa", published_size=True, notes="state"
        ),
    ),
    "act_jepa": AgentSpec(
        "embodied.agents.act_jepa.config:ACTJEPAConfig",
        "embodied.agents.act_jepa.agent:ACTAgent",
        BenchSpec("act_jepa_metaworld15", NO_PROBE, MT15_DEMOS, "act_jepa", published_size=True, notes="state"),
    ),
    "ptp": AgentSpec(
        "embodied.agents.ptp.config:PTPConfig",
        "embodied.agents.ptp.agent:PTPAgent",
        BenchSpec(
            "ptp_memory",
            ("agent.val_every=0",),
            MEMORY_DEMOS,
            "ptp",
            published_size=True,
            notes="state, DDIM 10 steps, K=1",
        ),
    ),
    "slim": AgentSpec(
        "embodied.agents.slim.config:SLIMConfig",
        "embodied.agents.slim.agent:SLIMAgent",
        BenchSpec("slim_tabletop", cycle="rollout", notes="32 envs"),
    ),
    "homeostatic_ppo": AgentSpec(
        "embodied.agents.homeostatic.config:HomeostaticPPOConfig",
        "embodied.agents.homeostatic.agent:HomeostaticPPOAgent",
        BenchSpec("homeostatic_ppo_foraging", cycle="rollout", notes="8 envs"),
    ),
}

COMMAND_SCHEMAS: dict[str, str] = {
    "design_reward": "embodied.agents.auto_mc_reward.config:DesignConfig",
    "concept_shift": "embodied.agents.homeostatic.config:ConceptShiftConfig",
}
"""Root schemas of the commands built on agents (stored as `<name>_schema` for conf/<name>.yaml)."""
