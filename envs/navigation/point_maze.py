"""Gymnasium-Robotics point mazes as goal-conditioned Gymnasium envs: `embodied/PointMaze-<maze>-v0`.

A force-actuated ball (action: x/y force in [-1, 1]) must reach a goal in one of
Gymnasium-Robotics' maze layouts (Open, UMaze, Medium, Large). We build its
`PointMazeEnv` directly, so no TimeLimit or checker wrappers sit inside ours; the
episode cap is our registration's, equal to Gymnasium-Robotics' for each maze.

Observations (float32): `obs_mode="goal"` gives Gymnasium-Robotics' dict
`observation` (x, y, vx, vy), `achieved_goal` (x, y), `desired_goal` (x, y), for
MultiInputPolicy and HER; `"flat"` gives one vector `observation + desired_goal` (6,).
`compute_reward(achieved_goal, desired_goal, info)` is the env's own reward function.

Reward: `sparse` is 1 within 0.45 of the goal, else 0; `dense` is exp(-distance).
`continuing_task=False` terminates when the goal is reached; `True` draws a new goal
there and goes on (the step that reaches it still shows and rewards the old goal).
`info["success"]` (within 0.45 of the goal) comes on every reset and step; it is False on
reset unless reset options put the start inside the goal radius.
`reset(seed=s)` seeds the goal and start draws; `reset(options={"goal_cell": (i, j),
"reset_cell": (i, j)})` places them in given free cells (with the usual +-0.25 noise).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from embodied.errors import ConfigError

# Gymnasium-Robotics' layouts (gymnasium_robotics.envs.maze.maps) and its registered episode caps.
MAZES: dict[str, tuple[str, int]] = {
    "Open": ("OPEN", 300),
    "UMaze": ("U_MAZE", 300),
    "Medium": ("MEDIUM_MAZE", 600),
    "Large": ("LARGE_MAZE", 800),
}
REWARDS = ("sparse", "dense")
OBS_MODES = ("goal", "flat")
SUCCESS_DISTANCE = 0.45
"""Gymnasium-Robotics' goal radius (its docs say 0.5; its code uses 0.45)."""


def _import_point_maze() -> tuple[type, Any]:
    """Import Gymnasium-Robotics' PointMazeEnv and maps, muting its unrelated Adroit notice on stderr."""
    with contextlib.redirect_stderr(io.StringIO()):
        from gymnasium_robotics.envs.maze import maps
        from gymnasium_robotics.envs.maze.point_maze import PointMazeEnv
    return PointMazeEnv, maps


class PointMazeEnv(gym.Env):
    """One Gymnasium-Robotics point maze; see the module docstring for observations, rewards and seeds."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 100}  # the ball's control rate: 1 / dt, dt = 0.01 s

    def __init__(
        self,
        maze: str = "UMaze",
        reward: str = "sparse",
        obs_mode: str = "goal",
        continuing_task: bool = False,
        render_mode: str | None = None,
        render_size: Sequence[int] = (256, 256),
    ) -> None:
        """
        Args:
            maze: Open, UMaze, Medium or Large.
            reward: sparse (1 within 0.45 of the goal) or dense (exp(-distance)).
            obs_mode: goal (dict) or flat (observation + desired_goal).
            continuing_task: False ends the episode at the goal; True draws a new goal and goes on.
            render_mode: None or "rgb_array" (frames for videos).
            render_size: (height, width) of `render()` frames.
        """
        if maze not in MAZES:
            raise ConfigError(f"unknown PointMaze maze '{maze}'; choose from: {', '.join(MAZES)}")
        if reward not in REWARDS:
            raise ConfigError(f"unknown reward '{reward}' for PointMaze; choose from: {', '.join(REWARDS)}")
        if obs_mode not in OBS_MODES:
            raise ConfigError(f"unknown obs_mode '{obs_mode}' for PointMaze; choose from: {', '.join(OBS_MODES)}")
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"render_mode must be rgb_array or None, got '{render_mode}'")
        if len(render_size) != 2 or min(int(v) for v in render_size) <= 0:
            raise ConfigError(f"render_size must be two positive integers (height, width), got {list(render_size)}")
        self.maze, self.reward_mode, self.obs_mode = maze, reward, obs_mode
        self.continuing_task = bool(continuing_task)
        self.render_mode = render_mode
        self.render_size = (int(render_size[0]), int(render_size[1]))

        robotics_env_cls, maps = _import_point_maze()
        maze_map = getattr(maps, MAZES[maze][0])
        height, width = self.render_size
        self._env = robotics_env_cls(
            maze_map=maze_map,
            render_mode=render_mode,
            reward_type=reward,
            continuing_task=self.continuing_task,
            reset_target=self.continuing_task,  # its default (False) would keep the reached goal forever
            width=width,
            height=height,
        )
        # The maze MJCF is written to a temp file that Gymnasium-Robotics never deletes; it is loaded now.
        with contextlib.suppress(OSError):
            os.remove(self._env.tmp_xml_file_path)
        self._env.point_env.mujoco_renderer.default_cam_config = self._top_down_camera(maze_map)
        self._seeded = False

        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        vec = lambda n: spaces.Box(-np.inf, np.inf, shape=(n,), dtype=np.float32)  # noqa: E731
        if obs_mode == "goal":
            self.observation_space = spaces.Dict(
                {"observation": vec(4), "achieved_goal": vec(2), "desired_goal": vec(2)}
            )
        else:
            self.observation_space = vec(6)

    # --- Gymnasium API ---------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """New goal and start (from `seed`, or cells given as options["goal_cell"] / options["reset_cell"])."""
        super().reset(seed=seed)
        if seed is None and not self._seeded:  # never seeded: derive the maze's RNG from ours
            seed = int(self.np_random.integers(2**31 - 1))
        self._seeded = True
        raw, info = self._env.reset(seed=seed, options=options)
        return self._obs(raw), {**info, "success": bool(info["success"])}

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Apply an (x, y) force in [-1, 1]; terminates at the goal unless the task is continuing."""
        action = np.asarray(action, dtype=np.float64)
        raw, reward, terminated, truncated, info = self._env.step(action)
        info = {**info, "success": bool(info["success"])}
        return self._obs(raw), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:
        """A top-down (H, W, 3) uint8 frame of the whole maze, or None without render_mode="rgb_array"."""
        if self.render_mode != "rgb_array":
            return None
        from embodied.rendering import require_rendering

        require_rendering()
        return self._env.render()

    def close(self) -> None:
        """Release the MuJoCo renderer."""
        self._env.close()

    # --- goal-conditioned extras -------------------------------------------------------
    def compute_reward(self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any) -> np.ndarray | float:
        """Our reward for (batches of) achieved/desired goals, e.g. for HER relabelling."""
        return self._env.compute_reward(np.asarray(achieved_goal), np.asarray(desired_goal), info)

    @property
    def goal(self) -> np.ndarray:
        """The current desired goal (x, y)."""
        return self._env.goal.astype(np.float32)

    @property
    def maze_map(self) -> list[list[Any]]:
        """The layout as Gymnasium-Robotics' list of rows (1: wall, 0: free); cells are (row, col)."""
        return self._env.maze.maze_map

    # --- pieces ----------------------------------------------------------------------
    def _obs(self, raw: dict[str, np.ndarray]):
        if self.obs_mode == "goal":
            return {key: raw[key].astype(np.float32) for key in ("observation", "achieved_goal", "desired_goal")}
        return np.concatenate([raw["observation"], raw["desired_goal"]]).astype(np.float32)

    def _top_down_camera(self, maze_map: list[list[Any]]) -> dict[str, Any]:
        """A camera straight above the maze centre (+y up, +x right), far enough to frame the whole maze."""
        rows, cols = len(maze_map), len(maze_map[0])
        height, width = self.render_size
        fovy = math.radians(float(self._env.point_env.model.vis.global_.fovy))
        half_extent = max(rows / 2, cols / 2 * height / width) + 0.1
        wall_height = float(self._env.maze.maze_height)
        return {
            "lookat": np.zeros(3),
            "distance": half_extent / math.tan(fovy / 2) + wall_height,
            "elevation": -90.0,
            "azimuth": 90.0,
        }


def register() -> list[str]:
    """Register `embodied/PointMaze-<maze>-v0` for every maze, each with Gymnasium-Robotics' cap."""
    from embodied.envs.registration import register_variants

    variants = {maze: ({"maze": maze}, cap) for maze, (_, cap) in MAZES.items()}
    return register_variants("embodied/PointMaze-{}-v0", "embodied.envs.navigation.point_maze:PointMazeEnv", variants)
