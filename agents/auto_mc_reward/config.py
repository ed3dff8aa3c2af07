"""Config schema of `embodied-design-reward` (the Auto MC-Reward loop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from embodied.config import check_isolation
from embodied.errors import ConfigError
from embodied.llm.config import LLMConfig


@dataclass
class DesignTrainConfig:
    """How each iteration's reward is trained and measured (an `embodied-train` run)."""

    experiment: Optional[str] = None
    """embodied-train experiment; None: ppo_crafter_<task in snake case>."""
    total_steps: int = 100_000
    """PPO budget per iteration."""
    seed: int = 0
    jobs: int = 1
    """Candidates trained at once (each an embodied-train process with one torch thread)."""
    overrides: list[str] = field(default_factory=list)
    """Extra embodied-train overrides, e.g. [eval.episodes=20, env.num_envs=4]."""


@dataclass
class PromptConfig:
    """What the Designer's prompt adds to the paper's six parts (their effect: benchmarks/prompt_acceptance.py)."""

    example_view: bool = True
    """Show a real view (JSON) from a recorded episode beside the key descriptions."""
    worked_example: bool = True
    """Show the hand-written reward of a *different* task as an example of the format."""


@dataclass
class DesignConfig:
    """The root config of embodied-design-reward."""

    task: str = "CollectWood"
    """CollectWood, EatCow or DiamondLava (Survival has no single goal to shape)."""
    iterations: int = 3
    """Design -> critique -> train -> analyse rounds; fitness is the task's success rate."""
    samples: int = 2
    """Candidate designs drawn per iteration (Eureka's K); every accepted one is trained, the fittest kept."""
    revisions: int = 3
    """Critic -> Designer revisions per candidate before it is given up."""
    view_episodes: int = 4
    """Random-policy episodes whose views the Critic executes each design on."""
    view_seed: int = 0
    scale_constraint: bool = True
    """Train on sgn(sparse) + 0.1 sgn(dense), as in the paper."""
    timeout_s: float = 1.0
    """Sandbox limit for one batched reward call."""
    memory_mb: int = 512
    """Sandbox worker address-space limit."""
    isolation: str = "kernel"
    """Sandbox isolation for the Critic's execution and for training (reward.isolation): kernel, or
    python where the kernel refuses seccomp (Python-level layers only; warned in the log and summary.json)."""
    run_dir: Optional[str] = None
    """Output folder; None: runs/<date>/<time>_design_<task>."""
    resume: bool = False
    """Continue the run in run_dir from its first unfinished iteration (stored LLM answers are reused)."""
    train: DesignTrainConfig = field(default_factory=DesignTrainConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)

    def __post_init__(self) -> None:
        from embodied.envs.minecraft.tasks import get_task

        check_isolation(self.isolation, "isolation")
        if get_task(self.task).achievement is None:
            raise ConfigError(
                f"task '{self.task}' has no goal to design a reward for; use CollectWood, EatCow or DiamondLava"
            )
        if self.iterations < 1 or self.samples < 1 or self.revisions < 0 or self.view_episodes < 1:
            raise ConfigError("iterations, samples and view_episodes must be >= 1 and revisions >= 0")
        if self.train.jobs < 1:
            raise ConfigError(f"train.jobs must be >= 1, got {self.train.jobs}")
        if self.resume and not self.run_dir:
            raise ConfigError("resume=true needs run_dir=<the design run to continue>")
