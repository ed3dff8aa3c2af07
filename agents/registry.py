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
    tiny: tuple[str, ...] = ()
    """Overrides of bench.experiment that make training take seconds: the contract tests' config."""
    tiny_demos: tuple[str, ...] = ()
    """embodied-collect arguments of a few-second demonstration dataset (imitation agents)."""


MT15_DEMOS = ("env=embodied/MetaWorld-MT15-v0", "episodes=1", "max_episode_steps=40", "keep_failures=true")
MEMORY_DEMOS = ("env=embodied/MemoryPickPlace-v0", "episodes=10", "stop_on_success=true")
NO_PROBE = ("agent.probe_steps=0", "agent.val_every=0")
ACT_SIZES = (
    "agent.dim=32",
    "agent.heads=4",
    "agent.ffn=64",
    "agent.encoder_layers=1",
    "agent.predictor_dim=16",
    "agent.predictor_heads=2",
    "agent.predictor_ffn=32",
    "agent.predictor_layers=1",
    "agent.chunk=8",
    "agent.batch_size=8",
)
"""act/act_jepa sizes small enough for tests (tests/test_act_jepa_cli.py uses them too)."""
TINY_ACT = (*ACT_SIZES, "env.max_episode_steps=30", *NO_PROBE)
PTP_SIZES = (
    "agent.dim=32",
    "agent.heads=4",
    "agent.layers=1",
    "agent.embed_dim=32",
    "agent.n_obs_steps=4",
    "agent.horizon=10",
    "agent.n_action_steps=4",
    "agent.batch_size=8",
    "agent.inference_steps=3",
)
"""ptp sizes small enough for tests (tests/test_ptp_cli.py uses them too)."""
TINY_SLIM = (
    "env.num_envs=2",
    "agent.n_steps=8",
    "agent.net_arch=[16,16]",
    "agent.skill_hidden=[16]",
    "agent.batch_size=16",
    "agent.n_epochs=1",
    "agent.skill_epochs=1",
    "env.max_episode_steps=8",
)
TINY_MT15 = ("env=embodied/MetaWorld-MT15-v0", "episodes=1", "max_episode_steps=30", "keep_failures=true")
TINY_PPO = ("env.num_envs=2", "agent.n_steps=16", "agent.batch_size=16", "agent.n_epochs=1", "env.max_episode_steps=20")

REGISTRY: dict[str, AgentSpec] = {
    "sac": AgentSpec(
        "embodied.agents.sb3.config:SACConfig",
        "embodied.agents.sb3.agent:SB3Agent",
        BenchSpec("sac_metaworld_reach", cycle="train_freq", notes="1 env, 1 gradient step per env step"),
        tiny=("agent.learning_starts=16", "agent.batch_size=16", "agent.net_arch=[16,16]", "env.max_episode_steps=20"),
    ),
    "ppo": AgentSpec(
        "embodied.agents.sb3.config:PPOConfig",
        "embodied.agents.sb3.agent:SB3Agent",
        BenchSpec("ppo_crafter_collect_wood", cycle="rollout", notes="8 envs, symbolic view"),
        tiny=(*TINY_PPO, "agent.net_arch=[16]"),
    ),
    "act": AgentSpec(
        "embodied.agents.act_jepa.config:ACTConfig",
        "embodied.agents.act_jepa.agent:ACTAgent",
        BenchSpec(
            "act_jepa_metaworld15", ("agent=act", *NO_PROBE), MT15_DEMOS, "act_jepa", published_size=True, notes="state"
        ),
        tiny=("agent=act", *TINY_ACT),
        tiny_demos=TINY_MT15,
    ),
    "act_jepa": AgentSpec(
        "embodied.agents.act_jepa.config:ACTJEPAConfig",
        "embodied.agents.act_jepa.agent:ACTAgent",
        BenchSpec("act_jepa_metaworld15", NO_PROBE, MT15_DEMOS, "act_jepa", published_size=True, notes="state"),
        tiny=TINY_ACT,
        tiny_demos=TINY_MT15,
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
        tiny=(*PTP_SIZES, "agent.val_every=0", "env.max_episode_steps=20"),
        tiny_demos=("env=embodied/MemoryPickPlace-v0", "episodes=2"),
    ),
    "slim": AgentSpec(
        "embodied.agents.slim.config:SLIMConfig",
        "embodied.agents.slim.agent:SLIMAgent",
        BenchSpec("slim_tabletop", cycle="rollout", notes="32 envs"),
        tiny=TINY_SLIM,
    ),
    "homeostatic_ppo": AgentSpec(
        "embodied.agents.homeostatic.config:HomeostaticPPOConfig",
        "embodied.agents.homeostatic.agent:HomeostaticPPOAgent",
        BenchSpec("homeostatic_ppo_foraging", cycle="rollout", notes="8 envs"),
        tiny=(*TINY_PPO, "agent.net_arch=[16]"),
    ),
}

COMMAND_SCHEMAS: dict[str, str] = {
    "design_reward": "embodied.agents.auto_mc_reward.config:DesignConfig",
    "concept_shift": "embodied.agents.homeostatic.config:ConceptShiftConfig",
}
"""Root schemas of the commands built on agents (stored as `<name>_schema` for conf/<name>.yaml)."""
