"""Reward sandbox overhead: reward calls/s through `RewardSandbox` against the same reward in-process.

    python benchmarks/sandbox_overhead.py [--seconds 2] [--repeats 3] [--views 512] [--json out.json]

Views are `info["mc"]` dicts recorded from embodied/Crafter-CollectWood-v0 (symbolic,
uniform-random policy, resets included). Two rewards, both written as an LLM would:

  typical   ~20 lines of dict lookups on inventory, near_blocks, target and life_stats,
            with episode memory (about 1 us per call in-process)
  numpy     the same signals through a dozen small numpy operations (about 10-20 us)

"in-process" calls the function directly, one memory dict per slot; "<isolation>, batch B"
sends B views per `call` (one round trip), slots cycling over 16 like a 16-env vector
env, through a sandbox with `isolation=python` (the Python layers only) and with
`isolation=kernel` (the default: seccomp, Landlock, a network namespace), so the cost of
the kernel layer is measured in the same run. Each variant runs `--repeats` times for `--seconds`, interleaved, and the best rate
is kept. Before timing, sandboxed results are checked to equal in-process results.
Prints a Markdown table and, last, the command line.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from typing import Any, Callable

import numpy as np

import embodied.envs as envs
from embodied.sandbox import RewardSandbox

TYPICAL = """
import math


def reward(view, memory):
    inv, near = view["inventory"], view["near_blocks"]
    wood = inv["wood"]
    collect = 1.0 * max(0, wood - memory.get("wood", wood))
    memory["wood"] = wood
    dist = near.get("tree")
    if dist is None:
        approach = -0.01
    else:
        last = memory.get("tree_dist")
        approach = 0.0 if last is None else 0.1 * (last - dist)
        memory["tree_dist"] = dist
    facing = 0.05 if view["target"]["block"] == "tree" else 0.0
    danger = -0.02 * max(0, 5 - view["life_stats"]["health"])
    seen = memory.setdefault("seen", set())
    pos = view["location_stats"]["pos"]
    explore = 0.0 if pos in seen else 0.01
    seen.add(pos)
    total = collect + approach + facing + danger + explore
    return total, {"collect": collect, "approach": approach, "facing": facing, "danger": danger, "explore": explore}
"""

NUMPY = """
import numpy as np

TARGETS = ("tree", "water", "stone")
WEIGHTS = np.array([1.0, 0.3, 0.2])


def reward(view, memory):
    near, life = view["near_blocks"], view["life_stats"]
    dists = np.array([near.get(name, 10.0) for name in TARGETS])
    closeness = float(np.dot(WEIGHTS, np.exp(-dists / 3.0)))
    approach = closeness - memory.get("closeness", closeness)
    memory["closeness"] = closeness
    stats = np.array([life["health"], life["food"], life["drink"]], dtype=float)
    danger = -0.05 * float(np.sum(np.clip(4.0 - stats, 0.0, None)))
    pos = np.array(view["location_stats"]["pos"], dtype=float)
    start = memory.setdefault("start", pos)
    explore = 0.001 * float(np.linalg.norm(pos - start))
    wood = view["inventory"]["wood"]
    collect = float(np.maximum(0, wood - memory.get("wood", wood)))
    memory["wood"] = wood
    total = collect + approach + danger + explore
    return total, {"collect": collect, "approach": approach, "danger": danger, "explore": explore}
"""

REWARDS = {"typical": TYPICAL, "numpy": NUMPY}
BATCHES = (1, 16, 64)
SLOTS = 16


def record_views(n: int, seed: int = 0) -> list[dict]:
    """`n` info["mc"] views from a random-policy Crafter run."""
    env = envs.make("embodied/Crafter-CollectWood-v0", obs_mode="symbolic")
    rng = np.random.default_rng(seed)
    _, info = env.reset(seed=seed)
    views = [info["mc"]]
    while len(views) < n:
        _, _, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        views.append(info["mc"])
        if terminated or truncated:
            _, info = env.reset(seed=seed + len(views))
    env.close()
    return views


def in_process(source: str, views: list[dict]) -> tuple[Callable[[], int], list]:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<reward>", "exec"), namespace)
    fn, memories = namespace["reward"], [{} for _ in range(SLOTS)]

    def run() -> int:
        for i, view in enumerate(views):
            fn(view, memories[i % SLOTS])
        return len(views)

    fresh: list[dict] = [{} for _ in range(SLOTS)]
    return run, [fn(view, fresh[i % SLOTS]) for i, view in enumerate(views)]


def sandboxed(sandbox: RewardSandbox, views: list[dict], batch: int) -> Callable[[], int]:
    chunks = [
        (views[i : i + batch], [j % SLOTS for j in range(i, i + batch)])
        for i in range(0, len(views) - batch + 1, batch)
    ]

    def run() -> int:
        for chunk, slots in chunks:
            sandbox.call(chunk, slots)
        return len(chunks) * batch

    return run


def rate(run: Callable[[], int], seconds: float) -> float:
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        calls += run()
    return calls / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--views", type=int, default=512)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    views = record_views(args.views)
    rows: list[dict[str, Any]] = []
    for name, source in REWARDS.items():
        direct, expected_first = in_process(source, views)
        sandboxes = {iso: RewardSandbox(source, isolation=iso) for iso in ("python", "kernel")}
        try:
            variants = {"in-process": direct}
            for iso, sandbox in sandboxes.items():
                if sandbox.call(views, [i % SLOTS for i in range(len(views))]) != expected_first:
                    raise SystemExit(f"{name}: sandboxed results ({iso}) differ from in-process results")
                variants.update({f"{iso}, batch {b}": sandboxed(sandbox, views, b) for b in BATCHES})
            best = dict.fromkeys(variants, 0.0)
            for _ in range(args.repeats):
                for variant, run in variants.items():
                    best[variant] = max(best[variant], rate(run, args.seconds))
                    print(f"{name} {variant}: {best[variant]:.0f} calls/s", file=sys.stderr, flush=True)
            start_ms = sandboxes["kernel"].stats["start_s"] * 1e3
        finally:
            for sandbox in sandboxes.values():
                sandbox.close()
        rows += [
            {
                "reward": name,
                "variant": v,
                "calls_per_s": r,
                "us_per_call": 1e6 / r,
                "ratio": r / best["in-process"],
                "start_ms": start_ms,
            }
            for v, r in best.items()
        ]
    print(
        f"\nReward calls/s, {len(views)} recorded Crafter views, best of {args.repeats} x {args.seconds:g} s "
        f"(worker start-up: {rows[-1]['start_ms']:.0f} ms)\n"
    )
    print("| reward | variant | calls/s | µs/call | vs in-process |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['reward']} | {r['variant']} | {r['calls_per_s']:,.0f} | {r['us_per_call']:.1f} | {r['ratio']:.2f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    print(
        f"\ncommand: python {shlex.join(['benchmarks/sandbox_overhead.py', *(argv if argv is not None else sys.argv[1:])])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
