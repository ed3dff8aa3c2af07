"""The MineDojo-style dictionary that reward code reads (`info["mc"]`).

The same keys, types and names come out of the MineDojo adapter, so a reward written
against Crafter runs unchanged there. Names are Crafter's (wood, stone, tree, cow...);
the adapter maps Minecraft's names onto them. docs/envs.md documents every key.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from embodied.envs.minecraft.engine import ACHIEVEMENTS, ENTITY_CLASSES, LIFE_STATS, MATERIALS, Engine

INVENTORY_ITEMS: tuple[str, ...] = (
    "sapling",
    "wood",
    "stone",
    "coal",
    "iron",
    "diamond",
    "wood_pickaxe",
    "stone_pickaxe",
    "iron_pickaxe",
    "wood_sword",
    "stone_sword",
    "iron_sword",
)
MC_KEYS: tuple[str, ...] = (
    "inventory",
    "life_stats",
    "location_stats",
    "near_blocks",
    "near_entities",
    "target",
    "achievements",
    "step",
    "done",
    "death_cause",
)
MC_KEY_DOCS: dict[str, str] = {
    "inventory": "dict[str, int]: every item (sapling, wood, stone, coal, iron, diamond, wood_pickaxe, stone_pickaxe, iron_pickaxe, wood_sword, stone_sword, iron_sword) -> count 0..9",
    "life_stats": "dict[str, int]: health, food, drink, energy, each 0..9 (9 = full; at 0 food/drink/energy health drains)",
    "location_stats": "dict: pos -> (x, y) ints in 0..63; facing -> (dx, dy), one of (-1, 0), (1, 0), (0, -1), (0, 1)",
    "near_blocks": "dict[str, float]: nearest Euclidean distance in cells (0..~4.5) to each material visible in the local 9x7 view: water, grass, stone, path, sand, tree, lava, coal, iron, diamond, table, furnace; a material not in view is absent",
    "near_entities": "dict[str, float]: nearest distance to each visible creature kind: cow, zombie, skeleton, arrow, plant; absent if not in view",
    "target": "dict: block -> the material the player faces (what the 'do' action acts on) or None; entity -> the creature there or None",
    "achievements": "dict[str, bool]: Crafter's 22 achievements (collect_wood, eat_cow, collect_diamond, place_table, ...) unlocked so far this episode",
    "step": "int: steps since the episode began",
    "done": "bool: the episode ended at this step (death or success)",
    "death_cause": "str or None: lava, zombie, skeleton, starvation, thirst, exhaustion or unknown once dead; None while alive",
}
"""Each key's type and range, for prompts (Auto MC-Reward's "input parameters") and docs."""


@lru_cache(maxsize=8)
def _offsets(width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """View cells sorted by Euclidean distance from the centre: (dx, dy, distance)."""
    dx, dy = np.meshgrid(np.arange(width) - width // 2, np.arange(height) - height // 2, indexing="ij")
    dist = np.sqrt(dx**2 + dy**2).ravel()
    order = np.argsort(dist, kind="stable")
    return dx.ravel()[order], dy.ravel()[order], dist[order]


def near_blocks(engine: Engine) -> dict[str, float]:
    """Nearest distance (cells, Euclidean) to each material inside the local view."""
    dx, dy, dist = _offsets(*engine.grid_shape)
    xs, ys = dx + int(engine.player.pos[0]), dy + int(engine.player.pos[1])
    area_w, area_h = engine.world.area
    inside = (xs >= 0) & (xs < area_w) & (ys >= 0) & (ys < area_h)
    ids = engine.world._mat_map[xs[inside], ys[inside]]
    uniq, first = np.unique(ids, return_index=True)
    near = dist[inside][first]
    return {MATERIALS[i - 1]: float(d) for i, d in zip(uniq.tolist(), near.tolist()) if i > 0}


def near_entities(engine: Engine) -> dict[str, float]:
    """Nearest distance (cells, Euclidean) to each creature or plant kind inside the local view."""
    px, py = int(engine.player.pos[0]), int(engine.player.pos[1])
    out: dict[str, float] = {}
    for obj in engine.visible_objects():
        name = ENTITY_CLASSES.get(type(obj))
        if name is None:
            continue
        d = float(np.hypot(int(obj.pos[0]) - px, int(obj.pos[1]) - py))
        if d < out.get(name, np.inf):
            out[name] = d
    return out


def mc_view(engine: Engine, done: bool) -> dict[str, Any]:
    """info["mc"] for the current state of `engine`."""
    player = engine.player
    inv = player.inventory
    facing = (int(player.facing[0]), int(player.facing[1]))
    target = (int(player.pos[0]) + facing[0], int(player.pos[1]) + facing[1])
    block, obj = engine.world[target]
    return {
        "inventory": {name: int(inv[name]) for name in INVENTORY_ITEMS},
        "life_stats": {name: int(inv[name]) for name in LIFE_STATS},
        "location_stats": {"pos": (int(player.pos[0]), int(player.pos[1])), "facing": facing},
        "near_blocks": near_blocks(engine),
        "near_entities": near_entities(engine),
        "target": {"block": block, "entity": ENTITY_CLASSES.get(type(obj)) if obj is not None else None},
        "achievements": {name: player.achievements[name] > 0 for name in ACHIEVEMENTS},
        "step": int(engine.steps),
        "done": bool(done),
        "death_cause": engine.death_cause,
    }


GOAL_EFFECTS: dict[str, dict[str, Any]] = {
    "collect_wood": {"inventory": {"wood": 1}, "target": {"block": "tree", "entity": None}},
    "eat_cow": {"life_stats": {"food": 6}, "target": {"block": "grass", "entity": "cow"}},
    "collect_diamond": {"inventory": {"diamond": 1}, "target": {"block": "diamond", "entity": None}},
}
"""What reaching each task's achievement changes in the view (Crafter's rules: +1 wood, +6 food, +1 diamond)."""


def goal_view(view: dict[str, Any], achievement: str) -> dict[str, Any]:
    """The view one step after `view` had the achievement just been reached: the episode's success step.

    For the Reward Critic, which checks a design's sparse reward at success even when no
    random-policy episode reached it. Only keys the achievement changes are changed.
    """
    effects = GOAL_EFFECTS[achievement]
    out = {**view, "inventory": dict(view["inventory"]), "life_stats": dict(view["life_stats"])}
    for item, gain in effects.get("inventory", {}).items():
        out["inventory"][item] = min(9, out["inventory"][item] + gain)
    for stat, gain in effects.get("life_stats", {}).items():
        out["life_stats"][stat] = min(9, out["life_stats"][stat] + gain)
    out["target"] = dict(effects["target"])
    out["achievements"] = {**view["achievements"], achievement: True}
    out.update(step=view["step"] + 1, done=True, death_cause=None)
    return out
