"""Minecraft-like worlds: Crafter-backed tasks and, where installed, real MineDojo.

`register()` only imports the task table, so listing the envs stays cheap; the game
itself (Crafter, numba-compiled world generation) loads when an env is made.
"""
from __future__ import annotations

import gymnasium as gym

from embodied.envs.minecraft.tasks import TASKS


def register() -> list[str]:
    """Register `embodied/Crafter-<Task>-v0` for every task, each with its own cap."""
    ids = []
    for name, task in TASKS.items():
        env_id = f"embodied/Crafter-{name}-v0"
        gym.register(
            id=env_id,
            entry_point="embodied.envs.minecraft.crafter_env:CrafterEnv",
            kwargs={"task": name},
            max_episode_steps=task.max_episode_steps,
        )
        ids.append(env_id)
    from embodied.envs.minecraft import minedojo  # registers only where `minedojo` imports

    return ids + minedojo.register()
