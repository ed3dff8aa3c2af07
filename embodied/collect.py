"""`embodied-collect`: scripted-expert demonstrations written as a zarr dataset.

    embodied-collect env=embodied/MetaWorld-reach-v0 episodes=40 out=data/reach
    embodied-collect env=embodied/MetaWorld-door-open-v0 episodes=40 out=data/door obs_mode=state+pixels image_size=[96,96]
    embodied-collect env=embodied/MetaWorld-MT15-v0 episodes=40 out=data/mt15 obs_mode=state+pixels workers=2

Keeps successful episodes only unless keep_failures=true; records the expert's
success rate over every attempted episode in the dataset's attributes. With
action_noise > 0 the executed action is the expert's plus Gaussian noise (drawn from
an RNG seeded by the run's seed and the attempt's), and the recorded label is the clean
expert action (label=expert, DART-style) or the executed one (label=executed). With
expert_gain < 1 (Meta-World) the expert's output is scaled before it is clipped to the action
bounds: a lower-gain expert whose actions saturate less. With expert_smoothing = s > 0 the
expert acts through a low-pass filter, a_t = s * a_(t-1) + (1 - s) * expert(state_t), which
removes the chatter of an expert that switches between modes on a state boundary. The
three apply to every task, or to `expert_tasks` only. The dataset appears at `out` only
when complete.

The attributes record, per task and in all, the expert's success rate over the attempts and
two properties of the kept episodes' action labels: `action_jerk`, the mean |a_t - a_{t-1}|
over steps and action dimensions, and `action_saturation`, the fraction of entries at the
action bounds (a bang-bang expert is high on both, and a policy regressing it averages).

Attempts form one stream per task: the j-th attempt at task t (of n) resets with seed
`seed + j*n + t`, and a task's kept episodes are the first `episodes` of its stream that
succeed (or all, with keep_failures). Episodes are written in the order (j, t), so the
dataset is the same whatever `workers` is: with workers > 1 the attempts run in that many
processes (each with its own env and renderer), a few ahead of what is known to be needed;
attempts that turn out not to be needed are dropped and not counted.

Multi-task envs (an unwrapped env with a `tasks` attribute, e.g. embodied/MetaWorld-MT15-v0):
`episodes` counts per task, a task is reset through `reset(options={"task": ...})`, and
the dataset attributes add `tasks`, `task_success_rate`, `task_attempts` and each kept
episode's task (`episode_tasks`).
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
    workers: int = 1
    """Processes collecting attempts in parallel (the dataset does not depend on it)."""
    tasks: Optional[list[str]] = None
    """Tasks of the generic multi-task env: env=embodied/MetaWorld-multitask-v0 tasks=[reach,push]."""
    render_quality: Optional[str] = None
    """Profile of the observation images: fast, full or auto (the env's default); recorded in the dataset."""
    expert_gain: float = 1.0
    """Scale of the expert's output before clipping (< 1: a lower-gain expert; Meta-World only)."""
    expert_smoothing: float = 0.0
    """Low-pass filter of the expert's actions, in [0, 1): a_t = s * a_(t-1) + (1 - s) * expert(state_t)."""
    expert_tasks: Optional[list[str]] = None
    """Tasks of a multi-task env that expert_gain, expert_smoothing and action_noise apply to (None: all)."""

    def __post_init__(self) -> None:
        if self.episodes <= 0:
            raise ConfigError(f"episodes must be > 0, got {self.episodes}")
        if self.label not in ("expert", "executed"):
            raise ConfigError(f"label must be expert or executed, got '{self.label}'")
        if self.action_noise < 0:
            raise ConfigError(f"action_noise must be >= 0, got {self.action_noise}")
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.expert_gain <= 0:
            raise ConfigError(f"expert_gain must be > 0, got {self.expert_gain}")
        if not 0 <= self.expert_smoothing < 1:
            raise ConfigError(f"expert_smoothing must be in [0, 1), got {self.expert_smoothing}")

    def expert_settings(self, task: str | None) -> tuple[float, float, float]:
        """(expert gain, expert smoothing, action noise) on `task`."""
        if self.expert_tasks is None or task in self.expert_tasks:
            return self.expert_gain, self.expert_smoothing, self.action_noise
        return 1.0, 0.0, 0.0


def _env_kwargs(args: CollectConfig) -> dict[str, Any]:
    names = ("obs_mode", "cameras", "image_size", "max_episode_steps", "tasks", "render_quality")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _as_dict(obs: Any) -> dict[str, np.ndarray]:
    return dict(obs) if isinstance(obs, dict) else {"state": obs}


def run_attempt(env: Any, args: CollectConfig, seed: int, task: str | None) -> dict[str, Any]:
    """One expert episode from `seed` (on `task`, for a multi-task env), as stacked arrays."""
    expert = env.unwrapped.expert_action
    gain, smoothing, noise = args.expert_settings(task)
    noise_rng = np.random.default_rng((args.seed, seed))
    obs, info = env.reset(seed=seed, options={"task": task} if task else None)
    steps: dict[str, list] = {"obs": [], "action": [], "reward": [], "success": []}
    success, done = bool(info.get("success", False)), False
    previous = None
    while not done:
        clean = expert(gain) if gain != 1.0 else expert()
        if smoothing > 0 and previous is not None:
            clean = (smoothing * previous + (1 - smoothing) * clean).astype(clean.dtype)
        previous = clean
        executed = clean
        if noise > 0:
            noisy = clean + noise_rng.normal(0.0, noise, size=clean.shape)
            executed = np.clip(noisy, env.action_space.low, env.action_space.high).astype(clean.dtype)
        steps["obs"].append(_as_dict(obs))
        steps["action"].append(clean if args.label == "expert" else executed)
        obs, reward, terminated, truncated, info = env.step(executed)
        steps["reward"].append(reward)
        steps["success"].append(bool(info.get("success", False)))
        success = success or steps["success"][-1]
        done = terminated or truncated or (args.stop_on_success and success)
    keys = steps["obs"][0].keys()
    actions = np.asarray(steps["action"], dtype=np.float32)
    at_bound = np.isclose(actions, env.action_space.low) | np.isclose(actions, env.action_space.high)
    return {
        "obs": {k: np.stack([o[k] for o in steps["obs"]]) for k in keys},
        "actions": actions,
        "jerk": float(np.abs(np.diff(actions, axis=0)).mean()) if len(actions) > 1 else 0.0,
        "saturation": float(at_bound.mean()),
        "rewards": np.asarray(steps["reward"], dtype=np.float32),
        "successes": np.asarray(steps["success"], dtype=bool),
        "seed": seed,
        "success": success,
    }


class Schedule:
    """Which attempts to run and, from their outcomes, which to keep, in the order (j, t).

    `plan()` names the next attempt worth starting (assuming those under way succeed, and
    within `max_attempts` counting those under way);
    `report()` takes an outcome in any order; `ready()` yields the attempts whose place in
    the (j, t) order is reached, with whether each is kept, so the result never depends
    on how many ran at once.
    """

    def __init__(
        self, tasks: tuple[str, ...], episodes: int, keep_failures: bool, seed: int, max_attempts: int
    ) -> None:
        self.tasks, self.episodes, self.keep_failures = tasks or (None,), episodes, keep_failures
        self.seed, self.max_attempts = seed, max_attempts
        n = len(self.tasks)
        self.kept, self.attempts, self.successes = [0] * n, [0] * n, [0] * n
        self._planned, self._open = [0] * n, [0] * n  # next j to plan; planned but not yet ordered
        self._results: list[dict[int, dict[str, Any]]] = [{} for _ in range(n)]
        self._j = self._t = 0  # the next place in the (j, t) order

    def seed_of(self, j: int, t: int) -> int:
        return self.seed + j * len(self.tasks) + t

    @property
    def total(self) -> int:
        return self.episodes * len(self.tasks)

    def done(self) -> bool:
        return all(k >= self.episodes for k in self.kept) or sum(self.attempts) >= self.max_attempts

    def plan(self) -> tuple[int, int] | None:
        """(j, t) of the next attempt to start, or None when none may be needed (or the budget is spent)."""
        if sum(self.attempts) + sum(self._open) >= self.max_attempts:
            return None
        short = [t for t in range(len(self.tasks)) if self.kept[t] + self._open[t] < self.episodes]
        if not short:
            return None
        t = min(short, key=lambda i: (self._planned[i], i))
        self._planned[t] += 1
        self._open[t] += 1
        return self._planned[t] - 1, t

    def report(self, j: int, t: int, result: dict[str, Any]) -> None:
        if self.kept[t] < self.episodes:  # else the task is complete and the attempt not needed
            self._results[t][j] = result

    def ready(self):
        """Yield (t, result, kept) for each attempt whose turn in the (j, t) order has come."""
        n = len(self.tasks)
        while not self.done():
            t = self._t
            if self.kept[t] < self.episodes:
                if self._j not in self._results[t]:
                    return
                result = self._results[t].pop(self._j)
                self._open[t] -= 1
                self.attempts[t] += 1
                self.successes[t] += result["success"]
                keep = result["success"] or self.keep_failures
                self.kept[t] += keep
                if self.kept[t] == self.episodes:  # its attempts still under way are not needed
                    self._open[t] = 0
                    self._results[t].clear()
                yield t, result, keep
            self._t = (t + 1) % n
            self._j += self._t == 0


_WORKER_ENV: Any = None


def _worker_init(args: CollectConfig) -> None:
    global _WORKER_ENV
    from embodied.envs import make

    _WORKER_ENV = make(args.env, **_env_kwargs(args))


def _worker_attempt(args: CollectConfig, seed: int, task: str | None) -> dict[str, Any]:
    return run_attempt(_WORKER_ENV, args, seed, task)


def _outcomes(env: Any, args: CollectConfig, schedule: Schedule):
    """Run the schedule's attempts (in this process, or `args.workers` processes) and yield
    `schedule.ready()`'s items as their turn comes."""
    if args.workers == 1:
        while not schedule.done() and (planned := schedule.plan()) is not None:
            j, t = planned
            schedule.report(j, t, run_attempt(env, args, schedule.seed_of(j, t), schedule.tasks[t]))
            yield from schedule.ready()
        return
    import multiprocessing as mp
    from collections import deque

    window = 2 * args.workers
    with mp.get_context("forkserver").Pool(args.workers, _worker_init, (args,)) as pool:
        running: deque = deque()
        while not schedule.done():
            while len(running) < window and (planned := schedule.plan()) is not None:
                j, t = planned
                seed, task = schedule.seed_of(j, t), schedule.tasks[t]
                running.append((j, t, pool.apply_async(_worker_attempt, (args, seed, task))))
            if not running:
                return  # stalled: the attempt budget is spent
            j, t, pending = running.popleft()
            schedule.report(j, t, pending.get())
            yield from schedule.ready()
        pool.terminate()  # attempts still under way are not needed


def _check_expert(args: CollectConfig, env: Any, tasks: tuple[str, ...]) -> None:
    """One-line errors for expert options the env cannot apply (unknown tasks, a gain it lacks)."""
    import inspect

    if args.expert_tasks is not None:
        if not tasks:
            raise ConfigError(
                f"expert_tasks needs a multi-task env and '{args.env}' has one task; drop it (the expert options apply to that task)"
            )
        unknown = sorted(set(args.expert_tasks) - set(tasks))
        if unknown:
            raise ConfigError(
                f"expert_tasks names tasks '{args.env}' does not have: {', '.join(unknown)}; its tasks: {', '.join(tasks)}"
            )
    if args.expert_gain != 1.0 and "gain" not in inspect.signature(env.unwrapped.expert_action).parameters:
        raise ConfigError(
            f"expert_gain={args.expert_gain}: the expert of '{args.env}' has no gain; leave expert_gain at 1 (Meta-World envs support it)"
        )


def collect(args: CollectConfig) -> Path:
    """Collect the demonstrations; return the dataset path."""
    from tqdm import tqdm

    from embodied.data import DatasetWriter
    from embodied.envs import make

    env = make(args.env, **_env_kwargs(args))
    if getattr(env.unwrapped, "expert_action", None) is None:
        raise ConfigError(
            f"env '{args.env}' has no scripted expert (no expert_action()); choose an env that has one, e.g. embodied/MetaWorld-reach-v0"
        )
    tasks: tuple[str, ...] = tuple(getattr(env.unwrapped, "tasks", None) or ())
    _check_expert(args, env, tasks)
    total = args.episodes * max(len(tasks), 1)
    schedule = Schedule(tasks, args.episodes, args.keep_failures, args.seed, args.max_attempts or 3 * total)
    episode_tasks: list[str] = []
    labels: dict[str, list[tuple[float, float]]] = {}  # task -> (jerk, saturation) of kept episodes
    writer = DatasetWriter(
        args.out,
        env_id=args.env,
        observation_space=env.observation_space,
        action_space=env.action_space,
        collector=f"scripted-expert:{type(env.unwrapped).__name__}",
        overwrite=args.overwrite,
    )
    with writer, tqdm(total=total, desc="episodes kept", disable=None) as progress:
        for t, episode, keep in _outcomes(env, args, schedule):
            if keep:
                writer.add_episode(
                    obs=episode["obs"],
                    actions=episode["actions"],
                    rewards=episode["rewards"],
                    successes=episode["successes"],
                    seed=episode["seed"],
                )
                if tasks:
                    episode_tasks.append(tasks[t])
                labels.setdefault(tasks[t] if tasks else "", []).append((episode["jerk"], episode["saturation"]))
                progress.update(1)
        attempts, successes = sum(schedule.attempts), sum(schedule.successes)
        if writer.num_episodes < total:
            if tasks:
                short = ", ".join(
                    f"{name} {schedule.kept[t]}/{args.episodes} ({schedule.successes[t]}/{schedule.attempts[t]} attempts succeeded)"
                    for t, name in enumerate(tasks)
                    if schedule.kept[t] < args.episodes
                )
                raise DatasetError(
                    f"the expert kept {writer.num_episodes}/{total} episodes ({args.episodes} per task of {len(tasks)}) in {attempts} attempts "
                    f"(success rate {successes / max(attempts, 1):.0%}; short: {short}); nothing written; raise max_attempts, lower action_noise or pass keep_failures=true"
                )
            raise DatasetError(
                f"the expert kept {writer.num_episodes}/{args.episodes} episodes in {attempts} attempts "
                f"(success rate {successes / max(attempts, 1):.0%}); nothing written; raise max_attempts, lower action_noise or pass keep_failures=true"
            )
        extra_attrs = {
            "success_rate": successes / attempts,
            "attempts": attempts,
            "action_noise": args.action_noise,
            "label": args.label,
            "keep_failures": args.keep_failures,
            "stop_on_success": args.stop_on_success,
            "env_kwargs": _env_kwargs(args),
            "expert_gain": args.expert_gain,
            "expert_smoothing": args.expert_smoothing,
            "expert_tasks": args.expert_tasks,
            "action_jerk": float(np.mean([j for v in labels.values() for j, _ in v])),
            "action_saturation": float(np.mean([a for v in labels.values() for _, a in v])),
        }
        if getattr(env.unwrapped, "cameras", ()):  # pixel observations: the profile they were drawn with
            extra_attrs["render_quality"] = env.unwrapped.render_quality
        if tasks:
            extra_attrs.update(
                {
                    "tasks": list(tasks),
                    "task_success_rate": {
                        name: schedule.successes[t] / schedule.attempts[t] for t, name in enumerate(tasks)
                    },
                    "task_attempts": dict(zip(tasks, schedule.attempts)),
                    "task_action_jerk": {name: float(np.mean([j for j, _ in labels[name]])) for name in tasks},
                    "task_action_saturation": {name: float(np.mean([a for _, a in labels[name]])) for name in tasks},
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
