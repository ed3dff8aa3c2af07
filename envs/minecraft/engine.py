"""Crafter's game, stepped without the costs a learner does not need.

`Engine` subclasses `crafter.Env` and keeps its world, creatures, balancing and
rendering, changing only what makes training slow or opaque:

* worlds come from the vectorised generator in `worldgen.py`, seeded exactly as
  `crafter.Env(seed=s).reset()` seeds its first world, so `new_world(s)` is that world;
* rendering draws the terrain from a per-size texture atlas in one indexing step and
  caches the inventory bar (pixel-identical to Crafter's cell-by-cell drawing);
* rendering is skipped when only the symbolic view is used. Crafter's night-time
  render draws from the world's RNG, so a skipped render still advances it by the same
  amount: dynamics stay identical to `crafter.Env`. Extra renders (videos at another
  size) restore the RNG afterwards, so watching never changes the game;
* the player records what hurt it last, which names the cause of death;
* creatures in a chunk are kept in insertion order. Crafter keeps them in a `set`,
  ordered by memory address, and despawns `creatures[random index]` from it, so two
  `crafter.Env(seed=s)` in one process diverge within tens of steps. Ours do not.
"""

from __future__ import annotations

import collections
from typing import Any, Iterator

import crafter
import numpy as np
from crafter import constants, objects
from crafter import engine as crafter_engine

from embodied.envs.minecraft.worldgen import generate_world

ITEMS: tuple[str, ...] = tuple(constants.items)
"""Crafter's inventory slots in its order: health, food, drink, energy, then 12 items."""
LIFE_STATS: tuple[str, ...] = ("health", "food", "drink", "energy")
ACHIEVEMENTS: tuple[str, ...] = tuple(constants.achievements)
ACTIONS: tuple[str, ...] = tuple(constants.actions)
MATERIALS: tuple[str, ...] = tuple(constants.materials)
# Symbolic-view ids: 0 is outside the world, then the materials, then the player by the
# way it faces (its texture), then the other creatures and plants.
FACINGS: tuple[tuple[int, int], ...] = ((-1, 0), (1, 0), (0, -1), (0, 1))
ENTITIES: tuple[str, ...] = ("cow", "zombie", "skeleton", "arrow", "plant")
SYMBOLS: tuple[str, ...] = ("outside", *MATERIALS, "player_left", "player_right", "player_up", "player_down", *ENTITIES)
ENTITY_CLASSES = {
    objects.Cow: "cow",
    objects.Zombie: "zombie",
    objects.Skeleton: "skeleton",
    objects.Arrow: "arrow",
    objects.Plant: "plant",
}
_SYMBOL_ID = {name: i for i, name in enumerate(SYMBOLS)}
_PLAYER_ID = {facing: _SYMBOL_ID["player_left"] + i for i, facing in enumerate(FACINGS)}
_LIFE_DEATHS = (("food", "starvation"), ("drink", "thirst"), ("energy", "exhaustion"))
DEATH_CAUSES: tuple[str, ...] = ("lava", "zombie", "skeleton", "starvation", "thirst", "exhaustion", "unknown")


class InsertionOrderedSet:
    """The part of `set` that Crafter's chunks use, iterating in insertion order."""

    def __init__(self) -> None:
        self._items: dict[Any, None] = {}

    def add(self, item: Any) -> None:
        self._items[item] = None

    def remove(self, item: Any) -> None:
        del self._items[item]

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)


def make_deterministic(world: Any) -> None:
    """Replace the chunk sets of a freshly reset `crafter.engine.World` (see module docstring)."""
    world._chunks = collections.defaultdict(InsertionOrderedSet)


class AtlasLocalView(crafter_engine.LocalView):
    """Crafter's local view; terrain tiles come from an atlas instead of one draw per cell."""

    def __init__(self, world: Any, textures: Any, grid: Any) -> None:
        super().__init__(world, textures, grid)
        self._atlases: dict[tuple[int, int], np.ndarray] = {}

    def _atlas(self, unit: tuple[int, int]) -> np.ndarray:
        names = self._world._mat_names
        if unit not in self._atlases or len(self._atlases[unit]) != len(names):
            self._atlases[unit] = np.stack([self._textures.get(names[i], unit)[..., :3] for i in range(len(names))])
        return self._atlases[unit]

    def __call__(self, player: Any, unit: Any) -> np.ndarray:
        self._unit = np.array(unit)
        self._center = np.array(player.pos)
        ux, uy = int(self._unit[0]), int(self._unit[1])
        gx, gy = int(self._grid[0]), int(self._grid[1])
        x0, y0 = (self._center - self._offset).tolist()
        area_w, area_h = self._world.area
        xa, xb, ya, yb = max(x0, 0), min(x0 + gx, area_w), max(y0, 0), min(y0 + gy, area_h)
        canvas = np.zeros((gx * ux, gy * uy, 3), np.uint8) + 127
        if xa < xb and ya < yb:
            ids = self._world._mat_map[xa:xb, ya:yb]
            tiles = self._atlas((ux, uy))[ids]  # (cells x, cells y, ux, uy, 3)
            w, h = ids.shape
            block = tiles.transpose(0, 2, 1, 3, 4).reshape(w * ux, h * uy, 3)
            canvas[(xa - x0) * ux : (xb - x0) * ux, (ya - y0) * uy : (yb - y0) * uy] = block
        for obj in self._world.objects:
            pos = obj.pos - self._center + self._offset
            if not crafter_engine._inside((0, 0), pos, self._grid):
                continue
            crafter_engine._draw_alpha(canvas, pos * self._unit, self._textures.get(obj.texture, self._unit))
        canvas = self._light(canvas, self._world.daylight)
        if player.sleeping:
            canvas = self._sleep(canvas)
        return canvas


class CachedItemView(crafter_engine.ItemView):
    """Crafter's inventory bar, drawn once per distinct inventory."""

    def __init__(self, textures: Any, grid: Any) -> None:
        super().__init__(textures, grid)
        self._cache: dict[tuple, np.ndarray] = {}

    def __call__(self, inventory: dict[str, int], unit: Any) -> np.ndarray:
        key = (tuple(inventory.values()), tuple(np.asarray(unit).tolist()))
        if key not in self._cache:
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[key] = super().__call__(inventory, unit)
        return self._cache[key]


class Player(objects.Player):
    """Crafter's player, remembering which object's update last took health from it."""

    def __init__(self, world: Any, pos: Any) -> None:
        super().__init__(world, pos)
        self.actor: Any = None
        self.hurt_by: Any = None

    @property
    def health(self) -> int:
        return self.inventory["health"]

    @health.setter
    def health(self, value: int) -> None:
        if value < self.inventory["health"] and self.inventory["health"] > 0:
            self.hurt_by = self.actor  # who took the last health point
        self.inventory["health"] = max(0, value)


class Engine(crafter.Env):
    """One Crafter world: `new_world(seed)`, then `step(action)`; see the module docstring."""

    def __init__(self, area=(64, 64), view=(9, 9), size=(64, 64), render_obs: bool = True) -> None:
        super().__init__(area=area, view=view, size=size, reward=True, length=None, seed=0)
        self._local_view = AtlasLocalView(self._world, self._textures, self._local_view._grid)
        self._item_view = CachedItemView(self._textures, self._item_view._grid)
        self.render_obs = render_obs
        self.frame: np.ndarray | None = None
        self.death_cause: str | None = None
        self._visible: list[Any] | None = None
        self.grid_shape = tuple(int(v) for v in self._local_view._grid)  # (width, height) in cells
        unit = self._size // self._view
        self._night_draws = int(np.prod(self._local_view._grid * unit))

    # --- lifecycle -------------------------------------------------------------------
    def new_world(self, seed: int, inventory: dict[str, int] | None = None) -> None:
        """The world `crafter.Env(seed=seed).reset()` makes, with optional starting items."""
        self._episode, self._step = 1, 0
        self._world.reset(seed=hash((seed, 1)) % (2**31 - 1))
        make_deterministic(self._world)
        self._update_time()
        center = (self._world.area[0] // 2, self._world.area[1] // 2)
        self._player = Player(self._world, center)
        self._world.add(self._player)
        self._unlocked = set()
        generate_world(self._world, self._player)
        for name, count in (inventory or {}).items():
            self._player.inventory[name] = count
        self._last_health = self._player.health
        self.death_cause = None
        self._visible: list[Any] | None = None
        self._observe()

    def step(self, action: int) -> tuple[float, bool]:
        """Advance one tick; return Crafter's reward and whether the player died."""
        self._step += 1
        self._update_time()
        player = self._player
        player.action = constants.actions[action]
        reach = 2 * max(self._view)
        for obj in self._world.objects:
            # Crafter's `player.distance(obj) < reach`, in Python ints (it is the hot loop).
            (ox, oy), (px, py) = obj.pos.tolist(), player.pos.tolist()
            if abs(ox - px) + abs(oy - py) < reach:
                player.actor = obj
                obj.update()
        player.actor = None
        self._visible = None
        if self._step % 10 == 0:
            for chunk, objs in self._world.chunks.items():
                self._balance_chunk(chunk, objs)
        self._observe()
        reward = (player.health - self._last_health) / 10
        self._last_health = player.health
        unlocked = {name for name, count in player.achievements.items() if count > 0 and name not in self._unlocked}
        if unlocked:
            self._unlocked |= unlocked
            reward += 1.0
        dead = player.health <= 0
        if dead:
            self.death_cause = self._cause_of_death()
        return reward, dead

    # --- views -----------------------------------------------------------------------
    def _observe(self) -> None:
        if self.render_obs:
            self.frame = self.render()
        else:
            self.frame = None
            if self._world.daylight < 0.5:  # the draws Crafter's night noise would make
                self._world.random.random_sample(self._night_draws)

    def render_at(self, size: tuple[int, int]) -> np.ndarray:
        """A frame at another size, leaving the game's RNG untouched."""
        state = self._world.random.get_state()
        try:
            return self.render(tuple(size))
        finally:
            self._world.random.set_state(state)

    def symbolic_grid(self) -> np.ndarray:
        """(height, width) ids of SYMBOLS around the player, laid out like the image."""
        width, height = self.grid_shape
        x0 = int(self._player.pos[0]) - width // 2
        y0 = int(self._player.pos[1]) - height // 2
        grid = np.zeros((width, height), np.uint8)
        area_w, area_h = self._world.area
        xa, xb, ya, yb = max(x0, 0), min(x0 + width, area_w), max(y0, 0), min(y0 + height, area_h)
        grid[xa - x0 : xb - x0, ya - y0 : yb - y0] = self._world._mat_map[xa:xb, ya:yb]
        for obj in self.visible_objects():
            x, y = int(obj.pos[0]) - x0, int(obj.pos[1]) - y0
            grid[x, y] = _PLAYER_ID[tuple(obj.facing)] if obj is self._player else _SYMBOL_ID[ENTITY_CLASSES[type(obj)]]
        return grid.T

    def visible_objects(self) -> list[Any]:
        """Objects inside the local view, the player included (cached until the next step)."""
        if self._visible is None:
            width, height = self.grid_shape
            px, py = self._player.pos.tolist()
            x0, y0 = px - width // 2, py - height // 2
            visible = []
            for obj in self._world.objects:
                ox, oy = obj.pos.tolist()
                if x0 <= ox < x0 + width and y0 <= oy < y0 + height:
                    visible.append(obj)
            self._visible = visible
        return self._visible

    def inventory_vector(self) -> np.ndarray:
        return np.array([self._player.inventory[name] for name in ITEMS], np.int64)

    @property
    def player(self) -> Player:
        return self._player

    @property
    def world(self) -> Any:
        return self._world

    @property
    def steps(self) -> int:
        return self._step

    # --- death -----------------------------------------------------------------------
    def _cause_of_death(self) -> str:
        player = self._player
        if isinstance(player.hurt_by, objects.Zombie):
            return "zombie"
        if isinstance(player.hurt_by, objects.Arrow):
            return "skeleton"
        if self._world[player.pos][0] == "lava":
            return "lava"
        for stat, cause in _LIFE_DEATHS:
            if player.inventory[stat] <= 0:
                return cause
        return "unknown"
