"""Config schemas of the Stable-Baselines3 baselines (SAC and PPO)."""

from __future__ import annotations

from dataclasses import dataclass, field

from embodied.config import AgentConfig
from embodied.errors import ConfigError


@dataclass
class SB3Config(AgentConfig):
    """Fields both SB3 algorithms share."""

    learning_rate: float = 3e-4
    gamma: float = 0.99
    net_arch: list[int] = field(default_factory=lambda: [256, 256])
    """Hidden layer sizes of the actor and critic MLPs."""
    activation: str = "relu"
    """relu or tanh."""
    normalize_obs: bool = False
    """Standardise observations by running mean and variance (SB3's VecNormalize), clipped to +-10;
    the statistics are saved in checkpoints and applied in act()."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return (VecNormalize): for rewards far from unit scale."""

    def __post_init__(self) -> None:
        if self.activation not in ("relu", "tanh"):
            raise ConfigError(f"agent.activation must be relu or tanh, got {self.activation!r}")
        if self.learning_rate <= 0:
            raise ConfigError(f"agent.learning_rate must be > 0, got {self.learning_rate}")


@dataclass
class SACConfig(SB3Config):
    """Soft Actor-Critic (Haarnoja et al., 2018) through SB3."""

    name: str = "sac"
    buffer_size: int = 1_000_000
    """Replay capacity (capped at total_steps)."""
    learning_starts: int = 1_000
    """Random-action steps before learning starts."""
    batch_size: int = 256
    tau: float = 0.005
    train_freq: int = 1
    gradient_steps: int = 1
    ent_coef: str = "auto"
    """"auto" (learned, target -|A|) or a fixed float as a string."""
    image_shift: int = 0
    """DrQ's augmentation for pixel observations: replay images padded by this many pixels and cropped
    back at a random offset (Yarats et al., 2021 use 4 at 84x84); 0: off. Acting sees unshifted images."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_shift < 0:
            raise ConfigError(f"agent.image_shift must be >= 0 (0: off), got {self.image_shift}")


@dataclass
class PPOConfig(SB3Config):
    """Proximal Policy Optimization (Schulman et al., 2017) through SB3."""

    name: str = "ppo"
    learning_rate: float = 3e-4
    n_steps: int = 1024
    """Rollout length per env before each update."""
    batch_size: int = 64
    n_epochs: int = 10
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    net_arch: list[int] = field(default_factory=lambda: [64, 64])
    activation: str = "tanh"
