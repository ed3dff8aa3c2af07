"""Navigation: Gymnasium-Robotics point mazes and a homeostatic foraging arena.

`register()` only registers ids; MuJoCo scenes are built when an env is made.
"""

from __future__ import annotations


def register() -> list[str]:
    """Register `embodied/PointMaze-<maze>-v0` and `embodied/HomeostaticForaging-v0`."""
    from embodied.envs.navigation import foraging, point_maze

    return point_maze.register() + foraging.register()
