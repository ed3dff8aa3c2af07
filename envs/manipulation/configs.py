"""Config schemas of the manipulation env families (kept free of heavy imports)."""
from __future__ import annotations

from dataclasses import dataclass, field

from embodied.config import EnvConfig


@dataclass
class MetaWorldObsConfig(EnvConfig):
    """Observation and video fields shared by the single- and multi-task Meta-World schemas."""

    obs_mode: str = "state"
    """state, pixels or state+pixels."""
    cameras: list[str] = field(default_factory=lambda: ["corner"])
    """Cameras rendered into pixel observations."""
    image_size: list[int] = field(default_factory=lambda: [64, 64])
    """(height, width) of observation images."""
    render_size: list[int] = field(default_factory=lambda: [256, 256])
    """(height, width) of video frames."""
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
