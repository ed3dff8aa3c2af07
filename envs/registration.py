"""Gymnasium registration of an env family's variants: one id per task, maze, ..."""

from __future__ import annotations

from typing import Any, Mapping

import gymnasium as gym


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
