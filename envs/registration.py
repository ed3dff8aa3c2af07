"""The env-family registry, and Gymnasium registration of a family's variants (one id per task, maze, ...).

A new env family is its module (with `register() -> list[str]`, the Gymnasium ids it
registers) and its config schema, plus one `EnvFamily` entry in FAMILIES: `import
embodied.envs` calls every `register()`, `embodied.config.register_configs` stores every
schema as Hydra's `env/<family>_schema` (and as the option `env=<family>` when no
`conf/env/<family>.yaml` refines it), and `tests/test_env_contract.py` runs the env
contract on every id registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import gymnasium as gym


@dataclass(frozen=True)
class EnvFamily:
    module: str
    """The module whose `register()` registers the family's Gymnasium ids."""
    schema: str
    """"module:Class" of its config dataclass (a subclass of embodied.config.EnvConfig)."""


FAMILIES: dict[str, EnvFamily] = {
    "metaworld": EnvFamily(
        "embodied.envs.manipulation.metaworld", "embodied.envs.manipulation.configs:MetaWorldConfig"
    ),
    "metaworld_multitask": EnvFamily(
        "embodied.envs.manipulation.metaworld_multitask", "embodied.envs.manipulation.configs:MetaWorldMultiTaskConfig"
    ),
    "memory_pick_place": EnvFamily(
        "embodied.envs.manipulation.memory_pick_place", "embodied.envs.manipulation.configs:MemoryPickPlaceConfig"
    ),
    "tabletop": EnvFamily("embodied.envs.manipulation.tabletop", "embodied.envs.manipulation.configs:TabletopConfig"),
    "crafter": EnvFamily("embodied.envs.minecraft", "embodied.envs.minecraft.configs:CrafterConfig"),
    "pointmaze": EnvFamily("embodied.envs.navigation.point_maze", "embodied.envs.navigation.configs:PointMazeConfig"),
    "foraging": EnvFamily("embodied.envs.navigation.foraging", "embodied.envs.navigation.configs:ForagingConfig"),
}


def register_variants(
    id_template: str, entry_point: str, variants: Mapping[str, tuple[dict[str, Any], int | None]]
) -> list[str]:
    """Register `id_template.format(name)` with its kwargs and episode cap for every variant; return the ids."""
    ids = []
    for name, (kwargs, cap) in variants.items():
        env_id = id_template.format(name)
        gym.register(id=env_id, entry_point=entry_point, kwargs=kwargs, max_episode_steps=cap)
        ids.append(env_id)
    return ids
