"""Minecraft-like worlds: Crafter-backed tasks and, where installed, real MineDojo.

`register()` only imports the task table, so listing the envs stays cheap; the game
itself (Crafter, numba-compiled world generation) loads when an env is made.
"""

from __future__ import annotations

from embodied.envs.minecraft.tasks import TASKS


def register() -> list[str]:
    """Register `embodied/Crafter-<Task>-v0` for every task, each with its own cap."""
    from embodied.envs.registration import register_variants

    variants = {name: ({"task": name}, task.max_episode_steps) for name, task in TASKS.items()}
    ids = register_variants("embodied/Crafter-{}-v0", "embodied.envs.minecraft.crafter_env:CrafterEnv", variants)
    from embodied.envs.minecraft import minedojo  # registers only where `minedojo` imports

    return ids + minedojo.register()
