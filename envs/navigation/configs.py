"""Config schemas of the navigation env families (kept free of heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from embodied.config import EnvConfig
from embodied.errors import ConfigError


@dataclass
class PointMazeConfig(EnvConfig):
    """`embodied/PointMaze-<maze>-v0` over Gymnasium-Robotics: every field below is passed to the env."""

    family: str = "pointmaze"
    id: str = "embodied/PointMaze-${env.maze}-v0"
    maze: str = "UMaze"
    """Open, UMaze, Medium or Large (Gymnasium-Robotics' layouts)."""
    reward: str = "sparse"
    """sparse (1 when within 0.45 of the goal) or dense (exp(-distance))."""
    obs_mode: str = "goal"
    """goal (dict: observation, achieved_goal, desired_goal) or flat (one vector: observation + desired_goal)."""
    continuing_task: bool = False
    """False: reaching the goal ends the episode; True: a new goal is drawn and the episode goes on."""
    render_size: list[int] = field(default_factory=lambda: [256, 256])
    """(height, width) of video frames."""


@dataclass
class ForagingConfig(EnvConfig):
    """`embodied/HomeostaticForaging-v0`: every field below is passed to the env."""

    family: str = "foraging"
    id: str = "embodied/HomeostaticForaging-v0"
    reward: str = "drive"
    """drive (drive reduction, Keramati & Gutkin 2014: D(H_t) - D(H_t+1)) or survival (-1 on death, else 0)."""
    decay: list[float] = field(default_factory=lambda: [0.003, 0.003])
    """Per-step loss of (energy, hydration)."""
    restore: float = 0.25
    """Gain of the variable a consumed resource restores."""
    setpoint: list[float] = field(default_factory=lambda: [0.6, 0.6])
    """The internal state the drive measures distance from."""
    viable: list[float] = field(default_factory=lambda: [0.0, 1.5])
    """The episode ends when a variable reaches either bound (1.5: three items past the setpoint)."""
    drive_n: float = 4.0
    """D(H) = (sum_i |h*_i - h_i|^n)^(1/m), with n > m > 1 (Keramati & Gutkin)."""
    drive_m: float = 3.0
    reward_scale: float = 1.0
    """drive only: the drive reduction is multiplied by this (the optimal policy is unchanged)."""
    death_penalty: float = 0.0
    """drive only: subtracted on the terminating step (0: the telescoped drive of the final state is the only cost of dying)."""
    resources_per_type: int = 6
    """Items of each resource type on the arena; a consumed item respawns elsewhere."""
    start_internal: list[float] = field(default_factory=lambda: [0.3, 0.5])
    """Each internal variable starts uniform in [low, high] (below the setpoint: eating pays at once)."""
    actuation: str = "velocity"
    """velocity (the action is the target velocity, up to 1 m/s) or force (a force against damping)."""
    shift_every: int = 0
    """Concept shift: swap which resource restores which variable every this many env steps (0: never)."""
    shift_schedule: Optional[list[int]] = None
    """Explicit env steps at which the mapping swaps (overrides shift_every), e.g. a second-order schedule."""
    render_size: list[int] = field(default_factory=lambda: [256, 256])
    """(height, width) of video frames."""
    video_quality: str = "full"
    """Video frames: full (the model's own look), fast (see embodied.rendering.RENDER_QUALITIES) or auto."""

    def __post_init__(self) -> None:
        if self.reward not in ("drive", "survival"):
            raise ConfigError(f"env.reward must be drive or survival, got {self.reward!r}")
