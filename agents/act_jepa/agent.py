"""ACT-JEPA and ACT as `embodied` agents: loss, EMA target, chunked inference.

Loss (padding masked everywhere):
    action_weight * L1(actions) + jepa_weight * L1(predicted latents, target latents) [ACT-JEPA]
    + kl_weight * KL(q(z | s, a) || N(0, I))                                          [cvae=true]
The target encoder's latents come without gradient; it follows the context encoder
by EMA with a momentum rising linearly from ema_start to ema_end over training.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import numpy as np
import torch

from embodied.agent import TrainHooks
from embodied.agents.act_jepa.config import ACTConfig
from embodied.agents.act_jepa.model import ACTJEPAModel
from embodied.errors import ConfigError
from embodied.imitation import ImitationAgent


def masked_l1(
    pred: torch.Tensor,
    target: torch.Tensor,
    pad: torch.Tensor,
    count: Callable[[torch.Tensor], torch.Tensor] = lambda n: n,
) -> torch.Tensor:
    """Mean |pred - target| over the entries whose (B, T) position is not padding.

    `count` maps the number of such entries to the denominator (ImitationAgent.batch_count
    makes it the global batch's under torchrun)."""
    valid = (~pad).unsqueeze(-1).to(pred.dtype)
    return ((pred - target).abs() * valid).sum() / count(valid.sum() * pred.shape[-1]).clamp_min(1.0)


class ACTAgent(ImitationAgent):
    """`act` (no JEPA branch) and `act_jepa`; the config's `jepa` switch is the only difference."""

    config: ACTConfig

    def build_model(self) -> ACTJEPAModel:
        cfg = self.config
        if "state" not in self.obs_shapes:
            raise ConfigError(
                f"agent '{cfg.name}' needs a 'state' observation for its proprioceptive token; use env.obs_mode=state or state+pixels"
            )
        state_dim = self.obs_shapes["state"][0]
        dims = list(range(state_dim)) if cfg.proprio_dims is None else list(cfg.proprio_dims)
        if not dims or min(dims) < 0 or max(dims) >= state_dim:
            raise ConfigError(f"agent.proprio_dims must index the {state_dim}-d state, got {cfg.proprio_dims}")
        self.proprio_dims = torch.tensor(dims)
        self.cameras = [k for k, shape in self.obs_shapes.items() if len(shape) == 3]
        self.n_tasks = self.obs_shapes["task"][0] if "task" in self.obs_shapes else 1
        image_size = self.obs_shapes[self.cameras[0]][:2] if self.cameras else (64, 64)
        self.queue: deque[np.ndarray] = deque()
        self.ensemble: list[np.ndarray] = []
        return ACTJEPAModel(cfg, self.n_tasks, len(dims), self.action_dim, self.cameras, image_size)

    def window_kwargs(self, future: bool | None = None) -> dict[str, Any]:
        future = self.config.jepa if future is None else future
        keys = ["state", *self.cameras, *(["task"] if "task" in self.obs_shapes else [])]
        return {
            "obs_keys": keys,
            "obs_horizon": 1,
            "action_horizon": self.config.chunk,
            "future_horizon": self.config.chunk if future else 0,
            "future_keys": ["state"],
        }

    # --- inputs -------------------------------------------------------------------
    def inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(task index (B,), proprio state (B, P), images) from a batch with obs_horizon 1."""
        state = batch["obs/state"][:, -1][:, self.proprio_dims.to(self.device)]
        task = (
            batch["obs/task"][:, -1].argmax(-1)
            if "obs/task" in batch
            else torch.zeros(len(state), dtype=torch.long, device=state.device)
        )
        images = {c: batch[f"obs/{c}"][:, -1] for c in self.cameras}
        return task, state, images

    def features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The frozen-encoder representation a probe reads: [state-token output, mean over tokens]."""
        task, state, images = self.inputs(batch)
        memory = self.model.encoder(task, state, images)
        return torch.cat([memory[:, 2 if self.config.cvae else 1], memory.mean(1)], -1)

    # --- training -----------------------------------------------------------------
    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        cfg, model = self.config, self.model
        task, state, images = self.inputs(batch)
        latent = kl = None
        if model.cvae is not None:
            mu, logvar = model.cvae(state, batch["action"], batch["action_is_pad"])
            rows, mine = self.global_rows(len(mu))  # drawn for the global batch: the same with any number of processes
            latent = (
                mu + torch.randn((rows, *mu.shape[1:]), dtype=mu.dtype, device=mu.device)[mine] * (0.5 * logvar).exp()
            )
            kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(-1).mean()
        memory = model.encoder(task, state, images, latent, self.generator if model.training else None)
        action_l1 = masked_l1(model.action_decoder(memory), batch["action"], batch["action_is_pad"], self.batch_count)
        loss = cfg.action_weight * action_l1
        metrics = {"losses/action_l1": action_l1.item()}
        if model.predictor is not None:
            with torch.no_grad():
                future = batch["future/state"][..., self.proprio_dims.to(self.device)]
                target = model.target.encode_sequence(task, future, batch["future_is_pad"])
            jepa_l1 = masked_l1(model.predictor(memory), target.float(), batch["future_is_pad"], self.batch_count)
            loss = loss + cfg.jepa_weight * jepa_l1
            metrics["losses/jepa_l1"] = jepa_l1.item()
            metrics["charts/target_latent_std"] = target.float().std(0).mean().item()
        if kl is not None:
            loss = loss + cfg.kl_weight * kl
            metrics["losses/kl"] = kl.item()
        metrics["losses/loss"] = loss.item()
        return loss, metrics

    def ema_momentum(self) -> float:
        progress = min(self.num_steps / max(self.total_steps, 1), 1.0)
        return self.config.ema_start + (self.config.ema_end - self.config.ema_start) * progress

    def after_update(self) -> dict[str, float]:
        if self.model.target is None:
            return {}
        momentum = self.ema_momentum()
        self.model.update_target(momentum)
        return {"charts/ema_momentum": momentum}

    def after_training(self, train: Any, val: Any, hooks: TrainHooks) -> None:
        if self.config.probe_steps <= 0:
            return
        from embodied.agents.act_jepa.probe import world_model_probe
        from embodied.data import DemoDataset

        if val is None:
            raise ConfigError("agent.probe_steps > 0 needs held-out episodes: set agent.val_fraction > 0")
        dataset = DemoDataset.open(self.config.dataset)
        self.final_metrics = world_model_probe(
            self, dataset, train.episodes, val.episodes, steps=self.config.probe_steps, seed=self.seed
        )

    # --- acting -------------------------------------------------------------------
    def reset(self) -> None:
        self.queue.clear()
        self.ensemble.clear()

    @torch.no_grad()
    def predict_chunk(self, obs: Any) -> np.ndarray:
        """The (chunk, action_dim) actions the policy predicts from one observation."""
        if self.normalizer is None:
            from embodied.errors import CheckpointError

            raise CheckpointError("the agent has no trained model: train it or load a checkpoint first")
        self.model.eval()
        with self.autocast():
            actions = self.model.predict_actions(*self.inputs(self.observation_batch(obs)))[0].float()
        actions = self.normalizer.unnormalize("action", actions).cpu().numpy()
        return np.clip(actions, self.action_space.low, self.action_space.high).astype(np.float32)

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        cfg = self.config
        if cfg.temporal_ensemble:
            self.ensemble = [c[1:] for c in self.ensemble if len(c) > 1]  # age every earlier chunk by one step
            self.ensemble.append(self.predict_chunk(obs))
            weights = np.exp(-cfg.ensemble_k * np.arange(len(self.ensemble)))
            now = np.stack([c[0] for c in self.ensemble])
            return (weights[:, None] * now).sum(0) / weights.sum()
        if not self.queue:
            self.queue.extend(self.predict_chunk(obs)[: cfg.n_action_steps or cfg.chunk])
        return self.queue.popleft()
