"""Pixel throughput on a CPU: our `fast` render profile against Meta-World's own rendering.

    python benchmarks/pixel_throughput.py [--envs reach,pick-place,door-open,memory_pick_place,tabletop]
                                          [--sizes 64,128] [--seconds 2] [--repeats 3]
                                          [--workers 2] [--envs-per-worker 4] [--backends osmesa,egl]
                                          [--measure frames,steps,vector,collect,backends] [--json PATH]

Every measurement runs in a fresh process pinned to the cores it is given (one core
unless stated), with Mesa's llvmpipe rasterising in the calling thread
(`LP_NUM_THREADS=0`, the fastest setting on one core for both sides; our default on
software GL) and its own `MUJOCO_GL`:

1. frames/s of one camera (`corner` for Meta-World, `front` for our scenes) at each size,
   one core: the reference is Meta-World's own `render()` (its `MujocoRenderer`,
   render_mode="rgb_array", same camera and size) for the Meta-World tasks and our `full`
   profile for our scenes; ours is `camera_image(..., "fast")`. The state changes between
   frames (random actions, untimed), so no frame is a cached one.
2. env steps/s with pixel observations, resets included (every 200 steps), one core: the
   raw Meta-World env calling `render()` after every step and reset, against
   `gym.make(..., obs_mode="pixels")` with the fast profile.
3. `--workers` processes: pixel env steps/s through `ShardedVecEnv` with `--envs-per-worker`
   envs in each worker, `--workers` workers on as many cores against one worker on one core:
   the speed-up. (With one env per worker the lock-step costs ~20%: every step waits for the
   slowest worker; a few envs per worker average that out.)
4. `embodied-collect` on MT15 with 64x64 state+pixels, `--collect-episodes` per task, with
   workers=1 and workers=`--workers` (all cores): kept episodes per minute, start-up included.
5. `--backends`: our fast frames/s under each `MUJOCO_GL` (OSMesa and Mesa's EGL).

Each variant runs for `--seconds`, `--repeats` times interleaved; the best rate is kept.
Prints a Markdown table (env, mode, reference, ours, ratio) and, last, the command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import command_line

ROOT = Path(__file__).resolve().parents[1]
METAWORLD = ("reach", "pick-place", "door-open")
SCENES = {"memory_pick_place": "embodied/MemoryPickPlace-v0", "tabletop": "embodied/Tabletop-v0"}
EPISODE = 200


# --- one measurement, in its own process ------------------------------------------------
def _camera(env: str) -> str:
    return "front" if env in SCENES else "corner"


def _make(env: str, **kwargs: Any) -> Any:
    import gymnasium as gym

    import embodied.envs  # noqa: F401

    env_id = SCENES.get(env) or f"embodied/MetaWorld-{env}-v0"
    return gym.make(env_id, disable_env_checker=True, **kwargs)


def _raw(env: str, size: int, render: bool) -> Any:
    """Meta-World's own env of `env`, with its own renderer when `render`."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from env_throughput import make_raw

    kwargs = dict(render_mode="rgb_array", camera_name="corner", width=size, height=size) if render else {}
    return make_raw(env, **kwargs)


def _timed(seconds: float, step: Any, render: Any) -> float:
    """Calls of `render` per second of its own time, a `step` (untimed) before each; the first
    call (which builds the renderer) is not timed."""
    render()
    spent, frames = 0.0, 0
    while spent < seconds:
        step()
        start = time.perf_counter()
        render()
        spent += time.perf_counter() - start
        frames += 1
    return frames / spent


def measure(spec: dict[str, Any]) -> float:
    """The rate `spec` asks for (frames/s or env steps/s); runs inside the measuring process."""
    import numpy as np

    rng = np.random.default_rng(0)
    kind, env_name, size, seconds = spec["kind"], spec["env"], spec["size"], spec["seconds"]
    if kind == "frames" and spec["variant"] == "metaworld":
        env = _raw(env_name, size, render=True)
        env.reset()
        return _timed(seconds, lambda: env.step(rng.uniform(-1, 1, 4)), env.render)
    if kind == "frames":
        env = _make(env_name, render_quality=spec["variant"]).unwrapped
        env.reset(seed=0)
        shape = env.action_space.shape
        return _timed(
            seconds,
            lambda: env.step(rng.uniform(-1, 1, shape).astype(np.float32)),
            lambda: env.camera_image(_camera(env_name), (size, size)),
        )
    if kind == "steps" and spec["variant"] == "metaworld":
        env = _raw(env_name, size, render=True)
        env.reset()
        env.render()
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            env.step(rng.uniform(-1, 1, 4))
            env.render()
            steps += 1
            if steps % EPISODE == 0:
                env.reset()
                env.render()
        return steps / (time.perf_counter() - start)
    if kind == "steps":
        env = _make(env_name, obs_mode="pixels", image_size=(size, size), render_quality="fast")
        env.reset(seed=0)
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            *_, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += 1
            if terminated or truncated or steps % EPISODE == 0:
                env.reset()
        return steps / (time.perf_counter() - start)
    if kind == "vector":
        from embodied.vec_env import ShardedVecEnv

        workers, n = spec["workers"], spec["workers"] * spec["envs_per_worker"]
        make = lambda: _make(env_name, obs_mode="pixels", image_size=(size, size), render_quality="fast")  # noqa: E731
        vec = ShardedVecEnv([make] * n, workers=workers)
        vec.reset()
        for _ in range(5):
            vec.step(rng.uniform(-1, 1, (n, *vec.action_space.shape)).astype(np.float32))
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            vec.step(rng.uniform(-1, 1, (n, *vec.action_space.shape)).astype(np.float32))
            steps += n
        rate = steps / (time.perf_counter() - start)
        vec.close()
        return rate
    raise ValueError(f"unknown measurement {spec}")


def run_measurement(spec: dict[str, Any], cores: int = 1, backend: str | None = None) -> float:
    """`measure(spec)` in a fresh process on the first `cores` CPUs (Mesa settings fresh too)."""
    env = {**os.environ, "LP_NUM_THREADS": "0"}  # llvmpipe in the calling thread: one process, one core
    if backend:
        env["MUJOCO_GL"] = backend
        env["PYOPENGL_PLATFORM"] = backend
    code = (
        "import json, os, sys; os.sched_setaffinity(0, range({cores}));"
        "sys.path.insert(0, {bench!r}); import embodied; from pixel_throughput import measure;"
        "print(json.dumps(measure(json.loads(sys.argv[1]))))"
    ).format(cores=cores, bench=str(ROOT / "benchmarks"))
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600
    )
    if proc.returncode != 0:
        raise SystemExit(f"error: measurement {spec} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def collect_rate(episodes: int, workers: int) -> float:
    """Kept episodes per minute of wall time of an `embodied-collect` run on MT15 with pixels."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            "env=embodied/MetaWorld-MT15-v0",
            f"episodes={episodes}",
            "obs_mode=state+pixels",
            "image_size=[64,64]",
            f"workers={workers}",
            f"out={tmp}/d",
        ]
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "embodied.collect", *argv], capture_output=True, text=True, cwd=ROOT, timeout=3600
        )
        if proc.returncode != 0:
            raise SystemExit(
                f"error: embodied-collect {' '.join(argv)} failed: {proc.stderr.strip().splitlines()[-1:]}"
            )
        return 15 * episodes / ((time.perf_counter() - start) / 60)


def best_of(variants: dict[str, Any], repeats: int) -> dict[str, float]:
    """Best rate of each variant (a thunk) over `repeats` interleaved rounds, order rotating."""
    names = list(variants)
    best = dict.fromkeys(names, 0.0)
    for round_ in range(repeats):
        k = round_ % len(names)
        for name in names[k:] + names[:k]:
            best[name] = max(best[name], variants[name]())
    return best


# --- the table ------------------------------------------------------------------------------
def rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def row(env: str, mode: str, reference: float, ours: float) -> None:
        out.append({"env": env, "mode": mode, "raw": reference, "ours": ours, "ratio": ours / reference})
        print(f"  {env}: {mode}: {reference:.1f} -> {ours:.1f} ({ours / reference:.2f}x)", file=sys.stderr)

    for env in args.envs:
        for size in args.sizes:
            base = {"env": env, "size": size, "seconds": args.seconds}
            reference = "metaworld" if env in METAWORLD else "full"
            for kind in ("frames", "steps"):
                if kind not in args.measure or (kind == "steps" and env not in METAWORLD):
                    continue  # our scenes' reference is our own full profile: frames say it all
                best = best_of(
                    {
                        v: (lambda v=v: run_measurement({**base, "kind": kind, "variant": v}))
                        for v in (reference, "fast")
                    },
                    args.repeats,
                )
                what = "Meta-World's render()" if reference == "metaworld" else "our full profile"
                unit = "frames/s" if kind == "frames" else "env steps/s with pixel obs, resets included"
                row(env, f"{size}x{size} {unit}, 1 core: {what} vs ours fast", best[reference], best["fast"])
            if args.workers > 1 and "vector" in args.measure:
                spec = {**base, "kind": "vector", "envs_per_worker": args.envs_per_worker}
                best = best_of(
                    {
                        "1": lambda: run_measurement({**spec, "workers": 1}, cores=1),
                        "n": lambda: run_measurement({**spec, "workers": args.workers}, cores=args.workers),
                    },
                    args.repeats,
                )
                row(
                    env,
                    f"{size}x{size} pixel env steps/s, ShardedVecEnv, {args.envs_per_worker} envs per worker: "
                    f"1 worker on 1 core vs {args.workers} on {args.workers} cores",
                    best["1"],
                    best["n"],
                )
    if "collect" in args.measure:
        best = best_of({w: (lambda w=w: collect_rate(args.collect_episodes, w)) for w in (1, args.workers)}, 1)
        row(
            "MetaWorld-MT15",
            f"embodied-collect, 64x64 state+pixels, {args.collect_episodes} episodes per task, kept episodes per minute: "
            f"workers=1 vs workers={args.workers}",
            best[1],
            best[args.workers],
        )
    if len(args.backends) == 2 and "backends" in args.measure:
        first, second = args.backends
        for env in args.envs[:1]:
            spec = {"env": env, "size": args.sizes[0], "seconds": args.seconds, "kind": "frames", "variant": "fast"}
            best = best_of({b: (lambda b=b: run_measurement(spec, backend=b)) for b in args.backends}, args.repeats)
            row(
                env,
                f"{args.sizes[0]}x{args.sizes[0]} fast frames/s, 1 core: MUJOCO_GL={first} vs {second}",
                best[first],
                best[second],
            )
    return out


def markdown(table: list[dict[str, Any]]) -> str:
    lines = ["| env | measurement | reference | ours | ratio |", "|---|---|---:|---:|---:|"]
    for r in table:
        lines.append(f"| {r['env']} | {r['mode']} | {r['raw']:,.1f} | {r['ours']:,.1f} | {r['ratio']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", default="reach,pick-place,door-open,memory_pick_place,tabletop")
    parser.add_argument("--sizes", default="64,128", help="square image sizes")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="ShardedVecEnv workers (1: skip that row)")
    parser.add_argument("--envs-per-worker", type=int, default=4, help="envs each ShardedVecEnv worker steps")
    parser.add_argument("--backends", default="osmesa,egl", help="two MUJOCO_GL backends to compare ('' skips)")
    parser.add_argument("--measure", default="frames,steps,vector,collect,backends", help="which kinds to run")
    parser.add_argument("--collect-episodes", type=int, default=8, help="episodes per task of the collect rows")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    args.envs = [e for e in args.envs.split(",") if e]
    unknown = [e for e in args.envs if e not in METAWORLD and e not in SCENES]
    if unknown:
        parser.error(f"unknown env {unknown[0]!r}; choose from {', '.join((*METAWORLD, *SCENES))}")
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.backends = [b for b in args.backends.split(",") if b]
    args.measure = set(args.measure.split(","))
    table = rows(args)
    print(markdown(table))
    print()
    print(
        f"best of {args.repeats} interleaved runs of {args.seconds:g} s each, every one in a fresh process pinned to its cores; "
        f"{os.cpu_count()} CPUs; MUJOCO_GL={os.environ.get('MUJOCO_GL')} unless stated; LP_NUM_THREADS=0"
    )
    command = command_line("benchmarks/pixel_throughput.py", argv)
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "rows": table}, indent=2))
    print(command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
