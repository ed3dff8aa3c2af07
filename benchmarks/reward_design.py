"""Sparse vs hand-written vs LLM-designed rewards on the Crafter tasks, same PPO budget.

    python benchmarks/reward_design.py [--tasks CollectWood,EatCow,DiamondLava] [--seeds 0,1,2]
        [--steps 100000] [--rewards sparse,handwritten,designed] [--design]
        [--iterations 2] [--samples 3] [--design-steps 30000] [--out runs/bench_rewards] [--jobs 2]

`--design` first runs `embodied-design-reward` per task (the local model unless
--design-args say otherwise; resumed if a run in --out stopped), then copies its best
reward.py and its LLM store into benchmarks/designed/<task>/, so the designed arm replays
without a model. The designed arm trains benchmarks/designed/<task>/reward.py.

Each cell is one `embodied-train experiment=ppo_crafter_<task> reward=<kind> seed=<s>` run
(skipped if complete in --out, so the benchmark resumes; `--jobs` at once, one torch thread
each). Prints per task and reward the task's own success pooled over all seeds' evaluation
episodes with its 95% Wilson interval, the per-seed rates, lava deaths and steps to
success; then, for each design run, the attempts failing at each stage and the LLM's wall
time. Last, the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import command_line, train_once

from embodied.agents.auto_mc_reward.loop import snake
from embodied.evaluation import wilson_interval

DESIGNED = Path(__file__).parent / "designed"
LABEL = {"sparse": "sparse", "handwritten": "hand-written", "designed": "designed (local 1.5B)"}


def run(task: str, reward: str, seed: int, steps: int, out: Path) -> dict:
    overrides = [
        f"experiment=ppo_crafter_{snake(task)}",
        f"reward={reward}",
        f"seed={seed}",
        f"total_steps={steps}",
        "eval.video_episodes=1",
    ]
    if reward == "designed":
        overrides.append(f"reward.path={(DESIGNED / task / 'reward.py').resolve()}")
    return train_once(out / f"{snake(task)}_{reward}_s{seed}", overrides)


def design(task: str, args: argparse.Namespace, out: Path) -> Path:
    """One embodied-design-reward run (resumed if stopped); its best reward and store go to benchmarks/designed/<task>."""
    run_dir = out / f"design_{snake(task)}"
    status = (
        json.loads((run_dir / "summary.json").read_text()).get("status")
        if (run_dir / "summary.json").exists()
        else None
    )
    if status != "complete":
        argv = [
            sys.executable,
            "-m",
            "embodied.agents.auto_mc_reward.loop",
            f"task={task}",
            f"iterations={args.iterations}",
            f"samples={args.samples}",
            f"train.total_steps={args.design_steps}",
            f"train.jobs={args.jobs}",
            'train.overrides=["eval.episodes=20","eval.video=false"]',
            f"run_dir={run_dir}",
            *(["resume=true"] if status is not None else []),
            *args.design_args,
        ]
        print("running:", " ".join(argv[2:]), file=sys.stderr, flush=True)
        subprocess.run(argv, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    dest = DESIGNED / task
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    publish(run_dir, dest)
    return run_dir


def publish(run_dir: Path, dest: Path) -> None:
    """The text of a design run worth committing: the best reward, the LLM store, the config, every
    candidate's critique and metrics, and the summary (not the training runs)."""
    if (run_dir / "best").exists():
        shutil.copyfile(run_dir / "best" / "reward.py", dest / "reward.py")
    shutil.copytree(run_dir / "llm_store", dest / "llm_store")
    shutil.copyfile(run_dir / "summary.json", dest / "summary.json")
    shutil.copyfile(run_dir / ".hydra" / "config.yaml", dest / "config.yaml")
    for path in sorted((run_dir / "iterations").glob("*/candidates/*/*.json")):
        target = dest / path.relative_to(run_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def design_report(task: str) -> str:
    """Attempts failing at each stage and the LLM's seconds by role, from the committed design record."""
    summary = json.loads((DESIGNED / task / "summary.json").read_text())
    stages: Counter[str] = Counter()
    for it in summary["iterations"]:
        stages.update(it.get("stages", {}))
    seconds: Counter[str] = Counter()
    for path in (DESIGNED / task / "llm_store").glob("*-*.json"):
        entry = json.loads(path.read_text())
        seconds[entry.get("tag", "?").split("/")[0]] += entry.get("seconds", 0.0)
    total = sum(stages.values())
    order = ("format", "static", "sandbox", "semantic", "llm_review", "accepted")
    cells = " | ".join(f"{stages[s]}" for s in order)
    llm = sum(seconds.values())
    fit = [it.get("success_rate") for it in summary["iterations"] if it["status"] == "trained"]
    best = f"{max(fit):.0%}" if fit else "–"
    return f"| {task} | {len(summary['iterations'])} | {total} | {cells} | {best} | {llm / 60:.1f} min |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="CollectWood,EatCow,DiamondLava")
    parser.add_argument("--rewards", default="sparse,handwritten,designed")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--design", action="store_true", help="run embodied-design-reward first (needs a model)")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--design-steps", type=int, default=30_000, help="PPO steps per candidate while designing")
    parser.add_argument(
        "--design-args",
        nargs="*",
        default=[],
        help="extra embodied-design-reward overrides (e.g. revisions=1 llm.seed=3)",
    )
    parser.add_argument("--out", default="runs/bench_rewards")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="training runs at once")
    args = parser.parse_args(argv)
    tasks, rewards = args.tasks.split(","), args.rewards.split(",")
    out = Path(args.out)
    if args.design:
        for task in tasks:
            design(task, args, out)
    if "designed" in rewards and not all((DESIGNED / t / "reward.py").is_file() for t in tasks):
        parser.error("reward 'designed' needs benchmarks/designed/<task>/reward.py for every task: run with --design")
    seeds = [int(s) for s in args.seeds.split(",")]
    cells = [(task, reward, seed) for task in tasks for reward in rewards for seed in seeds]
    with ThreadPoolExecutor(args.jobs) as pool:  # each job is a subprocess
        done = dict(zip(cells, pool.map(lambda c: run(*c, args.steps, out), cells)))
    print("| task | reward | success (pooled, 95% CI) | per seed | lava deaths | steps to success |")
    print("|---|---|---|---|---:|---:|")
    for task in tasks:
        for reward in rewards:
            summaries = [done[(task, reward, seed)] for seed in seeds]
            episodes = [e for s in summaries for e in s["eval_episodes"]]
            wins = sum(e["success"] for e in episodes)
            low, high = wilson_interval(wins, len(episodes))
            per_seed = ", ".join(f"{s['metrics']['eval/success_rate']:.0%}" for s in summaries)
            lava = np.mean([e["death_cause"] == "lava" for e in episodes])
            steps = [e["success_step"] for e in episodes if e["success"]]
            to_success = f"{np.mean(steps):.1f}" if steps else "–"
            print(
                f"| {task} | {LABEL[reward]} | {wins / len(episodes):.0%} ({low:.0%}–{high:.0%}) | {per_seed} | {lava:.0%} | {to_success} |",
                flush=True,
            )
    print(
        f"\n{args.steps} PPO steps per run (one torch thread, {args.jobs} runs at once), {len(seeds)} seeds, 50 evaluation episodes per run pooled over seeds."
    )
    if "designed" in rewards:
        print(
            "\n| design run | iterations | attempts | failed: format | static | sandbox | semantic | LLM review | accepted | design-time success of the best | LLM wall time |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for task in [*tasks, *(f"{t}-rerun" for t in tasks if (DESIGNED / f"{t}-rerun").is_dir())]:
            print(design_report(task))
    print(f"command: {command_line('benchmarks/reward_design.py', argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
