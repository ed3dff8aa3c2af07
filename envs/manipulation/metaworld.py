"""Meta-World v3 tasks as Gymnasium envs: `embodied/MetaWorld-<task>-v0`.

Wraps the 50 Meta-World v3 task classes directly (not the MT1 benchmark), so that
`reset(seed=)` controls the object/goal randomisation through the env's own RNG, the
goal is observable (single-task RL needs it; the scripted experts read it), and the
episode cap is Gymnasium's `TimeLimit` (200 steps by default) rather than Meta-World's
500-step internal limit, which raises instead of truncating.

Observations: `obs_mode="state"` gives the 39-d float32 state; `"pixels"` a dict of
camera images; `"state+pixels"` a dict with `state` plus the images. Every camera
image is rendered offscreen with `mujoco.Renderer` at `image_size` (H, W).
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from metaworld.env_dict import ENV_CLS_MAP
from metaworld.policies import ENV_POLICY_MAP

from embodied.errors import ConfigError
from embodied.rendering import Cameras, camera_observation_space, resolve_quality

# Meta-World's experts warn when their gains exceed the action bounds; the env clips, as we do.
warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high", category=UserWarning)

TASKS: tuple[str, ...] = tuple(sorted(name.removesuffix("-v3") for name in ENV_CLS_MAP))
CAMERAS = ("corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")
# The four corner cameras are mounted upside down in Meta-World's MJCF (their image "up"
# axis points below the horizon): their raw images are rotated 180 degrees to be upright.
_UPSIDE_DOWN = frozenset({"corner", "corner2", "corner3", "corner4"})
OBS_MODES = ("state", "pixels", "state+pixels")


def check_task(task: str) -> str:
    """Return the Meta-World v3 class key for `task`, or raise naming the valid tasks."""
    if task not in TASKS:
        close = difflib.get_close_matches(task, TASKS, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"unknown Meta-World task '{task}'{hint}; valid tasks: {', '.join(TASKS)}")
    return f"{task}-v3"


class MetaWorldEnv(gym.Env):
    """One Meta-World v3 task with seeded randomisation and optional camera observations."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(
        self,
        task: str = "reach",
        obs_mode: str = "state",
        cameras: Sequence[str] = ("corner",),
        image_size: Sequence[int] = (64, 64),
        render_mode: str | None = None,
        render_size: Sequence[int] = (256, 256),
        render_camera: str = "corner",
        render_quality: str = "auto",
        video_quality: str = "full",
    ) -> None:
        """
        Args:
            task: Meta-World v3 task name without the version, e.g. "reach", "door-open".
            obs_mode: "state", "pixels" or "state+pixels".
            cameras: cameras rendered into the observation in the pixel modes.
            image_size: (height, width) of observation images.
            render_mode: None or "rgb_array" (frames for videos).
            render_size: (height, width) of `render()` frames.
            render_camera: camera used by `render()`.
            render_quality: fast, full or auto (fast on software GL) for observation images;
                see `embodied.rendering.RENDER_QUALITIES`.
            video_quality: the same for `render()` frames (videos keep the full look by default).
        """
        key = check_task(task)
        if obs_mode not in OBS_MODES:
            raise ConfigError(f"unknown obs_mode '{obs_mode}'; choose one of: {', '.join(OBS_MODES)}")
        for cam in (*cameras, render_camera):
            if cam not in CAMERAS:
                raise ConfigError(f"unknown Meta-World camera '{cam}'; choose from: {', '.join(CAMERAS)}")
        if render_mode not in (None, "rgb_array"):
            raise ConfigError(f"unsupported render_mode '{render_mode}'; use 'rgb_array' or leave it unset")
        self.task = task
        self.obs_mode = obs_mode
        self.cameras = tuple(cameras) if obs_mode != "state" else ()
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.render_mode = render_mode
        self.render_size = (int(render_size[0]), int(render_size[1]))
        self.render_camera = render_camera
        self.render_quality = resolve_quality(render_quality)
        self.video_quality = resolve_quality(video_quality, "video_quality")

        self._env = ENV_CLS_MAP[key]()
        self._env._partially_observable = False  # goal position in obs[36:39]
        del self._env.sawyer_observation_space  # cached property: recompute with the goal bounds
        self._env._freeze_rand_vec = False  # new object/goal positions on every reset...
        self._env.seeded_rand_vec = True  # ...drawn from the env's seeded RNG, not np.random
        self._env._set_task_called = True
        self._env.max_path_length = np.iinfo(np.int64).max  # the cap is TimeLimit's job
        self._expert = ENV_POLICY_MAP[key]()
        self._cameras = Cameras()
        self._state = np.zeros(39, dtype=np.float32)

        raw = self._env.sawyer_observation_space
        state_space = spaces.Box(raw.low.astype(np.float32), raw.high.astype(np.float32), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self.observation_space = camera_observation_space(state_space, obs_mode, self.cameras, self.image_size)

    # --- Gymnasium API -------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.seed(seed)
        elif self._env._np_random is None:  # never seeded: derive from our own RNG
            self._env.seed(int(self.np_random.integers(2**31 - 1)))
        raw, _ = self._env.reset()
        self._state = raw.astype(np.float32)
        return self._observation(), {"success": False}

    def step(self, action: np.ndarray):
        raw, reward, terminated, truncated, info = self._env.step(np.asarray(action, dtype=np.float32))
        self._state = raw.astype(np.float32)
        info = dict(info)
        info["success"] = bool(info["success"])
        return self._observation(), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.camera_image(self.render_camera, self.render_size, self.video_quality)

    def close(self) -> None:
        self._cameras.close()
        self._env.close()

    # --- extras --------------------------------------------------------------------
    def expert_action(self, gain: float = 1.0) -> np.ndarray:
        """Action of Meta-World's scripted expert for the current state.

        `gain` < 1 scales the expert's output before it is clipped to the action bounds: a
        lower-gain controller whose actions saturate less (Meta-World's experts are
        proportional controllers with gains up to 25, so some are bang-bang at the bounds).
        """
        action = gain * self._expert.get_action(self._state.astype(np.float64))
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def camera_image(
        self, camera: str, size: tuple[int, int], quality: str | None = None, segmentation: bool = False
    ) -> np.ndarray:
        """Render `camera` at (height, width) and `quality` (default: the observations') as an upright
        HxWx3 uint8 image, or with `segmentation` its HxWx2 (object id, type) map; see Renderer.render."""
        quality = quality or self.render_quality
        image = self._cameras.render(self._env.model, self._env.data, camera, size, quality, segmentation)
        return np.ascontiguousarray(image[::-1, ::-1]) if camera in _UPSIDE_DOWN else image

    def _observation(self):
        if self.obs_mode == "state":
            return self._state.copy()
        obs = {"state": self._state.copy()} if self.obs_mode == "state+pixels" else {}
        obs.update({cam: self.camera_image(cam, self.image_size) for cam in self.cameras})
        return obs


def register(max_episode_steps: int = 200) -> list[str]:
    """Register `embodied/MetaWorld-<task>-v0` for every Meta-World v3 task."""
    from embodied.envs.registration import register_variants

    variants = {task: ({"task": task}, max_episode_steps) for task in TASKS}
    return register_variants("embodied/MetaWorld-{}-v0", "embodied.envs.manipulation.metaworld:MetaWorldEnv", variants)
