"""Config schema of the Crafter env family (kept free of heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass, field

from embodied.config import EnvConfig


@dataclass
class CrafterConfig(EnvConfig):
    """`embodied/Crafter-<task>-v0`: every field below is passed to the env."""

    family: str = "crafter"
    id: str = "embodied/Crafter-${env.task}-v0"
    task: str = "CollectWood"
    """CollectWood, EatCow, DiamondLava or Survival."""
    obs_mode: str = "symbolic"
    """rgb (PPO gets a CNN), symbolic (local grid + inventory: an MLP, no rendering) or rgb+symbolic."""
    image_size: list[int] = field(default_factory=lambda: [64, 64])
    """(height, width) of rgb observations."""
    view: list[int] = field(default_factory=lambda: [9, 9])
    """Crafter's view in cells (width, height), the bottom 2 rows being the inventory bar."""
    area: list[int] = field(default_factory=lambda: [64, 64])
    """World size in cells."""
    reward: str = "sparse"
    """sparse (1 on success) or crafter (Crafter's achievement + health reward)."""
    mc_info: bool = True
    """Build info["mc"], the view reward code reads."""
    render_size: list[int] = field(default_factory=lambda: [256, 256])
    """(height, width) of video frames."""

    def __post_init__(self) -> None:
        from embodied.envs.minecraft.tasks import get_task

        get_task(self.task)  # one line naming the valid tasks, before anything runs
