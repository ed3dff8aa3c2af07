"""Config schemas of the manipulation env families (kept free of heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass, field

from embodied.config import EnvConfig
from embodied.errors import ConfigError


@dataclass
class CameraObsConfig(EnvConfig):
    """Observation and video fields of the MuJoCo manipulation envs; each family adds its cameras."""

    obs_mode: str = "state"
    """state, pixels or state+pixels."""
    image_size: list[int] = field(default_factory=lambda: [64, 64])
    """(height, width) of observation images."""
    render_size: list[int] = field(default_factory=lambda: [256, 256])
    """(height, width) of video frames."""
    render_quality: str = "auto"
    """Observation images: fast (no shadows, reflections, skybox or multisampling; simplified meshes),
    full (the model's own look) or auto (fast on software GL, i.e. without a GPU)."""
    video_quality: str = "full"
    """The same choice for video frames."""


@dataclass
class MetaWorldObsConfig(CameraObsConfig):
    """Observation and video fields shared by the single- and multi-task Meta-World schemas."""

    cameras: list[str] = field(default_factory=lambda: ["corner"])
    """Cameras rendered into pixel observations."""
    render_camera: str = "corner"
    """Camera used for videos."""


@dataclass
class MetaWorldConfig(MetaWorldObsConfig):
    """`embodied/MetaWorld-<task>-v0`: every field below is passed to the env."""

    family: str = "metaworld"
    id: str = "embodied/MetaWorld-${env.task}-v0"
    task: str = "reach"
    """Meta-World v3 task without the version suffix, e.g. reach, door-open."""


@dataclass
class MetaWorldMultiTaskConfig(MetaWorldObsConfig):
    """`embodied/MetaWorld-<suite>-v0`: one env over a suite's tasks, a one-hot `task` observation; every field below is passed to the env."""

    family: str = "metaworld_multitask"
    id: str = "embodied/MetaWorld-${env.suite}-v0"
    suite: str = "MT15"
    """MT10, MT15 (ACT-JEPA's split) or MT50; see embodied.envs.manipulation.metaworld_multitask.SUITES."""


@dataclass
class MemoryPickPlaceConfig(CameraObsConfig):
    """`embodied/MemoryPickPlace-v0`: put the cube on the pad a lamp showed only at the start; every field below is passed to the env."""

    family: str = "memory_pick_place"
    id: str = "embodied/MemoryPickPlace-v0"
    cameras: list[str] = field(default_factory=lambda: ["front"])
    """Cameras rendered into pixel observations: front, top."""
    render_camera: str = "front"
    """Camera used for videos."""
    cue_steps: int = 3
    """Observations (from the reset one on) during which the lamp shows the target pad."""

    def __post_init__(self) -> None:
        if self.cue_steps < 1:
            raise ConfigError(
                f"env.cue_steps must be >= 1 (the lamp must be lit at least on the reset observation), got {self.cue_steps}"
            )


@dataclass
class TabletopConfig(CameraObsConfig):
    """`embodied/Tabletop-v0`: push a cube around a finite table (skill discovery, safety events in `info`); every field below is passed to the env."""

    family: str = "tabletop"
    id: str = "embodied/Tabletop-v0"
    cameras: list[str] = field(default_factory=lambda: ["front"])
    """Cameras rendered into pixel observations: front, top."""
    render_camera: str = "front"
    """Camera used for videos."""
    speed_limit: float = 0.5
    """Hand speed (m/s) above which info["speed_violation"] fires."""
    goal_in_obs: bool = False
    """Append the goal xy to the state observation (goal-conditioned RL)."""
    hand_start: str = "beside"
    """beside: the hand starts at pushing height 8-12 cm from the cube; above: 0.12 m over the table centre (Fetch-like)."""

    def __post_init__(self) -> None:
        if self.speed_limit <= 0:
            raise ConfigError(f"env.speed_limit must be > 0 (m/s), got {self.speed_limit}")
