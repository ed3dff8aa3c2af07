"""Minecraft-world throughput: our Crafter envs against raw `crafter.Env`, resets included.

    python benchmarks/minecraft_throughput.py [--workers 2] [--seconds 20] [--json out.json]

Every variant runs a uniform-random policy for `--seconds` in `--workers` processes at
once (the same number of cores for everyone), resetting whenever an episode ends, and
reports the summed env steps per second after a warm-up episode (numba compiles on the
first world). Variants:

  raw               crafter.Env as `pip install crafter` gives it: pure-Python noise
  raw+numba         crafter.Env with numba importable (opensimplex then compiles its noise,
                    which this project installs, so it is the stronger baseline)
  ours rgb          embodied/Crafter-Survival-v0, obs_mode=rgb (renders every step)
  ours symbolic     obs_mode=symbolic (no rendering; info["mc"] still built)
  ours vector       `--vector-envs` symbolic envs in an embodied.vec_env.ShardedVecEnv over
                    `--workers` processes, actions from the parent process: what PPO with
                    env.vectorization=async sees (autoreset, infos with info["mc"] included)

Before timing, it checks that our env and raw Crafter make the same world for the same
seeds. Prints a Markdown table and, last, the command line that produced it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shlex
import sys
import time
from typing import Any

ENV_ID = "embodied/Crafter-Survival-v0"
VARIANTS = ("raw", "raw+numba", "ours rgb", "ours symbolic", "ours vector")


def _raw_env(seed: int, numba: bool) -> Any:
    if not numba:
        sys.modules["numba"] = None  # type: ignore[assignment]  (opensimplex falls back to Python)
    import crafter

    return crafter.Env(seed=seed)


def _time_raw(seed: int, seconds: float, numba: bool) -> dict[str, float]:
    import numpy as np

    env = _raw_env(seed, numba)
    rng = np.random.default_rng(seed)
    env.reset()
    steps = episodes = 0
    reset_time = 0.0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, done, _ = env.step(int(rng.integers(17)))
        steps += 1
        if done:
            t = time.perf_counter()
            env.reset()
            reset_time += time.perf_counter() - t
            episodes += 1
    return {"steps": steps, "seconds": time.perf_counter() - start, "episodes": episodes, "reset_s": reset_time}


def _time_ours(seed: int, seconds: float, obs_mode: str) -> dict[str, float]:
    import numpy as np

    import embodied.envs as envs

    env = envs.make(ENV_ID, obs_mode=obs_mode)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    steps = episodes = 0
    reset_time = 0.0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, terminated, truncated, _ = env.step(int(rng.integers(17)))
        steps += 1
        if terminated or truncated:
            t = time.perf_counter()
            env.reset()
            reset_time += time.perf_counter() - t
            episodes += 1
    return {"steps": steps, "seconds": time.perf_counter() - start, "episodes": episodes, "reset_s": reset_time}


def _worker(args: tuple[str, int, float, mp.Barrier, mp.Queue]) -> None:
    variant, seed, seconds, barrier, out = args
    runner = {
        "raw": lambda: _time_raw(seed, seconds, numba=False),
        "raw+numba": lambda: _time_raw(seed, seconds, numba=True),
        "ours rgb": lambda: _time_ours(seed, seconds, "rgb"),
        "ours symbolic": lambda: _time_ours(seed, seconds, "symbolic"),
    }[variant]
    # Warm-up (imports, textures, numba compilation), then start together.
    if variant.startswith("raw"):
        _raw_env(seed + 1000, variant == "raw+numba").reset()
    else:
        import embodied.envs as envs

        envs.make(ENV_ID, obs_mode="symbolic").reset(seed=seed + 1000)
    barrier.wait()
    out.put(runner())


def run_parallel(variant: str, workers: int, seconds: float) -> dict[str, float]:
    """`workers` processes each timing one env; steps summed, rate over the slowest clock."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=((variant, seed, seconds, barrier, out),)) for seed in range(workers)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    steps = sum(r["steps"] for r in results)
    episodes = sum(r["episodes"] for r in results)
    elapsed = max(r["seconds"] for r in results)
    return {
        "steps_per_s": steps / elapsed,
        "episodes": episodes,
        "reset_ms": 1000 * sum(r["reset_s"] for r in results) / max(episodes, 1),
    }


def run_vector(workers: int, num_envs: int, seconds: float) -> dict[str, float]:
    """ShardedVecEnv of `num_envs` symbolic envs over `workers` processes, random actions."""
    import numpy as np

    import embodied.envs as envs
    from embodied.vec_env import ShardedVecEnv
    from embodied.wrappers import EpisodeStatistics

    vec = ShardedVecEnv(
        [lambda: EpisodeStatistics(envs.make(ENV_ID, obs_mode="symbolic")) for _ in range(num_envs)],
        workers=workers,
        start_method="spawn",
    )
    vec.seed(0)
    vec.reset()
    rng = np.random.default_rng(0)
    for _ in range(300):  # warm-up: every worker compiles and generates worlds
        vec.step(rng.integers(17, size=num_envs))
    steps = episodes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        _, _, dones, _ = vec.step(rng.integers(17, size=num_envs))
        steps += num_envs
        episodes += int(np.sum(dones))
    elapsed = time.perf_counter() - start
    vec.close()
    return {"steps_per_s": steps / elapsed, "episodes": episodes, "reset_ms": float("nan")}


def check_same_worlds(seeds: tuple[int, ...] = (0, 1, 2)) -> None:
    """Our reset(seed=s) and crafter.Env(seed=s).reset() must make the same world."""
    import crafter
    import numpy as np

    from embodied.envs.minecraft.crafter_env import CrafterEnv

    for seed in seeds:
        raw = crafter.Env(seed=seed)
        raw_obs = raw.reset()
        ours = CrafterEnv(task="Survival", obs_mode="rgb")
        obs, _ = ours.reset(seed=seed)
        same = np.array_equal(raw._world._mat_map, ours.engine.world._mat_map) and np.array_equal(raw_obs, obs["rgb"])
        if not same:
            raise SystemExit(
                f"error: seed {seed}: our world differs from crafter.Env's; the comparison would be meaningless"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes per variant (default: all cores)"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per variant")
    parser.add_argument("--vector-envs", type=int, default=16, help="envs in the 'ours vector' variant")
    parser.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated subset of: {', '.join(VARIANTS)}"
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; choose from: {', '.join(VARIANTS)}")

    check_same_worlds()
    results: dict[str, dict[str, float]] = {}
    for variant in variants:
        results[variant] = (
            run_vector(args.workers, args.vector_envs, args.seconds)
            if variant == "ours vector"
            else run_parallel(variant, args.workers, args.seconds)
        )
        print(f"{variant}: {results[variant]['steps_per_s']:.0f} steps/s", file=sys.stderr, flush=True)

    base, base_numba = results.get("raw", {}).get("steps_per_s"), results.get("raw+numba", {}).get("steps_per_s")
    print(
        f"\nCrafter throughput, random policy with resets, {args.workers} processes per variant, {args.seconds:.0f} s each "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs)\n"
    )
    print("| variant | env steps/s | vs raw | vs raw+numba | mean reset (ms) | episodes |")
    print("|---|---|---|---|---|---|")
    for variant, r in results.items():
        ratio = f"{r['steps_per_s'] / base:.1f}x" if base else "-"
        ratio_numba = f"{r['steps_per_s'] / base_numba:.1f}x" if base_numba else "-"
        reset = "-" if r["reset_ms"] != r["reset_ms"] else f"{r['reset_ms']:.1f}"
        print(f"| {variant} | {r['steps_per_s']:.0f} | {ratio} | {ratio_numba} | {reset} | {r['episodes']} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"workers": args.workers, "seconds": args.seconds, "results": results}, f, indent=1)
    print(
        f"\ncommand: python {shlex.join(['benchmarks/minecraft_throughput.py', *(argv if argv is not None else sys.argv[1:])])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
