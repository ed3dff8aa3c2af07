"""Config schemas of the manipulation env families (kept free of heavy imports)."""
from __future__ import annotations

from dataclasses import dataclass, field

from embodied.config import EnvConfig


@dataclass
class MetaWorldConfig(EnvConfig):
    """`embodied/MetaWorld-<task>-v0`: every field below is passed to the env."""

    family: str = "metaworld"
    id: str = "embodied/MetaWorld-${env.task}-v0"
    task: str = "reach"
    """Meta-World v3 task without the version suffix, e.g. reach, door-open."""
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
