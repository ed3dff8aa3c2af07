"""Config schema of the long-context diffusion policy with Past-Token Prediction (`ptp`).

Defaults follow Torne et al. (2025), "Learning Long-Context Diffusion Policies via
Past-Token Prediction", which builds on Diffusion Policy's transformer (Chi et al., 2023):
16 observation steps, a 32-token action sequence spanning past and future, a DiT head
with 8 layers, width 256, 4 heads and attention dropout 0.3, DDPM training with 100
steps and the squaredcos_cap_v2 schedule, DDIM sampling at test time, EMA weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from embodied.errors import ConfigError
from embodied.imitation import ImitationConfig

SAMPLERS = ("ddim", "ddpm")


@dataclass
class PTPConfig(ImitationConfig):
    """A diffusion-transformer policy; PTP, multistage training and self-verification are switches."""

    name: str = "ptp"
    lr: float = 1e-4
    weight_decay: float = 1e-3
    batch_size: int = 64
    normalization: str = "min_max"
    """Diffusion Policy scales actions to [-1, 1] (clip_sample keeps samples there)."""

    # --- context and action sequence ------------------------------------------------
    n_obs_steps: int = 16
    """Observation history: frames t-n_obs_steps+1 .. t condition the head."""
    horizon: int = 32
    """Action tokens denoised per query: the n_obs_steps-1 past ones, the current one and the future."""
    n_action_steps: int = 8
    """Actions executed per query (from the current token on)."""

    # --- head --------------------------------------------------------------------------
    layers: int = 8
    dim: int = 256
    heads: int = 4
    attn_dropout: float = 0.3
    emb_dropout: float = 0.0
    embed_dim: int = 256
    """Per-frame observation embedding (the encoder's output, and what stage 2 caches)."""
    crop_fraction: float = 0.9
    """Pixel observations: random crop of this fraction in training, centre crop at test."""

    # --- diffusion ---------------------------------------------------------------------
    train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    sampler: str = "ddim"
    """ddim (with `inference_steps`) or ddpm (all `train_timesteps`)."""
    inference_steps: int = 10
    ema: bool = True
    """Evaluate with an exponential moving average of the weights (Diffusion Policy's schedule)."""
    ema_power: float = 0.75
    ema_max: float = 0.9999

    # --- the three contributions -------------------------------------------------------
    ptp: bool = True
    """Past-Token Prediction: keep the past action tokens in the denoising loss."""
    past_steps_reg: int = -1
    """With ptp: how many of the most recent past tokens are supervised (-1: all)."""
    multistage: bool = False
    """Stage 1 trains the encoder with a short context, stage 2 caches one embedding per
    frame (keyed by the encoder's checksum), stage 3 trains the head on cached embeddings."""
    stage1_steps: int = 0
    """Gradient updates of stage 1 (multistage); stage 3 gets total_updates - stage1_steps."""
    stage1_obs_steps: int = 2
    """Observation history of the stage-1 (short-context) head."""
    embedding_cache: str = ""
    """Explicit embedding cache to train stage 3 on (default: the dataset's cache for this
    encoder, written by stage 2). A cache made by another encoder is refused."""
    verify_samples: int = 1
    """Self-verification: K candidates per query; the one whose predicted past best matches
    the executed actions is executed (1: off)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_obs_steps < 1 or self.horizon < self.n_obs_steps:
            raise ConfigError(
                f"need 1 <= agent.n_obs_steps <= agent.horizon, got {self.n_obs_steps} and {self.horizon}"
            )
        if not 1 <= self.n_action_steps <= self.horizon - self.n_obs_steps + 1:
            raise ConfigError(
                f"agent.n_action_steps must be in [1, horizon - n_obs_steps + 1 = {self.horizon - self.n_obs_steps + 1}], got {self.n_action_steps}"
            )
        if self.dim % self.heads:
            raise ConfigError(f"agent.dim ({self.dim}) must be divisible by agent.heads ({self.heads})")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"agent.sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if not 1 <= self.inference_steps <= self.train_timesteps:
            raise ConfigError(
                f"agent.inference_steps must be in [1, train_timesteps={self.train_timesteps}], got {self.inference_steps}"
            )
        if self.past_steps_reg < -1 or self.past_steps_reg > self.n_obs_steps - 1:
            raise ConfigError(
                f"agent.past_steps_reg must be -1 (all) or in [0, n_obs_steps - 1 = {self.n_obs_steps - 1}], got {self.past_steps_reg}"
            )
        if self.verify_samples < 1:
            raise ConfigError(f"agent.verify_samples must be >= 1, got {self.verify_samples}")
        if self.multistage and not 1 <= self.stage1_obs_steps <= self.n_obs_steps:
            raise ConfigError(
                f"agent.stage1_obs_steps must be in [1, n_obs_steps={self.n_obs_steps}], got {self.stage1_obs_steps}"
            )
        if self.multistage and self.stage1_steps < 1:
            raise ConfigError(
                "agent.multistage=true needs agent.stage1_steps >= 1 (the encoder's short-context training)"
            )

    @property
    def past_tokens(self) -> int:
        """Past action tokens in the sequence (before the current one)."""
        return self.n_obs_steps - 1

    @property
    def supervised_past(self) -> int:
        """How many of the most recent past tokens the loss (and self-verification) uses."""
        if not self.ptp:
            return 0
        return self.past_tokens if self.past_steps_reg < 0 else self.past_steps_reg
