"""Config schemas of ACT-JEPA and its ACT baseline (defaults: the published recipe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from embodied.errors import ConfigError
from embodied.imitation import ImitationConfig


@dataclass
class ACTConfig(ImitationConfig):
    """ACT (Zhao et al., 2023): a transformer that predicts a chunk of future actions.

    The same network as ACT-JEPA without the JEPA branch; `cvae=true` adds the original
    ACT's conditional-VAE style variable.
    """

    name: str = "act"
    chunk: int = 30
    """Actions predicted per query (and future states predicted by the JEPA branch)."""
    dim: int = 512
    """Width of the context encoder, target encoder and action decoder."""
    heads: int = 8
    ffn: int = 2048
    encoder_layers: int = 4
    decoder_layers: int = 1
    """Layers of the action decoder (chunk action queries -> actions)."""
    dropout: float = 0.1
    proprio_dims: Optional[list[int]] = None
    """Which entries of the `state` observation are the proprioceptive input (None: all)."""
    crop_fraction: float = 0.9
    """Pixel mode: random crop of this fraction of each image in training, centre crop at test."""
    jepa: bool = False
    """Predict the target encoder's latents of the next `chunk` states (ACT-JEPA)."""
    action_weight: float = 1.0
    jepa_weight: float = 1.0
    ema_start: float = 0.996
    """EMA momentum of the target encoder at step 0; rises linearly to ema_end."""
    ema_end: float = 1.0
    predictor_dim: int = 128
    predictor_heads: int = 4
    predictor_ffn: int = 512
    predictor_layers: int = 4
    cvae: bool = False
    """The original ACT's CVAE: a transformer encodes (state, action chunk) into a latent style z."""
    latent_dim: int = 32
    kl_weight: float = 10.0
    cvae_layers: int = 4
    n_action_steps: Optional[int] = None
    """Actions executed open-loop from each chunk before re-querying (None: the whole chunk)."""
    temporal_ensemble: bool = False
    """Query every step and average all chunks' predictions for now (ACT's temporal ensembling)."""
    ensemble_k: float = 0.01
    """Ensembling weights exp(-k * i), i = 0 for the oldest prediction."""
    probe_steps: int = 0
    """After training, fit a world-model probe on the frozen encoder for this many steps (0: skip)."""
    probe_position_dims: list[int] = field(default_factory=lambda: [0, 1, 2])
    """State entries whose trajectory error (ATE) the probe reports (Meta-World: the hand xyz)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.chunk < 1:
            raise ConfigError(f"agent.chunk must be >= 1, got {self.chunk}")
        if self.dim % self.heads or self.predictor_dim % self.predictor_heads:
            raise ConfigError(
                "agent.dim must be divisible by agent.heads and agent.predictor_dim by agent.predictor_heads"
            )
        if self.dim % 4:
            raise ConfigError(f"agent.dim must be divisible by 4 (2-D position embedding), got {self.dim}")
        if self.n_action_steps is not None and not 1 <= self.n_action_steps <= self.chunk:
            raise ConfigError(f"agent.n_action_steps must be in [1, chunk={self.chunk}], got {self.n_action_steps}")
        if not 0 <= self.ema_start <= self.ema_end <= 1:
            raise ConfigError(f"need 0 <= agent.ema_start <= agent.ema_end <= 1, got {self.ema_start}, {self.ema_end}")


@dataclass
class ACTJEPAConfig(ACTConfig):
    """ACT-JEPA (Vujinovic & Kovacevic, 2025): ACT plus JEPA prediction of future-state latents."""

    name: str = "act_jepa"
    jepa: bool = True
