"""Typed config schemas for every Hydra group, registered in the ConfigStore.

Each YAML file under `conf/` starts from one of these dataclasses (its defaults list
names `<name>_schema`), so a misspelt key or a value of the wrong type fails at
composition, before anything runs. Agent and env families bring their own schema;
they are listed in `embodied.agents.registry.REGISTRY` and `embodied.envs.registration.FAMILIES`.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from embodied.errors import ConfigError


class Device(str, Enum):
    """Where tensors live: `auto` picks CUDA when available."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


@dataclass
class EnvConfig:
    """Fields every env family shares; family schemas add their env's kwargs."""

    family: str = "???"
    """Env family (a key of embodied.envs.registration.FAMILIES): which schema this config follows."""
    id: str = "???"
    """Gymnasium id, e.g. embodied/MetaWorld-reach-v0."""
    max_episode_steps: Optional[int] = None
    """Episode cap (TimeLimit); None keeps the registered default."""
    num_envs: int = 1
    """Parallel training envs."""
    vectorization: str = "sync"
    """sync (one process) or async (worker processes, each stepping a shard of the envs)."""
    workers: Optional[int] = None
    """Worker processes for async; None: min(num_envs, CPU count)."""


@dataclass
class AgentConfig:
    """Fields every agent shares; each agent's schema subclasses this."""

    name: str = "???"
    """Registry key of the agent (see embodied.agents.REGISTRY)."""


@dataclass
class EvalConfig:
    episodes: int = 10
    """Evaluation episodes at the end of training."""
    video: bool = True
    """Record mp4 videos of evaluation episodes."""
    video_episodes: int = 2
    """How many of the evaluation episodes are recorded."""
    deterministic: bool = True
    """Use the policy's deterministic action."""
    seed_offset: int = 1_000_000
    """Evaluation episodes use seeds seed+offset+i, disjoint from training."""


@dataclass
class CheckpointConfig:
    every: int = 10_000
    """Save a checkpoint every this many env steps (0: only at the end)."""
    keep: int = 3
    """Complete checkpoints kept (oldest pruned first)."""
    replay_buffer: bool = True
    """Include off-policy replay buffers so a resumed run continues exactly."""


def check_isolation(value: str, key: str) -> None:
    """Raise a one-line ConfigError unless `value` is one of the reward sandbox's isolation modes."""
    from embodied.sandbox.sandbox import ISOLATIONS

    if value not in ISOLATIONS:
        raise ConfigError(f"unknown {key} {value!r}; choose from: {', '.join(ISOLATIONS)}")


@dataclass
class RewardConfig:
    """Which reward trains the agent: the env's own, or reward code run in the sandbox."""

    kind: str = "sparse"
    """sparse (the env's reward), handwritten (ours, per task) or designed (a reward.py file)."""
    path: Optional[str] = None
    """The reward file for kind=designed, e.g. an Auto MC-Reward iteration's reward.py."""
    scale_constraint: bool = True
    """Auto MC-Reward's constraint: reward = sgn(components.sparse) + 0.1 sgn(components.dense)."""
    timeout_s: float = 1.0
    """Wall-clock limit for one batched sandbox call."""
    memory_mb: int = 512
    """Address-space limit of the sandbox worker."""
    isolation: str = "kernel"
    """kernel (seccomp required; Landlock and a network namespace where the kernel allows) or
    python (only the Python-level layers, for kernels that refuse seccomp; warned in the log and summary.json)."""

    def __post_init__(self) -> None:
        check_isolation(self.isolation, "reward.isolation")
        kinds = ("sparse", "handwritten", "designed")
        if self.kind not in kinds:
            raise ConfigError(f"unknown reward kind {self.kind!r}; choose from: {', '.join(kinds)}")
        if self.kind == "designed" and not self.path:
            raise ConfigError(
                "reward=designed needs reward.path=<a reward.py file>, e.g. an iteration's runs/.../iterations/1/reward.py"
            )


@dataclass
class Config:
    """The root config of `embodied-train`."""

    seed: int = 0
    """Seeds Python, NumPy, torch and the envs."""
    device: Device = Device.auto
    total_steps: Optional[int] = None
    """Env steps to train an RL agent for (None: 20,000). Imitation agents count total_updates instead."""
    total_updates: Optional[int] = None
    """Gradient updates to train an imitation agent (act, act_jepa, ptp) for (None: 4,000)."""
    run_dir: Optional[str] = None
    """Output folder; None: runs/<date>/<time>_<experiment>."""
    resume: bool = False
    """Continue the run in run_dir from its `last` checkpoint."""
    logger: list[str] = field(default_factory=lambda: ["csv", "tensorboard"])
    """Metric sinks: csv, tensorboard, wandb (optional extra)."""
    log_every: int = 1_000
    """Log training metrics every this many env steps."""
    torch_threads: int = 0
    """CPU threads for torch and BLAS (0: the default; in a parallel sweep, each job's share of the
    cores: cores / joblib n_jobs, submitit cpus_per_task, or Ray num_cpus; see embodied.sweep)."""
    env: Any = None
    agent: Any = None
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        for key in ("total_steps", "total_updates"):
            if getattr(self, key) is not None and getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}")
        if self.log_every <= 0:
            raise ConfigError(f"log_every must be > 0, got {self.log_every}")
        allowed = {"csv", "tensorboard", "wandb"}
        bad = [name for name in self.logger if name not in allowed]
        if bad:
            raise ConfigError(f"unknown logger {bad[0]!r}; choose from: {', '.join(sorted(allowed))}")


BUDGETS = {"env steps": ("total_steps", 20_000), "gradient updates": ("total_updates", 4_000)}
"""Each step unit's budget key and its default."""


def training_budget(config: Config, step_unit: str, agent: str) -> tuple[str, int]:
    """(key, value) of the run's budget in `step_unit`; the other unit's key is refused in one line."""
    key, default = BUDGETS[step_unit]
    (other,) = [k for k, _ in BUDGETS.values() if k != key]
    if getattr(config, other) is not None:
        raise ConfigError(
            f"agent {agent} counts {step_unit}: set {key}=N instead of {other}={getattr(config, other)} "
            f"({other} is for agents that count {'env steps' if other == 'total_steps' else 'gradient updates'})"
        )
    value = getattr(config, key)
    return key, default if value is None else value


def env_schemas() -> dict[str, str]:
    """Each registered env family's schema, "module:Class" (embodied.envs.registration.FAMILIES)."""
    from embodied.envs.registration import FAMILIES

    return {name: family.schema for name, family in FAMILIES.items()}


def load_object(path: str) -> Any:
    """Import "package.module:Name" and return the attribute."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def load_run_config(path: str | Path) -> Config:
    """The typed Config of a finished run, from its resolved `.hydra/config.yaml`."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from embodied.agents import REGISTRY
    from embodied.errors import CheckpointError

    try:
        raw = OmegaConf.load(path)
        env_cls = load_object(env_schemas()[raw.env.family])
        agent_cls = load_object(REGISTRY[raw.agent.name].config)
        base = OmegaConf.structured(Config)
        base.env, base.agent = OmegaConf.structured(env_cls), OmegaConf.structured(agent_cls)
        return OmegaConf.to_object(OmegaConf.merge(base, raw))  # type: ignore[return-value]
    except FileNotFoundError:
        raise CheckpointError(
            f"no run config at '{path}'; is this a run directory written by embodied-train?"
        ) from None
    except (KeyError, OmegaConfBaseException, AttributeError) as err:
        raise CheckpointError(
            f"run config '{path}' does not fit this version of embodied ({' '.join(str(err).split())[:160]})"
        ) from None


_REGISTERED = False


def register_configs() -> None:
    """Store the root schema and every env/agent schema in Hydra's ConfigStore."""
    global _REGISTERED
    if _REGISTERED:
        return
    from embodied.agents.registry import COMMAND_SCHEMAS, REGISTRY

    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    cs.store(group="reward", name="reward_schema", node=RewardConfig)
    from hydra.core.plugins import Plugins

    from hydra_plugins.embodied_sweeper.resumable_sweeper import SWEEPER_NODE, ResumableSweeper

    Plugins.instance().register(ResumableSweeper)  # an editable install hides it from Hydra's plugin scan
    cs.store(group="hydra/sweeper", name="resumable", node=SWEEPER_NODE, provider="embodied")
    for name, path in COMMAND_SCHEMAS.items():
        cs.store(name=f"{name}_schema", node=load_object(path))
    conf_dir = Path(list(importlib.util.find_spec("embodied.conf").submodule_search_locations)[0])
    groups = {"env": env_schemas(), "agent": {name: spec.config for name, spec in REGISTRY.items()}}
    for group, schemas in groups.items():
        for name, path in schemas.items():
            node = load_object(path)
            cs.store(group=group, name=f"{name}_schema", node=node)
            if not (conf_dir / group / f"{name}.yaml").exists():  # the option needs no YAML of its own
                cs.store(group=group, name=name, node=node)
    _REGISTERED = True
