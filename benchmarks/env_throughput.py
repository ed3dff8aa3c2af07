"""Env throughput: our wrappers vs the raw Meta-World env, and a 2-worker vector env.

    python benchmarks/env_throughput.py [--steps 5000] [--tasks reach,door-open,pick-place] [--json out.json]

Random actions, resets included at episode ends (200-step episodes). Raw and wrapped
envs are measured in the same process, interleaved, best of `--repeats` runs, so the
ratio is not an artifact of warm-up or of the other core being busy. Prints a
Markdown table and, last, the command that produced it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Callable

import gymnasium as gym
import numpy as np

import embodied.envs  # noqa: F401  (registers the envs)
from embodied.envs.manipulation.metaworld import MetaWorldEnv

EPISODE = 200


def _raw_env(task: str):
    """The raw Meta-World v3 env configured as our wrapper configures it."""
    return MetaWorldEnv(task)._env


def _time_raw(task: str, steps: int) -> float:
    env = _raw_env(task)
    env.seed(0)
    env.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, size=(steps, 4)).astype(np.float32)
    start = time.perf_counter()
    for t in range(steps):
        env.step(actions[t])
        if (t + 1) % EPISODE == 0:
            env.reset()
    return steps / (time.perf_counter() - start)


def _time_ours(make: Callable[[], gym.Env], steps: int) -> float:
    env = make()
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(steps, 4)).astype(np.float32)
    start = time.perf_counter()
    for t in range(steps):
        _, _, terminated, truncated, _ = env.step(actions[t])
        if terminated or truncated:
            env.reset()
    rate = steps / (time.perf_counter() - start)
    env.close()
    return rate


def _time_vector(task: str, steps: int, workers: int, asynchronous: bool) -> float:
    fns = [lambda: gym.make(f"embodied/MetaWorld-{task}-v0") for _ in range(workers)]
    cls = gym.vector.AsyncVectorEnv if asynchronous else gym.vector.SyncVectorEnv
    vec = cls(fns, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    vec.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(steps // workers, workers, 4)).astype(np.float32)
    start = time.perf_counter()
    for a in actions:
        vec.step(a)
    rate = (len(actions) * workers) / (time.perf_counter() - start)
    vec.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--tasks", default="reach,door-open,pick-place")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pixels", action="store_true", help="also measure obs_mode=pixels (64x64 corner camera)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    rows = []
    for task in args.tasks.split(","):
        env_id = f"embodied/MetaWorld-{task}-v0"
        variants: dict[str, Callable[[], float]] = {
            "raw": lambda: _time_raw(task, args.steps),
            "gym.make": lambda: _time_ours(lambda: gym.make(env_id), args.steps),
            "gym.make (no checker)": lambda: _time_ours(lambda: gym.make(env_id, disable_env_checker=True), args.steps),
        }
        best = {name: 0.0 for name in variants}
        for _ in range(args.repeats):  # interleaved, best of N
            for name, fn in variants.items():
                best[name] = max(best[name], fn())
        for name in ("gym.make", "gym.make (no checker)"):
            rows.append({"env": env_id, "mode": f"state, {name}", "raw": best["raw"], "ours": best[name], "ratio": best[name] / best["raw"]})
        sync = max(_time_vector(task, args.steps, 1, False) for _ in range(args.repeats))
        async2 = max(_time_vector(task, args.steps, 2, True) for _ in range(args.repeats))
        rows.append({"env": env_id, "mode": "2-worker AsyncVectorEnv vs 1-env SyncVectorEnv", "raw": sync, "ours": async2, "ratio": async2 / sync})
        if args.pixels:
            px_steps = max(args.steps // 10, EPISODE)
            raw_px = MetaWorldEnv(task, obs_mode="pixels", image_size=(64, 64))
            raw_rate = max(_time_ours(lambda: raw_px, px_steps) for _ in range(1))
            ours_px = max(_time_ours(lambda: gym.make(env_id, obs_mode="pixels", image_size=[64, 64]), px_steps) for _ in range(1))
            rows.append({"env": env_id, "mode": "pixels 64x64, gym.make vs bare wrapper", "raw": raw_rate, "ours": ours_px, "ratio": ours_px / raw_rate})

    print("| env | mode | baseline steps/s | ours steps/s | ratio |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['env']} | {r['mode']} | {r['raw']:.0f} | {r['ours']:.0f} | {r['ratio']:.2f} |")
    command = "python benchmarks/env_throughput.py " + " ".join(sys.argv[1:])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "command": command.strip()}, f, indent=2)
    print(f"\ncommand: {command.strip()}")


if __name__ == "__main__":
    main()
