"""PPO whose plasticity is regulated by the agent's internal state (`homeostatic_ppo`).

The supervised learner's idea carried into an embodied agent. Events come once per
PPO rollout, from the body, not from labels:

- true direction: the agent's need. If its mean drive (distance of its internal
  state from the set-point, `info["drive"]`) rose since the last rollout, the event
  is excitatory (η up: the world has changed, learn faster); if it fell, inhibitory
  (η down: things go well, consolidate).
- predicted direction (homeostatic rule only): what the agent's critic expected: if
  its mean value estimate fell since the last rollout, it predicted rising need.
- score: the critic's prediction outcome. The homeostatic rule simulates one critic
  update on the new rollout at η and at η moved the predicted way (`lookahead`) and
  scores each by its value error on the previous rollout (recent experience); if the
  moved η scores strictly better, η moves in the true direction.

`plasticity=constant` is plain PPO (same code path, η never moves); `random` is the
LRR control. η reaches PPO through its learning-rate schedule, so SB3's update is
unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from embodied.agent import TrainHooks
from embodied.agents.homeostatic.config import HomeostaticPPOConfig
from embodied.agents.homeostatic.plasticity import Plasticity, lookahead, trainable
from embodied.agents.sb3.agent import SB3Agent
from embodied.errors import ConfigError
from embodied.tensor_state import load_state, save_state


class HomeostaticPPOAgent(SB3Agent):
    """SB3 PPO with a `Plasticity` (η as internal state) updated once per rollout."""

    config: HomeostaticPPOConfig

    def __init__(
        self,
        config: HomeostaticPPOConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: torch.device,
        seed: int = 0,
    ) -> None:
        super().__init__(config, observation_space, action_space, device, seed)
        if config.plasticity == "homeostatic" and not isinstance(observation_space, gym.spaces.Box):
            raise ConfigError(
                "agent.plasticity=homeostatic scores critic updates on flat (Box) observations; use a flat obs_mode or plasticity=random|constant"
            )
        self.plasticity = Plasticity(
            eta=config.learning_rate,
            step=config.plasticity_step * config.learning_rate,
            rule=config.plasticity,
            floor=config.plasticity_floor,
            ceiling=config.plasticity_ceiling,
        )
        self.rng = np.random.default_rng(seed)
        self.previous: dict[str, Any] = {}
        """The last rollout's mean drive, mean value, and a sample of (obs, returns) to score on."""
        self.stats = {"events": 0, "moves": 0, "mean_drive": float("nan")}

    def _build(self, env: Any, buffer_size: int) -> None:
        super()._build(env, buffer_size)
        assert self.model is not None
        self.model.lr_schedule = lambda _progress: self.plasticity.eta

    def _callback(self, hooks: TrainHooks) -> BaseCallback:
        return CallbackList([super()._callback(hooks), _PlasticityCallback(self)])

    # --- one event per rollout -------------------------------------------------------
    def rollout_event(self, drives: list[float]) -> None:
        """Apply the plasticity rule to the rollout SB3 has just collected."""
        assert self.model is not None
        buffer = self.model.rollout_buffer
        obs = torch.as_tensor(
            buffer.observations.reshape(-1, *self.observation_space.shape), dtype=torch.float32, device=self.device
        )
        returns = torch.as_tensor(buffer.returns.reshape(-1), dtype=torch.float32, device=self.device)
        current = {
            "drive": float(np.mean(drives)) if drives else float("nan"),
            "value": float(buffer.values.mean()),
            "sample": self._sample(obs, returns),
        }
        self.stats["mean_drive"] = current["drive"]
        if self.previous and np.isfinite(current["drive"]) and np.isfinite(self.previous["drive"]):
            true_direction = 1 if current["drive"] > self.previous["drive"] else -1
            predicted_direction = 1 if current["value"] < self.previous["value"] else -1
            score = (
                self._critic_score(*current["sample"], *self.previous["sample"])
                if self.plasticity.rule == "homeostatic"
                else None
            )
            self.stats["events"] += 1
            self.stats["moves"] += int(self.plasticity.decide(true_direction, self.rng, predicted_direction, score))
        self.previous = current

    def _sample(self, obs: torch.Tensor, returns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = min(len(obs), self.config.lookahead_samples)
        idx = torch.as_tensor(self.rng.choice(len(obs), n, replace=False), device=obs.device)
        return obs[idx], returns[idx]

    def _critic_score(
        self, obs: torch.Tensor, returns: torch.Tensor, recent_obs: torch.Tensor, recent_returns: torch.Tensor
    ):
        """score(lr): minus the value error on the previous rollout after one critic step at lr."""
        assert self.model is not None
        policy = self.model.policy
        params = trainable(policy.parameters())
        loss = torch.nn.functional.mse_loss(policy.predict_values(obs).flatten(), returns) * self.config.vf_coef
        grads = [
            g if g is not None else torch.zeros_like(p)
            for g, p in zip(torch.autograd.grad(loss, params, allow_unused=True), params)
        ]

        def recent_error() -> float:
            return -float(torch.nn.functional.mse_loss(policy.predict_values(recent_obs).flatten(), recent_returns))

        return lambda lr: lookahead(params, policy.optimizer, grads, lr, recent_error)

    def training_metrics(self) -> dict[str, float]:
        out = super().training_metrics()
        out.update(
            {
                "charts/plasticity_eta": self.plasticity.eta,
                "charts/plasticity_events": float(self.stats["events"]),
                "charts/plasticity_moves": float(self.stats["moves"]),
                "charts/rollout_mean_drive": self.stats["mean_drive"],
            }
        )
        return out

    # --- checkpoints: SB3's state plus the internal state ------------------------------
    def save(self, directory: Path) -> None:
        super().save(directory)
        previous = {k: v for k, v in self.previous.items() if k != "sample"}
        if "sample" in self.previous:
            previous["sample_obs"], previous["sample_returns"] = self.previous["sample"]
        save_state(
            {
                "eta": self.plasticity.eta,
                "stats": self.stats,
                "rng": self.rng.bit_generator.state,
                "previous": previous,
            },
            directory,
            "plasticity",
        )

    def load(self, directory: Path) -> None:
        super().load(directory)
        try:
            state = load_state(directory, "plasticity")
        except (OSError, ValueError) as err:
            from embodied.errors import CheckpointError

            raise CheckpointError(f"checkpoint '{directory}' lacks the plasticity state ({err})") from None
        self.plasticity.eta = float(state["eta"])
        self.stats = dict(state["stats"])
        self.rng.bit_generator.state = state["rng"]
        previous = dict(state["previous"])
        if "sample_obs" in previous:
            previous["sample"] = (
                previous.pop("sample_obs").to(self.device),
                previous.pop("sample_returns").to(self.device),
            )
        self.previous = previous


class _PlasticityCallback(BaseCallback):
    """Collects the drive each step and triggers one plasticity event per rollout."""

    def __init__(self, agent: HomeostaticPPOAgent) -> None:
        super().__init__()
        self.agent = agent
        self.drives: list[float] = []

    def _on_step(self) -> bool:
        key = self.agent.config.drive_key
        self.drives.extend(float(info[key]) for info in self.locals.get("infos", ()) if key in info)
        return True

    def _on_rollout_end(self) -> None:
        self.agent.rollout_event(self.drives)
        self.drives = []
