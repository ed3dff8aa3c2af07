"""Sparse vs hand-written dense vs designed rewards on the Crafter tasks, same PPO budget.

    python benchmarks/reward_design.py [--tasks CollectWood,EatCow,DiamondLava] [--seeds 0,1,2]
        [--steps 100000] [--rewards sparse,handwritten] [--designed TASK=path/to/reward.py ...]
        [--out runs/bench_rewards] [--jobs 2]

Trains one `embodied-train experiment=ppo_crafter_<task> reward=<kind> seed=<s>` run per
cell (skipping runs already complete in --out, so it can be resumed; `--jobs` runs at once,
each with one torch thread), then prints per
task and reward: the task's own success rate pooled over all seeds' evaluation episodes
with its 95% Wilson interval, the per-seed rates, lava death rate and mean steps to
success. `designed` needs a reward.py from `embodied-design-reward` (an LLM run).
Prints a Markdown table and, last, the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import command_line, train_once

from embodied.agents.auto_mc_reward.loop import snake
from embodied.evaluation import wilson_interval


def run(task: str, reward: str, seed: int, steps: int, out: Path, designed: dict[str, str]) -> dict:
    overrides = [
        f"experiment=ppo_crafter_{snake(task)}",
        f"reward={reward}",
        f"seed={seed}",
        f"total_steps={steps}",
        "eval.video_episodes=1",
    ]
    if reward == "designed":
        overrides.append(f"reward.path={designed[task]}")
    return train_once(out / f"{snake(task)}_{reward}_s{seed}", overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="CollectWood,EatCow,DiamondLava")
    parser.add_argument("--rewards", default="sparse,handwritten")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--designed", nargs="*", default=[], help="TASK=path/to/reward.py for reward 'designed'")
    parser.add_argument("--out", default="runs/bench_rewards")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="training runs at once")
    args = parser.parse_args(argv)
    designed = dict(item.split("=", 1) for item in args.designed)
    tasks, rewards = args.tasks.split(","), args.rewards.split(",")
    if "designed" in rewards and not all(t in designed for t in tasks):
        parser.error("reward 'designed' needs --designed TASK=path for every task")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    cells = [(task, reward, seed) for task in tasks for reward in rewards for seed in seeds]
    with ThreadPoolExecutor(args.jobs) as pool:  # each job is a subprocess
        done = dict(zip(cells, pool.map(lambda c: run(*c, args.steps, out, designed), cells)))
    print(
        "| task | reward | success (pooled, 95% CI) | per seed | lava deaths | steps to success |\n|---|---|---|---|---|---|"
    )
    for task in tasks:
        for reward in rewards:
            summaries = [done[(task, reward, seed)] for seed in seeds]
            episodes = [e for s in summaries for e in s["eval_episodes"]]
            wins = sum(e["success"] for e in episodes)
            low, high = wilson_interval(wins, len(episodes))
            per_seed = ", ".join(f"{s['metrics']['eval/success_rate']:.0%}" for s in summaries)
            lava = np.mean([e["death_cause"] == "lava" for e in episodes])
            steps = [e["success_step"] for e in episodes if e["success"]]
            print(
                f"| {task} | {reward} | {wins / len(episodes):.0%} ({low:.0%}–{high:.0%}) | {per_seed} | {lava:.0%} | {np.mean(steps):.1f} |"
                if steps
                else f"| {task} | {reward} | {wins / len(episodes):.0%} ({low:.0%}–{high:.0%}) | {per_seed} | {lava:.0%} | – |",
                flush=True,
            )
    print(
        f"\n{args.steps} PPO steps per run (one torch thread, {args.jobs} runs at once), {len(seeds)} seeds, 50 evaluation episodes per run pooled over seeds."
    )
    print(f"command: {command_line('benchmarks/reward_design.py', argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
