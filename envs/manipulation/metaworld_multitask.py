"""Several Meta-World v3 tasks as one Gymnasium env: `embodied/MetaWorld-<suite>-v0`.

For multi-task agents (e.g. an imitation policy trained on 15 tasks and evaluated per
task): every reset picks one task and resets that task's `MetaWorldEnv`, so object/goal
randomisation, the 39-d state, cameras, success and the scripted expert are exactly
those of the single-task envs. One `MetaWorldEnv` per task is built up front (~0.12 s
each: ~2 s for MT15), because the observation space's state bounds are the union over
the tasks' goal bounds, which Meta-World only knows once a task's env exists; a reset
then costs what a single-task reset costs.

The task is chosen by `reset(options={"task": name})`, else by the seed (`tasks[seed %
n]`, so consecutive seeds cycle through the tasks and n*k evaluation episodes give k per
task), else by the env's own RNG (training: a seeded first reset, then random tasks).
The task env is reset with the same seed, so task t with seed s starts where
`embodied/MetaWorld-t-v0` with seed s starts.

Observations are always a dict: `state` (the 39-d float32 state; not in
`obs_mode="pixels"`), the camera images in the pixel modes (same keys as
`MetaWorldEnv`), and `task`, a float32 one-hot over `tasks`. `info["task"]` names the
current task.
"""

from __future__ import annotations

import difflib
from typing import Any, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from embodied.envs.manipulation.metaworld import TASKS, MetaWorldEnv, check_task
from embodied.errors import ConfigError

SUITES: dict[str, tuple[str, ...]] = {
    # Meta-World's MT10 benchmark (Yu et al., 2019).
    "MT10": (
        "reach",
        "push",
        "pick-place",
        "door-open",
        "drawer-open",
        "drawer-close",
        "button-press-topdown",
        "peg-insert-side",
        "window-open",
        "window-close",
    ),
    # ACT-JEPA's 15-task split.
    "MT15": (
        "button-press-topdown",
        "button-press-topdown-wall",
        "button-press",
        "button-press-wall",
        "coffee-button",
        "coffee-pull",
        "coffee-push",
        "drawer-open",
        "faucet-open",
        "faucet-close",
        "disassemble",
        "door-open",
        "door-close",
        "window-open",
        "window-close",
    ),
    "MT50": TASKS,
}
GENERIC_ID = "embodied/MetaWorld-multitask-v0"


def resolve_tasks(suite: str | None, tasks: Sequence[str] | None) -> tuple[str, ...]:
    """The task list of `suite` or the explicit `tasks` (exactly one of them), validated."""
    if (suite is None) == (tasks is None):
        given = "both suite and tasks" if suite is not None else "neither suite nor tasks"
        raise ConfigError(
            f"Meta-World multi-task env got {given}; pass exactly one: suite=<{'|'.join(SUITES)}> "
            f"or tasks=[reach,push,...] (e.g. gym.make('{GENERIC_ID}', tasks=['reach', 'push']))"
        )
    if suite is not None:
        if suite not in SUITES:
            close = difflib.get_close_matches(suite, SUITES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"unknown Meta-World suite '{suite}'{hint}; choose one of: {', '.join(SUITES)}, or pass tasks=[...]"
            )
        return SUITES[suite]
    if isinstance(tasks, str):
        raise ConfigError(
            f"tasks must be a list of Meta-World task names, got the string '{tasks}'; write tasks=[{tasks}]"
        )
    names = tuple(str(t) for t in tasks)
    if not names:
        raise ConfigError("tasks is empty; list at least one Meta-World task, e.g. tasks=[reach,push]")
    for name in names:
        check_task(name)
    duplicates = sorted({t for t in names if names.count(t) > 1})
    if duplicates:
        raise ConfigError(f"tasks lists {', '.join(duplicates)} more than once; list each task once")
    return names


class MetaWorldMultiTaskEnv(gym.Env):
    """Meta-World v3 tasks behind one env: each reset picks a task; a one-hot `task` observation names it."""

    metadata = dict(MetaWorldEnv.metadata)

    def __init__(
        self,
        suite: str | None = None,
        tasks: Sequence[str] | None = None,
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
            suite: a key of SUITES ("MT10", "MT15", "MT50"); or give `tasks`.
            tasks: explicit Meta-World v3 task names; their order defines the one-hot index.
            obs_mode, cameras, image_size, render_mode, render_size, render_camera, render_quality,
            video_quality: passed to every task's `MetaWorldEnv` (see there).
        """
        self.tasks: tuple[str, ...] = resolve_tasks(suite, tasks)
        self.suite = suite
        self.obs_mode = obs_mode
        self.render_mode = render_mode
        self._envs: dict[str, MetaWorldEnv] = {}
        try:
            for name in self.tasks:
                self._envs[name] = MetaWorldEnv(
                    name,
                    obs_mode=obs_mode,
                    cameras=cameras,
                    image_size=image_size,
                    render_mode=render_mode,
                    render_size=render_size,
                    render_camera=render_camera,
                    render_quality=render_quality,
                    video_quality=video_quality,
                )
        except Exception:
            self.close()
            raise
        self.task: str = self.tasks[0]
        self._index = {name: i for i, name in enumerate(self.tasks)}
        self._onehots = {name: np.eye(len(self.tasks), dtype=np.float32)[i] for name, i in self._index.items()}

        first = self._envs[self.tasks[0]]
        self.cameras = first.cameras
        self.render_quality, self.video_quality = first.render_quality, first.video_quality
        self.action_space = first.action_space
        parts: dict[str, spaces.Space] = {}
        if obs_mode != "pixels":
            boxes = [
                env.observation_space if obs_mode == "state" else env.observation_space["state"]
                for env in self._envs.values()
            ]
            low = np.min([b.low for b in boxes], axis=0)
            high = np.max([b.high for b in boxes], axis=0)
            parts["state"] = spaces.Box(low, high, dtype=np.float32)
        if obs_mode != "state":
            parts.update({cam: first.observation_space[cam] for cam in self.cameras})
        parts["task"] = spaces.Box(0.0, 1.0, shape=(len(self.tasks),), dtype=np.float32)
        self.observation_space = spaces.Dict(parts)

    # --- Gymnasium API -------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        requested = (options or {}).get("task")
        if requested is not None:
            self.task = self._check_known(requested)
        elif seed is not None:
            self.task = self.tasks[seed % len(self.tasks)]
        else:
            self.task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        task_seed = seed if seed is not None else int(self.np_random.integers(2**31 - 1))
        obs, info = self._envs[self.task].reset(seed=task_seed)
        return self._observation(obs), {**info, "task": self.task}

    def step(self, action: np.ndarray):
        obs, reward, terminated, truncated, info = self._envs[self.task].step(action)
        info["task"] = self.task
        return self._observation(obs), reward, terminated, truncated, info

    def render(self) -> np.ndarray | None:
        return self._envs[self.task].render()

    def close(self) -> None:
        for env in self._envs.values():
            env.close()

    # --- extras --------------------------------------------------------------------
    @property
    def task_env(self) -> MetaWorldEnv:
        """The current task's single-task env."""
        return self._envs[self.task]

    def task_index(self, task: str | None = None) -> int:
        """Index of `task` (default: the current one) in `tasks` and the one-hot."""
        return self._index[self._check_known(task or self.task)]

    def expert_action(self, gain: float = 1.0) -> np.ndarray:
        """Action of the current task's Meta-World scripted expert; see MetaWorldEnv.expert_action."""
        return self._envs[self.task].expert_action(gain)

    def camera_image(
        self, camera: str, size: tuple[int, int], quality: str | None = None, segmentation: bool = False
    ) -> np.ndarray:
        """Render `camera` of the current task; see MetaWorldEnv.camera_image."""
        return self._envs[self.task].camera_image(camera, size, quality, segmentation)

    def _check_known(self, task: Any) -> str:
        if not isinstance(task, str) or task not in self._index:
            close = difflib.get_close_matches(str(task), self.tasks, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"task '{task}' is not one of this env's {len(self.tasks)} tasks{hint}; choose from: {', '.join(self.tasks)}"
            )
        return task

    def _observation(self, obs: Any) -> dict[str, np.ndarray]:
        out = {"state": obs} if self.obs_mode == "state" else dict(obs)
        out["task"] = self._onehots[self.task].copy()
        return out


def register(max_episode_steps: int = 200) -> list[str]:
    """Register `embodied/MetaWorld-<suite>-v0` for every suite and the generic `embodied/MetaWorld-multitask-v0` (needs tasks=[...])."""
    from embodied.envs.registration import register_variants

    variants: dict[str, tuple[dict[str, Any], int | None]] = {
        suite: ({"suite": suite}, max_episode_steps) for suite in SUITES
    }
    variants["multitask"] = ({}, max_episode_steps)
    return register_variants(
        "embodied/MetaWorld-{}-v0", "embodied.envs.manipulation.metaworld_multitask:MetaWorldMultiTaskEnv", variants
    )
