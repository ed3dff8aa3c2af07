"""Env throughput: our Meta-World envs against the raw Meta-World v3 envs they wrap.

    python benchmarks/env_throughput.py [--steps 5000] [--tasks reach,door-open,pick-place]
                                        [--repeats 3] [--json results.json] [--profile]

Measured in one process, under a fixed random-action sequence (the same for every
variant), with a reset at every episode end (200 steps, our TimeLimit default):

1. state observations: the raw class from `metaworld.env_dict.ENV_CLS_MAP`, configured as
   `MetaWorldEnv` configures it (goal observable, seeded random reset vector), against our
   env through `gym.make` (TimeLimit, OrderEnforcing, PassiveEnvChecker), through
   `gym.make(..., disable_env_checker=True)`, and bare (`MetaWorldEnv` without wrappers);
2. a 2-worker `AsyncVectorEnv` of our env against a 1-env `SyncVectorEnv` (NEXT_STEP
   autoreset): total env steps/s and the speed-up.

Pixel observations are measured by benchmarks/pixel_throughput.py.

Every variant is measured `--repeats` times, interleaved (the order rotates each round),
and the best rate is kept, so a ratio is not an artifact of warm-up or of a busy core.
Env construction is not timed. Before timing, the raw and our env are checked to give
identical observations for the same seed and actions, so both simulate the same thing.

Prints a Markdown table (env, mode, raw steps/s, ours steps/s, ratio) and, last, the
exact command line. `--profile` also prints a cProfile of our env's step loop.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shlex
import sys
import time
from importlib import metadata
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from metaworld.env_dict import ENV_CLS_MAP

import embodied  # noqa: F401  (chooses MUJOCO_GL before mujoco is imported)
import embodied.envs  # noqa: F401  (registers embodied/MetaWorld-<task>-v0)
from embodied.envs.manipulation.metaworld import MetaWorldEnv, check_task
from embodied.errors import EmbodiedError

EPISODE = 200  # steps per episode, for the raw env and (via TimeLimit) ours


def env_id(task: str) -> str:
    """Registered id of a Meta-World task."""
    return f"embodied/MetaWorld-{task}-v0"


def make_raw(task: str, **render_kwargs: Any) -> Any:
    """The raw Meta-World v3 env of `task`, configured as `MetaWorldEnv.__init__` does."""
    env = ENV_CLS_MAP[check_task(task)](**render_kwargs)
    env._partially_observable = False  # goal in obs[36:39]
    del env.sawyer_observation_space  # cached: recompute with the goal bounds
    env._freeze_rand_vec = False  # new object/goal positions every reset...
    env.seeded_rand_vec = True  # ...from the env's seeded RNG
    env._set_task_called = True
    env.max_path_length = np.iinfo(np.int64).max  # episode length is ours to set
    env.seed(0)
    return env


def random_actions(steps: int, batch: int | None = None) -> np.ndarray:
    """The fixed random-action sequence shared by all variants."""
    shape = (steps, 4) if batch is None else (steps, batch, 4)
    return np.random.default_rng(0).uniform(-1.0, 1.0, size=shape).astype(np.float32)


# --- timed loops (construction happens before, and is not timed) --------------------
def time_raw(env: Any, actions: np.ndarray, render: bool = False) -> float:
    """Steps/s of a raw Meta-World env, resetting every EPISODE steps."""
    env.reset()
    if render:
        env.render()
    start = time.perf_counter()
    for t, action in enumerate(actions):
        env.step(action)
        if render:
            env.render()
        if (t + 1) % EPISODE == 0:
            env.reset()
            if render:
                env.render()
    return len(actions) / (time.perf_counter() - start)


def time_ours(env: gym.Env, actions: np.ndarray) -> float:
    """Steps/s of a Gymnasium env, resetting at termination/truncation or every EPISODE
    steps (the bare env has no TimeLimit)."""
    env.reset(seed=0)
    start = time.perf_counter()
    since_reset = 0
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        since_reset += 1
        if terminated or truncated or since_reset == EPISODE:
            env.reset()
            since_reset = 0
    return len(actions) / (time.perf_counter() - start)


def time_vector(vec: gym.vector.VectorEnv, actions: np.ndarray) -> float:
    """Total env steps/s of a vector env (autoreset happens inside `step`)."""
    vec.reset(seed=0)
    start = time.perf_counter()
    for batch in actions:
        vec.step(batch)
    return actions.shape[0] * actions.shape[1] / (time.perf_counter() - start)


def best_of(variants: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Best rate of each variant over `repeats` interleaved rounds (order rotates)."""
    names = list(variants)
    best = {name: 0.0 for name in names}
    for round_ in range(repeats):
        k = round_ % len(names)
        for name in names[k:] + names[:k]:
            best[name] = max(best[name], variants[name]())
    return best


def measured(make: Callable[[], Any], run: Callable[[Any], float]) -> Callable[[], float]:
    """A variant: build the env (untimed), time it, close it."""

    def variant() -> float:
        env = make()
        try:
            return run(env)
        finally:
            env.close()

    return variant


# --- sanity check --------------------------------------------------------------------
def check_same_simulation(task: str, steps: int = 50) -> None:
    """Raise SystemExit unless raw and our env give identical observations."""
    raw, ours = make_raw(task), gym.make(env_id(task), disable_env_checker=True)
    raw.seed(3)
    raw_obs, _ = raw.reset()
    our_obs, _ = ours.reset(seed=3)
    pairs = [(raw_obs, our_obs)]
    for action in random_actions(steps):
        pairs.append((raw.step(action)[0], ours.step(action)[0]))
    raw.close()
    ours.close()
    for t, (a, b) in enumerate(pairs):
        if not np.array_equal(a.astype(np.float32), b):
            raise SystemExit(
                f"error: {task}: raw and our observations differ at step {t}; the benchmark would compare different things"
            )


# --- measurements ----------------------------------------------------------------------
Row = dict[str, Any]


def state_rows(task: str, steps: int, repeats: int) -> list[Row]:
    """Raw vs ours (gym.make, without checker, bare) in state mode."""
    actions = random_actions(steps)
    variants = {
        "raw": measured(lambda: make_raw(task), lambda env: time_raw(env, actions)),
        "gym.make": measured(lambda: gym.make(env_id(task)), lambda env: time_ours(env, actions)),
        "gym.make, no env checker": measured(
            lambda: gym.make(env_id(task), disable_env_checker=True), lambda env: time_ours(env, actions)
        ),
        "bare MetaWorldEnv, no wrappers": measured(lambda: MetaWorldEnv(task), lambda env: time_ours(env, actions)),
    }
    best = best_of(variants, repeats)
    return [
        {"env": env_id(task), "mode": f"state, {name}", "raw": best["raw"], "ours": best[name]}
        for name in variants
        if name != "raw"
    ]


def vector_rows(task: str, steps: int, repeats: int) -> list[Row]:
    """2-worker AsyncVectorEnv vs 1-env SyncVectorEnv, same total env steps."""
    mode = gym.vector.AutoresetMode.NEXT_STEP

    def make_vec(cls: type, n: int) -> Callable[[], gym.vector.VectorEnv]:
        return lambda: cls([lambda: gym.make(env_id(task)) for _ in range(n)], autoreset_mode=mode)

    variants = {
        "sync1": measured(make_vec(gym.vector.SyncVectorEnv, 1), lambda v: time_vector(v, random_actions(steps, 1))),
        "async2": measured(
            make_vec(gym.vector.AsyncVectorEnv, 2), lambda v: time_vector(v, random_actions(steps // 2, 2))
        ),
    }
    best = best_of(variants, repeats)
    return [
        {
            "env": env_id(task),
            "mode": "vector: 2-worker AsyncVectorEnv (ours col.) vs 1-env SyncVectorEnv (raw col.)",
            "raw": best["sync1"],
            "ours": best["async2"],
        }
    ]


def profile_ours(task: str, steps: int) -> str:
    """cProfile of our env's step loop under gym.make, top functions by own time."""
    env = gym.make(env_id(task))
    actions = random_actions(steps)
    profiler = cProfile.Profile()
    profiler.runcall(time_ours, env, actions)
    env.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(20)
    return out.getvalue()


# --- output ----------------------------------------------------------------------------
def markdown(rows: list[Row]) -> str:
    """The results as a Markdown table."""
    lines = ["| env | mode | raw steps/s | ours steps/s | ratio |", "|---|---|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['env']} | {row['mode']} | {row['raw']:.0f} | {row['ours']:.0f} | {row['ratio']:.2f} |")
    return "\n".join(lines)


def command_line() -> str:
    """The command that is running, with the interpreter as the user would type it."""
    exe = sys.executable
    rel = os.path.relpath(exe)
    return shlex.join([rel if not rel.startswith("..") else exe, *sys.argv])


def machine() -> dict[str, Any]:
    """Where the numbers come from."""
    versions = {name: metadata.version(name) for name in ("mujoco", "metaworld", "gymnasium", "numpy")}
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
        **versions,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000, help="env steps per measurement (state and vector)")
    parser.add_argument("--tasks", default="reach,door-open,pick-place", help="comma-separated Meta-World tasks")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best rate is kept")
    parser.add_argument("--no-vector", action="store_true", help="skip the vector-env comparison")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of our env (first task)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for task in tasks:
        check_task(task)  # one-line ConfigError for a typo, before any timing
        check_same_simulation(task)

    rows: list[Row] = []
    for task in tasks:
        print(f"measuring {task} (state) ...", file=sys.stderr)
        rows += state_rows(task, args.steps, args.repeats)
    if not args.no_vector:
        for task in tasks:
            print(f"measuring {task} (vector) ...", file=sys.stderr)
            rows += vector_rows(task, args.steps, args.repeats)
    for row in rows:
        row["ratio"] = row["ours"] / row["raw"]

    command = command_line()
    if args.profile and tasks:
        print(profile_ours(tasks[0], args.steps))
    print(markdown(rows))
    print()
    print(
        f"Random actions, {EPISODE}-step episodes with resets, best of {args.repeats} interleaved runs; "
        f"{os.cpu_count()} CPUs, MUJOCO_GL={os.environ.get('MUJOCO_GL')}. Vector rows: ratio = async speed-up."
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "command": command,
                    "machine": machine(),
                    "steps": args.steps,
                    "repeats": args.repeats,
                    "rows": rows,
                },
                f,
                indent=2,
            )
    print(command)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EmbodiedError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
