"""`embodied-collect`: scripted-expert demonstrations written as a zarr dataset.

    embodied-collect env=embodied/MetaWorld-reach-v0 episodes=40 out=data/reach
    embodied-collect env=embodied/MetaWorld-door-open-v0 episodes=40 out=data/door obs_mode=state+pixels image_size=[96,96]

Keeps successful episodes only unless keep_failures=true; records the expert's
success rate over every attempted episode in the dataset's attributes. With
action_noise > 0 the executed action is the expert's plus Gaussian noise, and the
recorded label is the clean expert action (label=expert, DART-style) or the
executed one (label=executed). The dataset appears at `out` only when complete.

Multi-task envs (an unwrapped env with a `tasks` attribute, e.g. embodied/MetaWorld-MT15-v0):
`episodes` counts per task. Each attempt resets the task with the fewest kept episodes
(ties: task order) through `reset(options={"task": ...})`, and the dataset attributes
add `tasks`, `task_success_rate`, `task_attempts` and each kept episode's task
(`episode_tasks`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
from omegaconf import MISSING

from embodied.errors import ConfigError, DatasetError


@dataclass
class CollectConfig:
    env: str = MISSING
    """Registered env id with a scripted expert, e.g. embodied/MetaWorld-reach-v0."""
    episodes: int = MISSING
    """Episodes to keep (per task for multi-task envs)."""
    out: str = MISSING
    """Dataset path (a zarr folder)."""
    seed: int = 0
    """Attempt i resets with seed + i."""
    keep_failures: bool = False
    max_attempts: Optional[int] = None
    """Give up after this many attempts in all (default 3 x the episodes to keep, over all tasks)."""
    action_noise: float = 0.0
    """Std of Gaussian noise added to executed actions (in action units)."""
    label: str = "expert"
    """Recorded action: expert (clean) or executed (with noise)."""
    stop_on_success: bool = False
    """End an episode at its first success instead of at the time limit."""
    overwrite: bool = False
    obs_mode: Optional[str] = None
    cameras: Optional[list[str]] = None
    image_size: Optional[list[int]] = None
    max_episode_steps: Optional[int] = None
    tasks: Optional[list[str]] = None
    """Tasks of the generic multi-task env: env=embodied/MetaWorld-multitask-v0 tasks=[reach,push]."""

    def __post_init__(self) -> None:
        if self.episodes <= 0:
            raise ConfigError(f"episodes must be > 0, got {self.episodes}")
        if self.label not in ("expert", "executed"):
            raise ConfigError(f"label must be expert or executed, got '{self.label}'")
        if self.action_noise < 0:
            raise ConfigError(f"action_noise must be >= 0, got {self.action_noise}")


def _env_kwargs(args: CollectConfig) -> dict[str, Any]:
    names = ("obs_mode", "cameras", "image_size", "max_episode_steps", "tasks")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _as_dict(obs: Any) -> dict[str, np.ndarray]:
    return dict(obs) if isinstance(obs, dict) else {"state": obs}


def collect(args: CollectConfig) -> Path:
    """Collect the demonstrations; return the dataset path."""
    from tqdm import tqdm

    from embodied.data import DatasetWriter
    from embodied.envs import make

    env = make(args.env, **_env_kwargs(args))
    expert = getattr(env.unwrapped, "expert_action", None)
    if expert is None:
        raise ConfigError(
            f"env '{args.env}' has no scripted expert (no expert_action()); choose an env that has one, e.g. embodied/MetaWorld-reach-v0"
        )
    tasks: tuple[str, ...] = tuple(getattr(env.unwrapped, "tasks", None) or ())
    total = args.episodes * max(len(tasks), 1)
    max_attempts = args.max_attempts or 3 * total
    noise_rng = np.random.default_rng(args.seed)
    attempts = successes = 0
    task_kept, task_attempts, task_successes = dict.fromkeys(tasks, 0), dict.fromkeys(tasks, 0), dict.fromkeys(tasks, 0)
    episode_tasks: list[str] = []
    writer = DatasetWriter(
        args.out,
        env_id=args.env,
        observation_space=env.observation_space,
        action_space=env.action_space,
        collector=f"scripted-expert:{type(env.unwrapped).__name__}",
        overwrite=args.overwrite,
    )
    with writer, tqdm(total=total, desc="episodes kept", disable=None) as progress:
        while writer.num_episodes < total and attempts < max_attempts:
            seed = args.seed + attempts
            if tasks:
                task = min(tasks, key=task_kept.__getitem__)  # first of the fewest kept
                obs, info = env.reset(seed=seed, options={"task": task})
            else:
                obs, info = env.reset(seed=seed)
            steps: dict[str, list] = {"obs": [], "action": [], "reward": [], "success": []}
            success, done = bool(info.get("success", False)), False
            while not done:
                clean = expert()
                executed = clean
                if args.action_noise > 0:
                    noisy = clean + noise_rng.normal(0.0, args.action_noise, size=clean.shape)
                    executed = np.clip(noisy, env.action_space.low, env.action_space.high).astype(clean.dtype)
                steps["obs"].append(_as_dict(obs))
                steps["action"].append(clean if args.label == "expert" else executed)
                obs, reward, terminated, truncated, info = env.step(executed)
                steps["reward"].append(reward)
                steps["success"].append(bool(info.get("success", False)))
                success = success or steps["success"][-1]
                done = terminated or truncated or (args.stop_on_success and success)
            attempts += 1
            successes += success
            if tasks:
                task_attempts[task] += 1
                task_successes[task] += success
                if success or args.keep_failures:
                    task_kept[task] += 1
                    episode_tasks.append(task)
            if success or args.keep_failures:
                keys = steps["obs"][0].keys()
                writer.add_episode(
                    obs={k: np.stack([o[k] for o in steps["obs"]]) for k in keys},
                    actions=np.asarray(steps["action"], dtype=np.float32),
                    rewards=np.asarray(steps["reward"], dtype=np.float32),
                    successes=np.asarray(steps["success"], dtype=bool),
                    seed=seed,
                )
                progress.update(1)
        if writer.num_episodes < total:
            if tasks:
                short = ", ".join(
                    f"{t} {task_kept[t]}/{args.episodes} ({task_successes[t]}/{task_attempts[t]} attempts succeeded)"
                    for t in tasks
                    if task_kept[t] < args.episodes
                )
                raise DatasetError(
                    f"the expert kept {writer.num_episodes}/{total} episodes ({args.episodes} per task of {len(tasks)}) in {attempts} attempts "
                    f"(success rate {successes / attempts:.0%}; short: {short}); nothing written; raise max_attempts, lower action_noise or pass keep_failures=true"
                )
            raise DatasetError(
                f"the expert kept {writer.num_episodes}/{args.episodes} episodes in {attempts} attempts "
                f"(success rate {successes / attempts:.0%}); nothing written; raise max_attempts, lower action_noise or pass keep_failures=true"
            )
        extra_attrs = {
            "success_rate": successes / attempts,
            "attempts": attempts,
            "action_noise": args.action_noise,
            "label": args.label,
            "keep_failures": args.keep_failures,
            "stop_on_success": args.stop_on_success,
            "env_kwargs": _env_kwargs(args),
        }
        if tasks:
            extra_attrs.update(
                {
                    "tasks": list(tasks),
                    "task_success_rate": {t: task_successes[t] / task_attempts[t] for t in tasks},
                    "task_attempts": dict(task_attempts),
                    "episode_tasks": episode_tasks,
                }
            )
        path = writer.close(extra_attrs=extra_attrs)
    env.close()
    per_task = f" ({args.episodes} per task of {len(tasks)})" if tasks else ""
    print(
        f"kept {total} episodes{per_task} of {attempts} attempts; expert success rate {successes / attempts:.1%}",
        file=sys.stderr,
    )
    print(path)
    return path


def main() -> None:
    from embodied.cli import parse_args, run_command

    run_command(lambda: collect(parse_args(CollectConfig, sys.argv[1:], "embodied-collect")))


if __name__ == "__main__":
    main()
