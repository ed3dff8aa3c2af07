"""Policy evaluation: run episodes, record videos, summarise with confidence intervals."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import gymnasium as gym
import numpy as np

from embodied.video import write_video


@dataclass
class EpisodeResult:
    seed: int
    episode_return: float
    length: int
    success: bool
    """True if info["success"] was ever True during the episode (Meta-World convention)."""
    video: str | None = None
    success_step: int | None = None
    """Step at which success first happened."""
    death_cause: str | None = None
    """info["death_cause"] at the end (envs with deaths, e.g. Crafter); None: did not die."""
    achievements: dict[str, bool] | None = None
    """info["achievements"] at the end (Crafter): which were unlocked in the episode."""
    final_view: dict[str, Any] | None = None
    """info["mc"] at the last step (Minecraft envs): where the episode ended and what was near."""
    means: dict[str, float] | None = None
    """Per-episode means of the info keys the env lists in metadata["episode_means"] (e.g. the foraging drive)."""
    task: str | None = None
    """info["task"] at the end (multi-task envs, e.g. MetaWorld-MT15): which task the episode was."""

    def as_episode(self) -> dict[str, Any]:
        """The `info["episode"]` form (see embodied.wrappers.EpisodeStatistics)."""
        return {
            "r": self.episode_return,
            "l": self.length,
            "success": self.success,
            "success_step": self.success_step,
            "death_cause": self.death_cause,
            "achievements": self.achievements,
            "means": self.means,
            "task": self.task,
        }


class InfoMeans:
    """Running per-episode means of the info keys an env names in metadata["episode_means"]."""

    def __init__(self, env: gym.Env) -> None:
        self.keys = tuple(env.metadata.get("episode_means", ()))
        self.sums = dict.fromkeys(self.keys, 0.0)
        self.count = 0

    def add(self, info: Mapping[str, Any]) -> None:
        if self.keys:
            self.count += 1
            for key in self.keys:
                self.sums[key] += float(info[key])

    def result(self) -> dict[str, float] | None:
        return {k: v / self.count for k, v in self.sums.items()} if self.keys and self.count else None


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a success rate (sound at 0 and n successes)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean over seeds and the half-width of its Student-t confidence interval (0 for one value)."""
    data = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(data) == 0:
        return float("nan"), float("nan")
    if len(data) == 1:
        return float(data[0]), 0.0
    from scipy import stats

    half = stats.t.ppf(0.5 + confidence / 2, len(data) - 1) * data.std(ddof=1) / math.sqrt(len(data))
    return float(data.mean()), float(half)


def run_episodes(
    env: gym.Env,
    policy: Callable[[Any], np.ndarray],
    episodes: int,
    seed: int,
    reset_policy: Callable[[], None] | None = None,
    video_dir: Path | None = None,
    video_episodes: int = 0,
    video_prefix: str = "episode",
    progress: bool = False,
) -> list[EpisodeResult]:
    """Run `episodes` episodes with seeds seed, seed+1, ...; record the first `video_episodes`."""
    from tqdm import tqdm

    fps = int(env.metadata.get("render_fps", 30))
    results = []
    for i in tqdm(range(episodes), desc="episodes", disable=not progress, leave=False):
        record = video_dir is not None and i < video_episodes
        obs, info = env.reset(seed=seed + i)
        if reset_policy is not None:
            reset_policy()
        frames = [env.render()] if record else []
        total, length, done = 0.0, 0, False
        success_step = 0 if info.get("success", False) else None
        means = InfoMeans(env)
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            means.add(info)
            total += float(reward)
            length += 1
            if success_step is None and info.get("success", False):
                success_step = length
            done = terminated or truncated
            if record:
                frames.append(env.render())
        video = None
        if record:
            video = str(write_video(Path(video_dir) / f"{video_prefix}_{i:03d}_seed{seed + i}.mp4", frames, fps=fps))
        results.append(
            EpisodeResult(
                seed + i,
                total,
                length,
                success_step is not None,
                video,
                success_step,
                info.get("death_cause"),
                info.get("achievements"),
                info.get("mc"),
                means.result(),
                info.get("task"),
            )
        )
    return results


def crafter_score(unlock_rates: Sequence[float]) -> float:
    """Crafter's score (Hafner, 2021): geometric mean of achievement success rates, in %.

    S = exp(mean_i ln(1 + s_i)) - 1 with s_i in percent, so rarely unlocked
    achievements count and the score is 0 only if nothing is ever unlocked.
    """
    rates = 100.0 * np.asarray(unlock_rates, dtype=np.float64)
    return float(np.exp(np.mean(np.log1p(rates))) - 1.0) if len(rates) else 0.0


def episode_metrics(
    episodes: Sequence[Mapping[str, Any]], prefix: str, death_causes: Sequence[str] = ()
) -> dict[str, float]:
    """Task metrics over finished episodes in `info["episode"]` form.

    Always: episodes, success rate, mean return and length. Where the env reports them:
    mean steps to success (successful episodes only), death rate overall and by cause
    (every cause in `death_causes` gets a column, seen or not), the per-episode sum of
    each reward-code component (`reward/<name>`), per-episode means of the info keys the
    env names in metadata["episode_means"] (`mean/<key>`), for Crafter's achievements the
    per-achievement unlock rates and the Crafter score, and for multi-task envs the success
    rate of each task seen (`success_rate/<task>`, over that task's episodes).
    """
    n = len(episodes)
    if n == 0:
        return {}
    out = {
        f"{prefix}episodes": float(n),
        f"{prefix}success_rate": sum(bool(e.get("success", False)) for e in episodes) / n,
        f"{prefix}return_mean": float(np.mean([e["r"] for e in episodes])),
        f"{prefix}length_mean": float(np.mean([e["l"] for e in episodes])),
    }
    steps = [e["success_step"] for e in episodes if e.get("success_step") is not None]
    if steps:
        out[f"{prefix}steps_to_success_mean"] = float(np.mean(steps))
    causes = [e.get("death_cause") for e in episodes]
    if death_causes or any(causes):
        out[f"{prefix}death_rate"] = sum(c is not None for c in causes) / n
        for cause in dict.fromkeys([*death_causes, *(c for c in causes if c)]):
            out[f"{prefix}death_rate/{cause}"] = sum(c == cause for c in causes) / n
    with_components = [e["reward_components"] for e in episodes if e.get("reward_components")]
    for name in dict.fromkeys(k for c in with_components for k in c):
        out[f"{prefix}reward/{name}"] = float(np.mean([c.get(name, 0.0) for c in with_components]))
    with_means = [e["means"] for e in episodes if e.get("means")]
    for name in dict.fromkeys(k for m in with_means for k in m):
        out[f"{prefix}mean/{name}"] = float(np.mean([m[name] for m in with_means if name in m]))
    with_achievements = [e["achievements"] for e in episodes if e.get("achievements")]
    if with_achievements:
        names = list(with_achievements[0])
        rates = [float(np.mean([bool(a.get(name, False)) for a in with_achievements])) for name in names]
        out[f"{prefix}crafter_score"] = crafter_score(rates)
        out.update({f"{prefix}achievement/{name}": rate for name, rate in zip(names, rates)})
    tasks = [e.get("task") for e in episodes]
    for task in dict.fromkeys(t for t in tasks if t):
        of_task = [bool(e.get("success", False)) for e, t in zip(episodes, tasks) if t == task]
        out[f"{prefix}success_rate/{task}"] = sum(of_task) / len(of_task)
    return out


def summarize(
    results: list[EpisodeResult], prefix: str = "eval/", death_causes: Sequence[str] = ()
) -> dict[str, float]:
    """episode_metrics plus the success rate's 95% Wilson interval and the return's std."""
    n = len(results)
    low, high = wilson_interval(sum(r.success for r in results), n)
    out = {
        f"{prefix}episodes": 0.0,
        f"{prefix}success_rate": 0.0,
        f"{prefix}return_mean": 0.0,
        f"{prefix}length_mean": 0.0,
    }
    out.update(episode_metrics([r.as_episode() for r in results], prefix, death_causes))
    out[f"{prefix}success_ci95_low"], out[f"{prefix}success_ci95_high"] = low, high
    out[f"{prefix}return_std"] = float(np.std([r.episode_return for r in results])) if n else 0.0
    return out


def episodes_as_dicts(results: list[EpisodeResult]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]
