"""Policy evaluation: run episodes, record videos, summarise with confidence intervals."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

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


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a success rate (sound at 0 and n successes)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


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
        total, length, success, done = 0.0, 0, bool(info.get("success", False)), False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs))
            total += float(reward)
            length += 1
            success = success or bool(info.get("success", False))
            done = terminated or truncated
            if record:
                frames.append(env.render())
        video = None
        if record:
            video = str(write_video(Path(video_dir) / f"{video_prefix}_{i:03d}_seed{seed + i}.mp4", frames, fps=fps))
        results.append(EpisodeResult(seed + i, total, length, success, video))
    return results


def summarize(results: list[EpisodeResult], prefix: str = "eval/") -> dict[str, float]:
    """Success rate with its 95% Wilson interval, mean/std return and mean length."""
    n = len(results)
    wins = sum(r.success for r in results)
    low, high = wilson_interval(wins, n)
    returns = np.array([r.episode_return for r in results], dtype=np.float64)
    return {
        f"{prefix}episodes": float(n),
        f"{prefix}success_rate": wins / n if n else 0.0,
        f"{prefix}success_ci95_low": low,
        f"{prefix}success_ci95_high": high,
        f"{prefix}return_mean": float(returns.mean()) if n else 0.0,
        f"{prefix}return_std": float(returns.std()) if n else 0.0,
        f"{prefix}length_mean": float(np.mean([r.length for r in results])) if n else 0.0,
    }


def episodes_as_dicts(results: list[EpisodeResult]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]
