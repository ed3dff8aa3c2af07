"""Crafter-backed Minecraft-like tasks as Gymnasium envs: `embodied/Crafter-<Task>-v0`.

Observation (a dict):
  rgb        (H, W, 3) uint8, Crafter's top-down view with the inventory bar
  grid       the local map around the player as SYMBOLS ids, row-major (7, 9) flattened
  inventory  the 16 inventory counts (health, food, drink, energy, items), 0..9
`obs_mode` picks rgb, symbolic (grid + inventory: no rendering at all, the fast
choice on CPU) or rgb+symbolic. `info["mc"]` is the reward-code view (view.py),
`info["success"]`, `info["death_cause"]` and `info["achievements"]` come every step.

Reward: `sparse` gives 1 when the task first succeeds; `crafter` gives Crafter's own
reward (+1 per new achievement, +-0.1 per health point). Death terminates; success
terminates the three goal tasks; `Survival` succeeds by being alive at the cap.
`reset(seed=s)` makes the world `crafter.Env(seed=s).reset()` would make (for the cave
spawn of DiamondLava, the first such world that has a diamond next to lava).
"""

from __future__ import annotations

from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from embodied.envs.minecraft.engine import ACHIEVEMENTS, DEATH_CAUSES, ITEMS, SYMBOLS, Engine
from embodied.envs.minecraft.tasks import find_cave_spawn, get_task
from embodied.envs.minecraft.view import mc_view
from embodied.errors import ConfigError

OBS_MODES = ("rgb", "symbolic", "rgb+symbolic")
REWARDS = ("sparse", "crafter")
_SPAWN_TRIES = 50


def _pair(value: Sequence[int], name: str) -> tuple[int, int]:
    if len(value) != 2 or min(value) <= 0:
        raise ConfigError(f"{name} must be two positive integers, got {list(value)}")
    return int(value[0]), int(value[1])


class CrafterEnv(gym.Env):
    """One Crafter task; see the module docstring for observations, rewards and seeds."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10, "death_causes": DEATH_CAUSES}

    def __init__(
        self,
        task: str = "Survival",
        obs_mode: str = "rgb",
        image_size: Sequence[int] = (64, 64),
        view: Sequence[int] = (9, 9),
        area: Sequence[int] = (64, 64),
        reward: str = "sparse",
        mc_info: bool = True,
        render_mode: str | None = None,
        render_size: Sequence[int] = (256, 256),
    ) -> None:
        self.task = get_task(task)
        if obs_mode not in OBS_MODES:
            raise ConfigError(f"unknown obs_mode '{obs_mode}' for Crafter; choose from: {', '.join(OBS_MODES)}")
        if reward not in REWARDS:
            raise ConfigError(f"unknown reward '{reward}' for Crafter; choose from: {', '.join(REWARDS)}")
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"render_mode must be rgb_array or None, got '{render_mode}'")
        height, width = _pair(image_size, "image_size")
        self.obs_mode, self.reward_mode, self.mc_info = obs_mode, reward, mc_info
        self.render_mode = render_mode
        self.render_size = _pair(render_size, "render_size")
        self.engine = Engine(
            area=_pair(area, "area"), view=_pair(view, "view"), size=(width, height), render_obs="rgb" in obs_mode
        )
        grid_w, grid_h = self.engine.grid_shape
        self.grid_shape = (grid_h, grid_w)
        obs: dict[str, spaces.Space] = {}
        if "rgb" in obs_mode:
            obs["rgb"] = spaces.Box(0, 255, (height, width, 3), np.uint8)
        if "symbolic" in obs_mode:
            obs["grid"] = spaces.MultiDiscrete(np.full(grid_h * grid_w, len(SYMBOLS)), dtype=np.int64)
            obs["inventory"] = spaces.MultiDiscrete(np.full(len(ITEMS), 10), dtype=np.int64)
        self.observation_space = spaces.Dict(obs)
        self.action_space = spaces.Discrete(len(self.engine.action_names))
        self._succeeded = False
        self.episode_cap: int = self.task.max_episode_steps
        """Survival succeeds by living this long; `embodied.envs.make` sets it to the TimeLimit's cap."""

    # --- Gymnasium API ---------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        world_seed = int(seed) if seed is not None else int(self.np_random.integers(2**31 - 1))
        self._new_world(world_seed)
        self._succeeded = False
        return self._obs(), self._info(done=False)

    def step(self, action):
        native, dead = self.engine.step(int(action))
        newly = not self._succeeded and self._task_done(dead)
        self._succeeded = self._succeeded or newly
        reward = native if self.reward_mode == "crafter" else float(newly)
        terminated = dead or (newly and self.task.achievement is not None)
        return self._obs(), reward, terminated, False, self._info(done=terminated)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        height, width = self.render_size
        return self.engine.render_at((width, height))

    # --- pieces ----------------------------------------------------------------------
    def _new_world(self, seed: int) -> None:
        if self.task.spawn != "cave":
            self.engine.new_world(seed, self.task.start_inventory)
            return
        rng = np.random.default_rng(seed)
        for attempt in range(_SPAWN_TRIES):
            self.engine.new_world(seed if attempt == 0 else int(rng.integers(2**31 - 1)), self.task.start_inventory)
            spawn = find_cave_spawn(self.engine.world, rng)
            if spawn is not None:
                self.engine.world.move(self.engine.player, spawn)
                return
        raise RuntimeError(
            f"no world with a diamond next to lava in {_SPAWN_TRIES} tries from seed {seed}; use a larger area"
        )

    def _task_done(self, dead: bool) -> bool:
        if self.task.achievement is not None:
            return self.engine.player.achievements[self.task.achievement] > 0
        return not dead and self.engine.steps >= self.episode_cap

    def _obs(self) -> dict[str, np.ndarray]:
        obs = {}
        if "rgb" in self.obs_mode:
            obs["rgb"] = self.engine.frame
        if "symbolic" in self.obs_mode:
            obs["grid"] = self.engine.symbolic_grid().astype(np.int64).ravel()
            obs["inventory"] = self.engine.inventory_vector()
        return obs

    def _info(self, done: bool) -> dict[str, Any]:
        info: dict[str, Any] = {"success": self._succeeded, "death_cause": self.engine.death_cause}
        if self.mc_info:
            info["mc"] = mc_view(self.engine, done)
            info["achievements"] = info["mc"]["achievements"]
        else:
            achievements = self.engine.player.achievements
            info["achievements"] = {name: achievements[name] > 0 for name in ACHIEVEMENTS}
        return info
