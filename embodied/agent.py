"""The one interface every agent implements (Stable-Baselines3's shape).

`embodied.train` owns the run: it builds envs and the agent, and passes a
`TrainHooks` into `Agent.learn`. The agent calls `hooks.on_step` after every env
step with the metrics it has; the hooks log, checkpoint and decide when to stop.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar, Protocol

import gymnasium as gym
import numpy as np
import torch

from embodied.config import AgentConfig


class TrainHooks(Protocol):
    """What the training loop offers an agent while it learns."""

    def on_step(self, step: int, metrics: dict[str, float] | None = None) -> bool:
        """Called after env step `step` (counted over all envs); False asks the agent to stop."""

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Record metrics (flat names: charts/*, losses/*) at `step`."""


class Agent(abc.ABC):
    """Base class: constructor, learn, act, save, load, and the hooks the trainer calls (all declared here).

    `embodied.train` uses nothing else of an agent: `training_metrics` after learning,
    `final_metrics` and `final_report` after evaluation, `include_replay_buffer` before the
    first checkpoint, and the class attributes below before the agent is built.
    """

    multi_process: ClassVar[bool] = False
    """Whether it trains under `torchrun` with several processes (DDP); others refuse in one line."""
    exact_resume: ClassVar[bool] = False
    """Whether a run interrupted and resumed from a checkpoint trains to exactly the weights of an
    uninterrupted one. RL agents start fresh episodes on resume (envs are not checkpointed), so
    they continue from the checkpoint's weights, optimiser and buffer but not bit for bit."""
    step_unit: ClassVar[str] = "env steps"
    """What the budget and `num_steps` count: "env steps" (RL: `total_steps`) or "gradient updates" (`total_updates`)."""

    def __init__(
        self,
        config: AgentConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: torch.device,
        seed: int = 0,
    ) -> None:
        """
        Args:
            config: the agent's dataclass config (its schema in the agent's config.py).
            observation_space: observation space of one env.
            action_space: action space of one env.
            device: torch device for the agent's networks.
            seed: seed for the agent's own randomness.
        """
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        self.device = device
        self.seed = seed
        self.num_steps = 0
        self.final_metrics: dict[str, float] = {}
        """What the agent measured once after training without envs (e.g. a world-model probe); logged and summarised."""
        self.include_replay_buffer = True
        """Whether checkpoints hold the replay buffer (`checkpoint.replay_buffer`); agents without one ignore it."""

    @abc.abstractmethod
    def learn(self, env: Any, total_steps: int, hooks: TrainHooks) -> None:
        """Train on `env` until `self.num_steps == total_steps` or hooks ask to stop."""

    @abc.abstractmethod
    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        """Action for one observation (or its history, for agents that keep one)."""

    def reset(self) -> None:
        """Clear per-episode state (observation history, queued action chunks)."""

    def training_metrics(self) -> dict[str, float]:
        """Metrics of the latest update (losses/*, charts/*), logged once more at the end of training."""
        return {}

    def final_report(self, env: Any, run_dir: Path) -> dict[str, float]:
        """Measurements with envs after training and evaluation (e.g. SLIM's skills); may write files into `run_dir`."""
        return {}

    @abc.abstractmethod
    def save(self, directory: Path) -> None:
        """Write model.safetensors, config.json and training-state files into `directory`."""

    @abc.abstractmethod
    def load(self, directory: Path) -> None:
        """Restore everything `save` wrote; raise CheckpointError on a mismatch."""
