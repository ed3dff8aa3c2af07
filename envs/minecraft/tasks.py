"""The Minecraft-like tasks: what counts as success, what the agent starts with, where.

The first three are the Crafter counterparts of Auto MC-Reward's tasks (Li et al.,
CVPR 2024): approach trees, approach animals, and horizontal exploration for diamond
while avoiding lava. `Survival` is the standard Crafter game with its 22 achievements.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import numpy as np

from embodied.errors import ConfigError


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    max_episode_steps: int
    achievement: str | None
    """Success once this achievement is unlocked; None: success is surviving to the cap."""
    start_inventory: dict[str, int] = field(default_factory=dict)
    spawn: str = "centre"
    """centre (Crafter's spawn) or cave (next to a diamond and lava, see find_cave_spawn)."""


TASKS: dict[str, Task] = {
    "CollectWood": Task("CollectWood", "find a tree and collect wood from it", 500, "collect_wood"),
    "EatCow": Task("EatCow", "find a cow and hunt it", 500, "eat_cow"),
    "DiamondLava": Task(
        "DiamondLava",
        "mine a diamond in caves with lava nearby; walking into lava kills",
        1000,
        "collect_diamond",
        # Diamond needs an iron pickaxe, which needs table, furnace, wood, stone, coal and
        # iron first: the tech tree would dominate an exploration task, so the agent
        # starts with every pickaxe (the wooden one also lets it tunnel through stone).
        start_inventory={"wood_pickaxe": 1, "stone_pickaxe": 1, "iron_pickaxe": 1},
        spawn="cave",
    ),
    "Survival": Task("Survival", "the standard Crafter game: survive and unlock achievements", 10000, None),
}

# Cave spawn: a free path cell whose nearest diamond is 4-10 steps away (Manhattan) with
# lava within 6 steps, so the diamond must be searched for past lava.
DIAMOND_DISTANCE = (4, 10)
LAVA_DISTANCE = 6


def get_task(name: str) -> Task:
    if name not in TASKS:
        close = difflib.get_close_matches(name, TASKS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"unknown Crafter task '{name}'{hint}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]


def _min_manhattan(cells: np.ndarray, targets: np.ndarray) -> np.ndarray:
    if len(targets) == 0:
        return np.full(len(cells), np.iinfo(np.int64).max)
    return np.abs(cells[:, None, :] - targets[None, :, :]).sum(-1).min(1)


def find_cave_spawn(world, rng: np.random.Generator) -> tuple[int, int] | None:
    """A random free path cell near a diamond and lava, or None if the world has none."""
    mat = world._mat_map
    ids = world._mat_ids
    paths = np.argwhere((mat == ids["path"]) & (world._obj_map == 0))
    diamonds = np.argwhere(mat == ids["diamond"])
    lava = np.argwhere(mat == ids["lava"])
    if len(paths) == 0 or len(diamonds) == 0 or len(lava) == 0:
        return None
    to_diamond = _min_manhattan(paths, diamonds)
    ok = (
        (to_diamond >= DIAMOND_DISTANCE[0])
        & (to_diamond <= DIAMOND_DISTANCE[1])
        & (_min_manhattan(paths, lava) <= LAVA_DISTANCE)
    )
    candidates = paths[ok]
    if len(candidates) == 0:
        return None
    x, y = candidates[rng.integers(len(candidates))]
    return int(x), int(y)
