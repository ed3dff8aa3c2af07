"""Real Minecraft through MineDojo behind the Crafter tasks' interface: `embodied/MineDojo-<Task>-v0`.

MineDojo needs Java 8 and builds Minecraft with Gradle on first use, so it is optional:
`register()` adds the ids only where `import minedojo` works (install: docs/minedojo.md).
Tasks are MineDojo programmatic tasks (TASK_IDS, from its tasks/description_files/
programmatic_tasks.yaml): CollectWood harvest_1_log, EatCow harvest_1_beef (find, kill a
cow, pick up its beef), DiamondLava harvest_1_diamond_with_iron_pickaxe (ours also starts
with pickaxes), Survival survival. Episode caps are ours (tasks.py), MineDojo's tasks have
none; reward is MineDojo's. `success` is its info["success"], else the task's
`is_successful`; Survival also succeeds alive at our cap, as on Crafter.

Policy sees {"rgb": (H, W, 3) uint8} (MineDojo gives (3, H, W)); actions are MineDojo's
MultiDiscrete, same nvec (its no-op is not all zeros: mid camera bins mean "no turn").
Equip/place/destroy on an empty slot, which MineDojo answers with an exception, is sent
as a no-op. `reset(seed=s)` calls the env's `seed(s)`; Minecraft does not replay exactly.

info["mc"] = minedojo_to_mc(...): the keys and types of Crafter's view (view.py) with
Crafter's names. Minecraft names are normalised first (lower case, spaces to "_", no
"minecraft:"): inventory names come with spaces, voxel/ray names are display names
("grass block", "wood" for a log block, "coal ore").
  inventory       36 slots summed by name via ITEM_NAMES (log -> wood, cobblestone -> stone,
                  iron_ore/iron_ingot -> iron, wooden_pickaxe -> wood_pickaxe, ...); air
                  dropped; all Crafter items present; other items keep their names. Planks
                  stay planks: a log makes 4, so counting them would reward crafting as wood.
  life_stats      health, food = ceil(v * 9 / 20) (Minecraft 0..20 to Crafter 0..9; rounded
                  up so 0 still means empty); drink = energy = 9: Minecraft has neither.
  location_stats  pos = (floor x, floor z) (y is height); facing = axis nearest the yaw:
                  yaw 0 faces +z, 90 -x, 180 -z, -90 +x (minecraft.wiki/w/Rotation), i.e.
                  (-sin yaw, cos yaw) rounded, exact 45-degree ties half to even.
  near_blocks     obs["voxels"]["block_name"], indexed [x, y, z] (MineDojo VoxelObservation):
                  per BLOCK_NAMES name (log/leaves -> tree, dirt/grass -> grass, *_ore ->
                  coal/iron/diamond, ...) the Euclidean distance in blocks from the feet
                  cell, the grid's centre. Programmatic tasks use a -1..1 cube (<= sqrt 3).
  near_entities   obs["rays"] (lidar): nearest hit per entity (ENTITY_NAMES); {} without
                  lidar, which programmatic tasks leave off (docs/minedojo.md: meta tasks).
  target          the ray nearest the crosshair: block within 4.5, entity within 3 blocks
                  (Minecraft's survival reach). No rays: the block in front of the feet, or
                  the ground below it if that is air; entity None.
  achievements    Crafter's 22 names, set once an inventory count rises above `prev`'s:
                  collect_{wood,stone,coal,iron,diamond,sapling}, make_{wood,stone,iron}_
                  {pickaxe,sword}, eat_cow (beef); kept for the episode; others stay False.
  death_cause     None while life > 0. MineDojo reports damage flags, no damage name (it is
                  commented out in its ObservationFromDamageImplementation.java): fire ->
                  lava, projectile -> skeleton, unblockable with empty food -> starvation,
                  from a located source (a mob's hit) -> zombie, else unknown. A
                  `damage_type` string, where a build reports one, is mapped first.
"""

from __future__ import annotations

import difflib
import importlib
import math
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from embodied.envs.minecraft.tasks import TASKS
from embodied.errors import ConfigError

TASK_IDS: dict[str, str] = {  # ids from MineDojo's tasks/description_files/programmatic_tasks.yaml
    "CollectWood": "harvest_1_log",
    "EatCow": "harvest_1_beef",
    "DiamondLava": "harvest_1_diamond_with_iron_pickaxe",
    "Survival": "survival",
}
ITEM_NAMES: dict[str, str] = {
    "log": "wood",
    "log2": "wood",
    "cobblestone": "stone",
    "stone": "stone",
    "coal": "coal",
    "coal_ore": "coal",
    "iron_ore": "iron",
    "iron_ingot": "iron",
    "diamond": "diamond",
    "diamond_ore": "diamond",
    "sapling": "sapling",
    **{
        f"{mc}_{tool}": f"{ours}_{tool}"
        for mc, ours in (("wooden", "wood"), ("stone", "stone"), ("iron", "iron"))
        for tool in ("pickaxe", "sword")
    },
}
BLOCK_NAMES: dict[str, str] = {  # registry and display names ("wood" is a log block in voxels and rays)
    "log": "tree",
    "log2": "tree",
    "wood": "tree",
    "leaves": "tree",
    "leaves2": "tree",
    "grass": "grass",
    "grass_block": "grass",
    "dirt": "grass",
    "stone": "stone",
    "cobblestone": "stone",
    "coal_ore": "coal",
    "iron_ore": "iron",
    "diamond_ore": "diamond",
    "lava": "lava",
    "flowing_lava": "lava",
    "water": "water",
    "flowing_water": "water",
    "sand": "sand",
    "crafting_table": "table",
    "furnace": "furnace",
    "lit_furnace": "furnace",
}
ENTITY_NAMES: dict[str, str] = {  # rays name entities by Java class, "Entity" cut, lower case: EntityCow -> cow
    "cow": "cow",
    "zombie": "zombie",
    "husk": "zombie",
    "zombievillager": "zombie",
    "skeleton": "skeleton",
    "stray": "skeleton",
    "arrow": "arrow",
    "tippedarrow": "arrow",
    "spectralarrow": "arrow",
}
DAMAGE_TYPES: dict[str, str] = {  # Minecraft DamageSource type names, lower case without "_"
    "lava": "lava",
    "infire": "lava",
    "onfire": "lava",
    "hotfloor": "lava",
    "starve": "starvation",
    "arrow": "skeleton",
    "mob": "zombie",
}
BLOCK_REACH, ENTITY_REACH = 4.5, 3.0
_EMPTY = frozenset({"", "air", "cave_air", "void_air", "null", "none"})
_FACINGS = ((0, 1), (-1, 0), (0, -1), (1, 0))  # yaw 0, 90, 180, 270
_DERIVED = {
    "beef": "eat_cow",
    **{item: f"collect_{item}" for item in ("wood", "stone", "coal", "iron", "diamond", "sapling")},
}
_DERIVED.update({f"{m}_{t}": f"make_{m}_{t}" for m in ("wood", "stone", "iron") for t in ("pickaxe", "sword")})
_FN_ON_SLOT = (5, 6, 7)  # equip, place, destroy: action[7] names the inventory slot
IMPORT_ERROR: Exception | None = None
"""Why `import minedojo` failed in `register()`, for diagnosis; None if it worked or was not tried."""


def _mapped(raw: Any, table: dict[str, str]) -> str | None:
    """Crafter's name for a Minecraft name (normalised, then `table`), None for nothing (air, no hit)."""
    name = str(raw).strip().lower().replace(" ", "_").removeprefix("minecraft:")
    return None if name in _EMPTY else table.get(name, name)


def _scalar(value: Any, default: float) -> float:
    flat = np.ravel(np.asarray(value if value is not None else default, dtype=np.float64))
    return float(flat[0]) if flat.size else default


def _to_crafter_scale(value: float) -> int:
    return int(min(9, max(0, math.ceil(value * 9 / 20 - 1e-6))))


def facing_from_yaw(yaw: float) -> tuple[int, int]:
    """The (dx, dz) axis direction nearest a Minecraft yaw in degrees."""
    return _FACINGS[int(np.round(yaw / 90.0)) % 4]


def _inventory(inventory: dict | None) -> dict[str, int]:
    from embodied.envs.minecraft.view import INVENTORY_ITEMS  # lazy: view imports Crafter

    counts = dict.fromkeys(INVENTORY_ITEMS, 0)
    if inventory is not None:
        for raw, quantity in zip(np.ravel(inventory["name"]), np.ravel(inventory["quantity"])):
            key = _mapped(raw, ITEM_NAMES)
            if key is not None and quantity > 0:
                counts[key] = counts.get(key, 0) + int(round(float(quantity)))
    return counts


def _nearest(names: Any, distances: Any, table: dict[str, str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for raw, distance in zip(names, distances):
        key = _mapped(raw, table)
        if key is not None:
            out[key] = min(out.get(key, math.inf), float(distance))
    return out


def _near_blocks(voxels: dict | None) -> dict[str, float]:
    if voxels is None:
        return {}
    names = np.asarray(voxels["block_name"])
    offsets = np.indices(names.shape).reshape(names.ndim, -1).T - np.array(names.shape) // 2
    return _nearest(names.ravel(), np.linalg.norm(offsets, axis=1), BLOCK_NAMES)


def _block_in_front(voxels: dict, facing: tuple[int, int]) -> str | None:
    names = np.asarray(voxels["block_name"])
    cx, cy, cz = (size // 2 for size in names.shape)
    x, z = cx + facing[0], cz + facing[1]
    for y in (cy, cy - 1):
        inside = 0 <= x < names.shape[0] and 0 <= y and 0 <= z < names.shape[2]
        if inside and _mapped(names[x, y, z], BLOCK_NAMES) is not None:
            return _mapped(names[x, y, z], BLOCK_NAMES)
    return None


def _from_rays(rays: dict) -> tuple[dict[str, float], str | None, str | None]:
    """Nearest distance per entity hit, and the block and entity under the crosshair ray."""
    entities, entity_distance = np.ravel(rays["entity_name"]), np.ravel(rays["entity_distance"]).astype(np.float64)
    near = _nearest(entities, entity_distance, ENTITY_NAMES)
    if len(entities) == 0:
        return near, None, None
    off_centre = np.abs(np.ravel(rays.get("ray_pitch", 0.0))) + np.abs(np.ravel(rays.get("ray_yaw", 0.0)))
    i = int(np.argmin(np.broadcast_to(off_centre, entities.shape)))
    in_reach = float(np.ravel(rays["block_distance"])[i]) <= BLOCK_REACH
    block = _mapped(np.ravel(rays["block_name"])[i], BLOCK_NAMES) if in_reach else None
    entity = _mapped(entities[i], ENTITY_NAMES) if entity_distance[i] <= ENTITY_REACH else None
    return near, block, entity


def death_cause(damage: dict, food: float) -> str:
    """Crafter's cause of death from MineDojo's last damage report and the food level."""
    kind = (_mapped(damage.get("damage_type"), {}) or "").replace("_", "")
    if kind in DAMAGE_TYPES:
        return DAMAGE_TYPES[kind]
    fire, projectile, explosion, magic, unblockable = (
        bool(np.any(damage.get(f"is_{flag}", False)))
        for flag in ("fire_damage", "projectile", "explosion", "magic_damage", "unblockable")
    )
    if fire:
        return "lava"
    if projectile:
        return "skeleton"
    if explosion or magic:
        return "unknown"
    if unblockable and food <= 0:
        return "starvation"
    if _scalar(damage.get("damage_distance"), 0.0) > 0:
        return "zombie"
    return "unknown"


def _achievements(inventory: dict[str, int], prev: dict | None) -> dict[str, bool]:
    from embodied.envs.minecraft.engine import ACHIEVEMENTS  # lazy: the engine imports Crafter

    out = dict.fromkeys(ACHIEVEMENTS, False)
    if prev is None:
        return out
    out.update({name: bool(done) for name, done in prev["achievements"].items() if name in out})
    for item, achievement in _DERIVED.items():
        if inventory.get(item, 0) > prev["inventory"].get(item, 0):
            out[achievement] = True
    return out


def minedojo_to_mc(obs: dict, info: dict, step: int, done: bool, prev: dict | None) -> dict[str, Any]:
    """The Crafter-named `info["mc"]` view of one MineDojo observation (module docstring)."""
    life_stats, location = obs.get("life_stats", {}), obs.get("location_stats", {})
    life, food = _scalar(life_stats.get("life"), 20.0), _scalar(life_stats.get("food"), 20.0)
    pos = np.ravel(np.asarray(location.get("pos", (0.0, 0.0, 0.0)), dtype=np.float64))
    facing = facing_from_yaw(_scalar(location.get("yaw"), 0.0))
    inventory = _inventory(obs.get("inventory"))
    rays, voxels = obs.get("rays"), obs.get("voxels")
    if rays is not None:
        near_entities, block, entity = _from_rays(rays)
    else:
        near_entities, entity = {}, None
        block = _block_in_front(voxels, facing) if voxels is not None else None
    cause = None
    if life <= 0 or bool(info.get("is_dead", False)):
        damage = {**(info.get("damage_source") or {}), **(obs.get("damage_source") or {})}
        cause = (prev or {}).get("death_cause") or death_cause(damage, food)
    return {
        "inventory": inventory,
        "life_stats": {"health": _to_crafter_scale(life), "food": _to_crafter_scale(food), "drink": 9, "energy": 9},
        "location_stats": {"pos": (int(math.floor(pos[0])), int(math.floor(pos[2]))), "facing": facing},
        "near_blocks": _near_blocks(voxels),
        "near_entities": near_entities,
        "target": {"block": block, "entity": entity},
        "achievements": _achievements(inventory, prev),
        "step": int(step),
        "done": bool(done),
        "death_cause": cause,
    }


def _check_options(task: str, render_mode: str | None, voxel_size: dict | None) -> None:
    if task not in TASK_IDS:
        close = difflib.get_close_matches(task, TASK_IDS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"unknown MineDojo task '{task}'{hint}; valid tasks: {', '.join(TASK_IDS)}")
    if render_mode not in (None, "rgb_array"):
        raise ConfigError(f"render_mode must be rgb_array or None, got '{render_mode}'")
    if voxel_size is not None and any(voxel_size[f"{axis}min"] != -voxel_size[f"{axis}max"] for axis in "xyz"):
        raise ConfigError(f"voxel_size must be symmetric around the agent (xmin == -xmax, ...), got {dict(voxel_size)}")


class MineDojoEnv(gym.Env):
    """A MineDojo env (gym 0.21/0.22 API) as a Gymnasium env with Crafter's `info["mc"]`.

    `env` is the MineDojo env or a factory for it (tests pass a test double); without it,
    `minedojo.make(task_id, image_size=image_size, **minedojo_kwargs)` builds the task's.
    The raw MineDojo info of the last step stays in `last_info` (too big for every step).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        env: Any | Callable[[], Any] | None = None,
        task: str = "Survival",
        image_size: Sequence[int] = (64, 64),
        task_id: str | None = None,
        render_mode: str | None = None,
        **minedojo_kwargs: Any,
    ) -> None:
        _check_options(task, render_mode, minedojo_kwargs.get("voxel_size"))
        self.task, self.task_id, self.render_mode = TASKS[task], task_id or TASK_IDS[task], render_mode
        if env is None:
            env = _make_minedojo(self.task_id, image_size, minedojo_kwargs)
        elif callable(env) and not hasattr(env, "step"):
            env = env()
        self._env = env
        height, width = _rgb_size(env, image_size)
        self.observation_space = spaces.Dict({"rgb": spaces.Box(0, 255, (height, width, 3), np.uint8)})
        self.action_space = spaces.MultiDiscrete(np.asarray(env.action_space.nvec, dtype=np.int64))
        self._obs: dict | None = None
        self._mc: dict | None = None
        self._steps, self._succeeded, self.last_info = 0, False, {}
        self.episode_cap: int = self.task.max_episode_steps
        """Survival succeeds alive at this step; `embodied.envs.make` sets it to the TimeLimit's cap."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None and hasattr(self._env, "seed"):
            self._env.seed(int(seed))
        self._obs, self._mc, self._steps, self._succeeded, self.last_info = self._env.reset(), None, 0, False, {}
        return self._policy_obs(), self._info(None, terminated=False)

    def step(self, action):
        obs, reward, done, info = self._env.step(self._safe_action(action))
        self._obs, self._steps, self.last_info = obs, self._steps + 1, info
        truncated = bool(done) and self._hit_cap(info)
        terminated = bool(done) and not truncated
        return self._policy_obs(), float(reward), terminated, truncated, self._info(info, terminated)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._obs is None:
            return None
        return self._policy_obs()["rgb"]

    def close(self) -> None:
        if hasattr(self._env, "close"):
            self._env.close()

    def _policy_obs(self) -> dict[str, np.ndarray]:
        return {"rgb": np.ascontiguousarray(np.transpose(self._obs["rgb"], (1, 2, 0)), dtype=np.uint8)}

    def _info(self, info: dict | None, terminated: bool) -> dict[str, Any]:
        """Our info after a step, or after a reset when `info` is None (MineDojo gives none there)."""
        mc = self._mc = minedojo_to_mc(self._obs, info or {}, self._steps, terminated, self._mc)
        if info is not None:
            self._succeeded = self._succeeded or self._task_success(info)
        return {
            "success": self._succeeded,
            "death_cause": mc["death_cause"],
            "achievements": dict(mc["achievements"]),
            "mc": mc,
        }

    def _task_success(self, info: dict) -> bool:
        reported = info["success"] if "success" in info else getattr(self._env, "is_successful", False)
        survived = self.task.achievement is None and self._steps >= self.episode_cap and self._mc["death_cause"] is None
        return bool(reported) or survived

    def _hit_cap(self, info: dict) -> bool:
        """Whether a done came from a time limit (gym's TimeLimit flag or its step count)."""
        if info.get("TimeLimit.truncated", False):
            return True
        cap, elapsed = getattr(self._env, "_max_episode_steps", None), getattr(self._env, "_elapsed_steps", None)
        return cap is not None and elapsed is not None and elapsed >= cap

    def _safe_action(self, action: Any) -> np.ndarray:
        """The action, with equip/place/destroy on an empty slot (MineDojo raises) made a no-op."""
        act = np.asarray(action, dtype=np.int64).copy()
        inventory = (self._obs or {}).get("inventory")
        if act.shape == (8,) and act[5] in _FN_ON_SLOT and inventory is not None:
            names = np.ravel(inventory["name"])
            if act[7] < len(names) and _mapped(names[act[7]], {}) is None:
                act[5] = 0
        return act


def _rgb_size(env: Any, image_size: Sequence[int]) -> tuple[int, int]:
    try:
        _, height, width = env.observation_space["rgb"].shape
    except (AttributeError, KeyError, TypeError, ValueError):
        height, width = image_size
    return int(height), int(width)


def _make_minedojo(task_id: str, image_size: Sequence[int], kwargs: dict) -> Any:
    try:
        minedojo = importlib.import_module("minedojo")
    except Exception as err:  # a broken install fails in many ways (missing Java bits, numpy aliases)
        raise ConfigError(f"MineDojo does not import ({type(err).__name__}: {err}); see docs/minedojo.md") from None
    return minedojo.make(task_id=task_id, image_size=tuple(int(s) for s in image_size), **kwargs)


def register() -> list[str]:
    """Register `embodied/MineDojo-<Task>-v0` with our episode caps, only if MineDojo imports."""
    global IMPORT_ERROR
    try:
        importlib.import_module("minedojo")
    except Exception as err:  # absent or broken: no ids, no output; IMPORT_ERROR says why
        IMPORT_ERROR = err
        return []
    IMPORT_ERROR = None
    ids = [f"embodied/MineDojo-{name}-v0" for name in TASK_IDS]
    for env_id, name in zip(ids, TASK_IDS):
        entry_point = "embodied.envs.minecraft.minedojo:MineDojoEnv"
        gym.register(
            id=env_id, entry_point=entry_point, kwargs={"task": name}, max_episode_steps=TASKS[name].max_episode_steps
        )
    return ids
