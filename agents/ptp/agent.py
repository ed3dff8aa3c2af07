"""Long-context diffusion policy with Past-Token Prediction (Torne et al., 2025) as the `ptp` agent.

The action sequence of a window at time t spans tokens t-To+1 .. t-To+horizon: To-1 past
actions, the current one and the future. Training (DDPM, ε-prediction):

    loss = mean over kept tokens of ||ε - ε_θ(√ᾱ a + √(1-ᾱ) ε, k, frames t-To+1..t)||²
    kept = current and future tokens, plus the last `supervised_past` past tokens (PTP)

Past tokens before the episode start are padding and never kept; future tokens past its
end repeat the last action (edge padding) and are kept, as in Diffusion Policy.

Acting: every `n_action_steps` the head samples the sequence (DDIM or DDPM) from the last
To frame embeddings (each frame is encoded once, when it arrives) and the current and
following actions are executed. Self-verification samples K sequences in one batch and
keeps the one whose predicted past best matches the actions actually executed.

Multistage (`multistage=true`, see `learn`): stage 1 trains the encoder with a short
context, stage 2 writes one embedding per dataset frame (`embedding_cache`), stage 3
trains the long-context head on those embeddings with the encoder frozen.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler  # at import: diffusers' lazy loader is not thread-safe

from embodied import distributed
from embodied.agent import TrainHooks
from embodied.agents.ptp import cache as embedding_cache
from embodied.agents.ptp.config import PTPConfig
from embodied.agents.ptp.model import PTPNetworks, PTPPolicy
from embodied.errors import CheckpointError, ConfigError
from embodied.imitation import ImitationAgent


def loss_mask(action_is_pad: torch.Tensor, past_tokens: int, supervised_past: int) -> torch.Tensor:
    """(B, T) bool: which action tokens the denoising loss keeps.

    Tokens from index `past_tokens` (the current action) on are kept; of the past ones, the
    last `supervised_past`. Padding before the episode start is never kept."""
    index = torch.arange(action_is_pad.shape[1], device=action_is_pad.device)
    keep = index >= past_tokens - supervised_past
    before_start = action_is_pad & (index < past_tokens)
    return keep[None, :] & ~before_start


def select_by_past(candidates: torch.Tensor, executed: torch.Tensor, past_tokens: int) -> int:
    """Index of the candidate (K, T, A) whose predicted past best matches `executed` (P, A).

    `executed` holds the P most recent executed actions (normalised), aligned with tokens
    past_tokens-P .. past_tokens-1; the score is their mean squared error."""
    p = len(executed)
    if p == 0:
        return 0
    predicted = candidates[:, past_tokens - p : past_tokens]
    errors = (predicted - executed[None]).pow(2).mean(dim=(1, 2))
    return int(errors.argmin())


class PTPAgent(ImitationAgent):
    """`ptp`: a DiT diffusion policy over a long observation history (see the module docstring)."""

    config: PTPConfig

    def __init__(self, config: PTPConfig, observation_space, action_space, device: torch.device, seed: int = 0) -> None:
        super().__init__(config, observation_space, action_space, device, seed)
        schedule = dict(
            num_train_timesteps=config.train_timesteps,
            beta_schedule=config.beta_schedule,
            clip_sample=True,
            prediction_type="epsilon",
        )
        self.samplers = {"ddpm": DDPMScheduler(**schedule), "ddim": DDIMScheduler(**schedule)}
        self.noise_scheduler = self.samplers["ddpm"]  # add_noise reads only the fixed training schedule
        self.sample_generator = torch.Generator().manual_seed(seed + 1)
        self.frames: deque[torch.Tensor] = deque(maxlen=config.n_obs_steps)
        self.executed: deque[torch.Tensor] = deque(maxlen=max(config.past_tokens, 1))
        self.queue: deque[np.ndarray] = deque()
        self.cache: np.ndarray | None = None

    def build_model(self) -> PTPPolicy:
        cfg = self.config
        if cfg.verify_samples > 1 and cfg.supervised_past == 0:
            raise ConfigError(
                "agent.verify_samples > 1 scores the predicted past actions, which only Past-Token Prediction trains: set agent.ptp=true (and n_obs_steps > 1)"
            )
        self.obs_keys = sorted(k for k, shape in self.obs_shapes.items() if len(shape) in (1, 3))
        if set(self.obs_keys) != set(self.obs_shapes):
            raise ConfigError(
                f"agent 'ptp' reads flat vectors and HxWxC images; observation shapes {self.obs_shapes} include others"
            )
        net = PTPNetworks(self.obs_shapes, self.action_dim, cfg, cfg.stage1_obs_steps if cfg.multistage else None)
        return PTPPolicy(net, cfg.ema)

    # --- stages ---------------------------------------------------------------------
    @property
    def stage(self) -> int:
        """1: short-context encoder training, 3: head on cached embeddings; 0: end-to-end (no multistage)."""
        if not self.config.multistage:
            return 0
        return 1 if self.num_steps < self.config.stage1_steps else 3

    def schedule_segment(self, step: int) -> tuple[int, int]:
        s1 = self.config.stage1_steps
        if not self.config.multistage:
            return step, self.total_steps
        return (step, s1) if step < s1 else (step - s1, self.total_steps - s1)

    def context(self) -> tuple[int, int]:
        """(observation steps, action tokens) of the head the current stage trains."""
        cfg = self.config
        if self.stage == 1:
            return cfg.stage1_obs_steps, cfg.horizon - (cfg.n_obs_steps - cfg.stage1_obs_steps)
        return cfg.n_obs_steps, cfg.horizon

    def window_kwargs(self) -> dict[str, Any]:
        n_obs, horizon = self.context()
        kwargs: dict[str, Any] = {
            "obs_keys": list(self.obs_keys),
            "obs_horizon": n_obs,
            "action_horizon": horizon,
            "action_offset": -(n_obs - 1),
        }
        if self.stage == 3:
            kwargs.update(obs_keys=["embedding"], arrays={"obs/embedding": self.cache})
        return kwargs

    def learn(self, env: Any, total_steps: int, hooks: TrainHooks) -> None:
        cfg = self.config
        self.total_steps = total_steps
        if not cfg.multistage:
            return super().learn(env, total_steps, hooks)
        if total_steps <= cfg.stage1_steps:
            raise ConfigError(
                f"total_updates ({total_steps}) must exceed agent.stage1_steps ({cfg.stage1_steps}): stage 3 trains the long-context head for the rest"
            )
        if self.stage == 1:
            train, val = self.open_data(env)
            if not self.fit(train, val, cfg.stage1_steps, hooks):
                return
        self.freeze_encoder()
        with distributed.main_first():  # under torchrun rank 0 writes the cache, the others read it
            self.cache = embedding_cache.ensure(self, env)  # stage 2 (reused when it exists for this encoder)
        train, val = self.open_data(env)
        if self.fit(train, val, total_steps, hooks) and distributed.is_main():
            self.after_training(train, val, hooks)

    def freeze_encoder(self) -> None:
        """End of stage 1: the EMA encoder becomes the encoder, frozen (it is what the cache and acting use)."""
        if self.model.ema is not None:
            self.model.net.encoder.load_state_dict(self.model.ema.encoder.state_dict())
        self.model.net.encoder.requires_grad_(False)

    # --- training -------------------------------------------------------------------
    def encode(
        self, batch: dict[str, torch.Tensor], encoder: torch.nn.Module, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, To, E) frame embeddings of a window batch (cached ones in stage 3)."""
        if "obs/embedding" in batch:
            return batch["obs/embedding"].float()
        b, n_obs = batch["action"].shape[0], batch[f"obs/{self.obs_keys[0]}"].shape[1]
        flat = {f"obs/{k}": batch[f"obs/{k}"].flatten(0, 1) for k in self.obs_keys}
        return encoder(flat, generator).reshape(b, n_obs, -1)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        cfg, net = self.config, self.model.net
        # multistage: raw-observation windows are stage 1's (short context), cached ones stage 3's
        head = net.stage1_head if cfg.multistage and "obs/embedding" not in batch else net.head
        frames = self.encode(batch, net.encoder, self.generator if self.model.training else None)
        actions = batch["action"]
        rows, mine = self.global_rows(len(actions))  # drawn for the global batch: the same with any number of processes
        noise = torch.randn((rows, *actions.shape[1:]), generator=self.generator)[mine].to(self.device)
        steps = torch.randint(0, cfg.train_timesteps, (rows,), generator=self.generator)[mine].to(self.device)
        noisy = self.noise_scheduler.add_noise(actions, noise, steps)
        error = (head(noisy, steps, frames).float() - noise).pow(2).mean(-1)
        n_obs = frames.shape[1]
        supervised = min(cfg.supervised_past, n_obs - 1)
        mask = loss_mask(batch["action_is_pad"], n_obs - 1, supervised).to(error.dtype)
        loss = (error * mask).sum() / self.batch_count(mask.sum()).clamp_min(1.0)
        future = error[:, n_obs - 1 :].mean()
        metrics = {"losses/loss": loss.item(), "losses/future_mse": future.item()}
        if n_obs > 1:
            metrics["losses/past_mse"] = error[:, : n_obs - 1].mean().item()
        return loss, metrics

    def ema_decay(self) -> float:
        """Diffusion Policy's EMA warm-up, 1 - (1 + k)^-power capped at ema_max, k counted within the stage."""
        k, _ = self.schedule_segment(self.num_steps)  # called before num_steps counts this update
        return min(1.0 - (1.0 + k) ** -self.config.ema_power, self.config.ema_max)

    def after_update(self) -> dict[str, float]:
        if self.model.ema is None:
            return {}
        decay = self.ema_decay()
        self.model.update_ema(
            decay,
            ("encoder", "stage1_head") if self.stage == 1 else ("head",) if self.stage == 3 else ("encoder", "head"),
        )
        return {"charts/ema_decay": decay}

    def extra_generators(self) -> dict[str, torch.Generator]:
        return {"sample": self.sample_generator}  # the diffusion sampler's noise: loaded agents act the same

    def load(self, directory) -> None:
        super().load(directory)
        if self.config.multistage and self.num_steps >= self.config.stage1_steps:
            self.freeze_encoder()

    # --- acting ---------------------------------------------------------------------
    def reset(self) -> None:
        self.frames.clear()
        self.executed.clear()
        self.queue.clear()

    @torch.no_grad()
    def sample(
        self, frames: torch.Tensor, generator: torch.Generator | None = None, sampler: str | None = None
    ) -> torch.Tensor:
        """Denoise (B, T, A) normalised action sequences conditioned on (B, To, E) frames."""
        cfg = self.config
        name = sampler or cfg.sampler
        scheduler = self.samplers[name]
        scheduler.set_timesteps(cfg.train_timesteps if name == "ddpm" else cfg.inference_steps)
        head = self.model.acting().head.eval()
        x = torch.randn((len(frames), cfg.horizon, self.action_dim), generator=generator).to(self.device)
        for k in scheduler.timesteps:
            with self.autocast():
                eps = head(x, k.to(self.device), frames).float()
            x = scheduler.step(eps, k, x, generator=generator).prev_sample
        return x

    @torch.no_grad()
    def embed(self, obs: Any) -> torch.Tensor:
        """One env observation -> its (E,) frame embedding (computed once per frame)."""
        encoder = self.model.acting().encoder.eval()
        batch = self.observation_batch(obs)
        with self.autocast():
            return encoder({k: v[:, 0] for k, v in batch.items()}).float()[0]

    def plan(self) -> np.ndarray:
        """Sample the action sequence (K candidates once the history is full) and return the actions to execute."""
        cfg = self.config
        frames = torch.stack(list(self.frames))[None]
        history_full = len(self.executed) >= cfg.past_tokens
        k = cfg.verify_samples if history_full and cfg.past_tokens > 0 else 1
        candidates = self.sample(frames.expand(k, -1, -1), self.sample_generator)
        best = 0
        if k > 1:
            past = torch.stack(list(self.executed))[-cfg.supervised_past :]
            best = select_by_past(candidates, past, cfg.past_tokens)
        chosen = candidates[best, cfg.past_tokens : cfg.past_tokens + cfg.n_action_steps].float()
        actions = self.normalizer.unnormalize("action", chosen).cpu().numpy()
        return np.clip(actions, self.action_space.low, self.action_space.high).astype(np.float32)

    def act(self, obs: Any, deterministic: bool = True) -> np.ndarray:
        if self.normalizer is None:
            raise CheckpointError("the agent has no trained model: train it or load a checkpoint first")
        frame = self.embed(obs)
        if not self.frames:  # history before the episode start repeats its first frame, as in training
            self.frames.extend([frame] * self.config.n_obs_steps)
        else:
            self.frames.append(frame)
        if not self.queue:
            self.queue.extend(self.plan())
        action = self.queue.popleft()
        self.executed.append(self.normalizer.normalize("action", torch.as_tensor(action, device=self.device)).float())
        return action
