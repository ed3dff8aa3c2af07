"""ACT-JEPA vs ACT on the paper's 15 Meta-World v3 tasks: success per task, probe, speed.

    python benchmarks/act_jepa.py                          # state row, 3 seeds, the CPU preset
    python benchmarks/act_jepa.py --obs pixels --seeds 0   # pixel row
    python benchmarks/act_jepa.py --preset paper           # the published sizes (d=512, batch 128): a GPU job

1. Demos: `embodied-collect env=embodied/MetaWorld-MT15-v0 episodes=40` (40 successful
   scripted-expert episodes per task, 200-step cap), made once and reused.
2. One `embodied-train experiment=act_jepa_metaworld15[_pixels] agent=<act_jepa|act>` run per
   agent and seed (complete runs in --out are reused), evaluated on 20 episodes per task
   and probed (frozen encoder -> next 30 states, on the held-out 10% of demos).
3. Speed: training updates/s from the run's log; inference latency (ms per chunk query,
   batch 1, this CPU) timed on the trained checkpoint.

Prints Markdown tables (mean ± 95% CI over seeds) and, last, the command line; writes
results.json next to the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import command_line, fmt, train_once, trained_agent, updates_per_s

from embodied.envs.manipulation.metaworld_multitask import SUITES

# The published architecture is far beyond this 2-core CPU (about 5 s per step at d=512, batch
# 128). The CPU preset keeps the method and the recipe and shrinks width and batch.
PRESETS = {
    "paper": [],
    "cpu": [
        "agent.dim=128",
        "agent.ffn=512",
        "agent.heads=4",
        "agent.predictor_dim=64",
        "agent.predictor_ffn=256",
        "agent.batch_size=64",
    ],
}
LABELS = {"act_jepa": "ACT-JEPA", "act": "ACT (baseline)"}


def collect(demos: Path, episodes: int, pixels: bool) -> None:
    if (demos / "zarr.json").exists():
        return
    args = [
        sys.executable,
        "-m",
        "embodied.collect",
        "env=embodied/MetaWorld-MT15-v0",
        f"episodes={episodes}",
        f"out={demos}",
    ]
    if pixels:
        args += ["obs_mode=state+pixels", "image_size=[64,64]"]
    print("collecting:", " ".join(args[1:]), file=sys.stderr, flush=True)
    subprocess.run(args, check=True)


def query_ms(agent: object, obs: object, queries: int) -> float:
    """Median wall time of one chunk query (batch 1)."""
    times = []
    for _ in range(queries):
        start = time.perf_counter()
        agent.predict_chunk(obs)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def latency_ms(run_dir: Path, queries: int = 50) -> float:
    """Median ms per chunk query on the run's last checkpoint (batch 1, one thread)."""
    _, env, agent = trained_agent(run_dir)
    obs, _ = env.reset(seed=0)
    env.close()
    return query_ms(agent, obs, queries)


def evaluate_inference(run_dir: Path, episodes_per_task: int, **settings: object) -> float:
    """Success rate of the run's last checkpoint with other inference settings (n_action_steps,
    temporal_ensemble): the same weights, only how the chunks are executed changes."""
    from embodied.evaluation import run_episodes

    config, env, agent = trained_agent(run_dir)
    for key, value in settings.items():
        setattr(agent.config, key, value)
    results = run_episodes(
        env, agent.act, 15 * episodes_per_task, config.seed + config.eval.seed_offset, reset_policy=agent.reset
    )
    env.close()
    return float(np.mean([r.success for r in results]))


INFERENCE = {
    "requery_10": {"n_action_steps": 10},
    "requery_1": {"n_action_steps": 1},
    "temporal_ensemble": {"temporal_ensemble": True},
}


def speed_only(args: argparse.Namespace, agents: list[str], pixels: bool) -> list[str]:
    """Training seconds per step and ms per chunk query at the preset, on a few short demos: the
    pixel row's cost without its hours of rendering."""
    import torch

    from embodied.cli import compose, to_dataclass
    from embodied.envs.factory import EnvFactory
    from embodied.train import build_agent

    torch.set_num_threads(1)
    demos = Path(args.out) / f"speed_demos_{args.obs}"
    if not (demos / "zarr.json").exists():
        extra = ["obs_mode=state+pixels", "image_size=[64,64]"] if pixels else []
        subprocess.run(
            [
                sys.executable,
                "-m",
                "embodied.collect",
                "env=embodied/MetaWorld-MT15-v0",
                "episodes=1",
                "max_episode_steps=40",
                "keep_failures=true",
                f"out={demos}",
                *extra,
            ],
            check=True,
        )
    experiment = "act_jepa_metaworld15_pixels" if pixels else "act_jepa_metaworld15"
    lines = [
        f"| speed, {args.obs}, preset {args.preset} (1 thread) | s per training step | ms per chunk query |",
        "|---|---|---|",
    ]
    for name in agents:
        config = to_dataclass(
            compose(
                "config", [f"experiment={experiment}", f"agent={name}", f"agent.dataset={demos}", *PRESETS[args.preset]]
            )
        )
        factory = EnvFactory(config.env)
        env = factory.make()
        agent = build_agent(config.agent, env.observation_space, env.action_space, torch.device("cpu"), 0)
        train, _ = agent.open_data(factory)
        agent.total_steps, steps = 100, []
        for _ in range(6):
            start = time.perf_counter()
            agent.update(agent.to_device(train.batch(np.random.randint(len(train), size=config.agent.batch_size))))
            steps.append(time.perf_counter() - start)
        obs, _ = env.reset(seed=0)
        lines.append(f"| {LABELS.get(name, name)} | {np.median(steps[1:]):.2f} | {query_ms(agent, obs, 10):.1f} |")
        env.close()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="act_jepa,act")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--obs", choices=("state", "pixels"), default="state")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--steps", type=int, default=4000, help="gradient steps per run")
    parser.add_argument("--demos-per-task", type=int, default=40)
    parser.add_argument("--eval-per-task", type=int, default=20)
    parser.add_argument("--out", default="runs/bench/act_jepa")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--speed-only", action="store_true", help="only time training steps and chunk queries on a few short demos"
    )
    parser.add_argument("--extra", nargs="*", default=[], help="more embodied-train overrides for every run")
    parser.add_argument(
        "--inference",
        default="",
        help=f"also evaluate the trained runs with other inference settings: comma-separated from {','.join(INFERENCE)}",
    )
    parser.add_argument(
        "--inference-per-task", type=int, default=10, help="evaluation episodes per task for --inference"
    )
    args = parser.parse_args(argv)
    agents, seeds = args.agents.split(","), [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    pixels = args.obs == "pixels"
    if args.speed_only:
        print("\n".join(speed_only(args, agents, pixels)) + f"\n\n{command_line('benchmarks/act_jepa.py', argv)}")
        return 0
    demos = out / f"demos_mt15_{args.obs}_{args.demos_per_task}"
    collect(demos, args.demos_per_task, pixels)
    experiment = "act_jepa_metaworld15_pixels" if pixels else "act_jepa_metaworld15"
    cells = [(agent, seed) for agent in agents for seed in seeds]

    def run(cell: tuple[str, int]) -> dict:
        agent, seed = cell
        run_dir = out / f"{args.obs}_{args.preset}_{args.steps}_{agent}_s{seed}"
        overrides = [
            f"experiment={experiment}",
            f"agent={agent}",
            f"seed={seed}",
            f"total_updates={args.steps}",
            f"agent.dataset={demos}",
            f"eval.episodes={15 * args.eval_per_task}",
            *PRESETS[args.preset],
            *args.extra,
        ]
        summary = train_once(run_dir, overrides)
        return {
            **summary["metrics"],
            "updates_per_s": updates_per_s(run_dir),
            "latency_ms": latency_ms(run_dir),
            "train_wall_time_s": summary["train_wall_time_s"],
            "run_dir": str(run_dir),
            "videos": summary.get("videos", []),
        }

    with ThreadPoolExecutor(args.jobs) as pool:  # each job is a subprocess
        done = dict(zip(cells, pool.map(run, cells)))
    tasks = SUITES["MT15"]

    header = "| | " + " | ".join(LABELS.get(a, a) for a in agents) + " |"
    lines = [
        f"Meta-World MT15, {args.obs} observations, {args.demos_per_task} demos/task, {args.steps} steps, preset {args.preset}, {len(seeds)} seed(s), {args.eval_per_task} eval episodes per task; success % (mean ± 95% CI over seeds)",
        "",
        header,
        "|---" * (len(agents) + 1) + "|",
    ]
    for task in tasks:
        lines.append(
            f"| {task} | "
            + " | ".join(fmt([done[(a, s)][f"eval/success_rate/{task}"] for s in seeds]) for a in agents)
            + " |"
        )
    lines.append(
        "| **mean** | "
        + " | ".join("**" + fmt([done[(a, s)]["eval/success_rate"] for s in seeds], digits=1) + "**" for a in agents)
        + " |"
    )
    lines += [
        "",
        "| world-model probe (held-out demos) | " + " | ".join(LABELS.get(a, a) for a in agents) + " |",
        "|---" * (len(agents) + 1) + "|",
    ]
    for key, name, scale, digits in (
        ("probe/rmse", "future-state RMSE (normalised)", 1.0, 3),
        ("probe/ate", "trajectory error ATE (cm, hand)", 100.0, 2),
        ("probe/rmse_static", "RMSE of holding the current state", 1.0, 3),
        ("probe/ate_static", "ATE of holding the current state (cm)", 100.0, 2),
    ):
        lines.append(
            f"| {name} | " + " | ".join(fmt([done[(a, s)][key] for s in seeds], scale, digits) for a in agents) + " |"
        )
    lines += [
        "",
        "| speed (this CPU) | " + " | ".join(LABELS.get(a, a) for a in agents) + " |",
        "|---" * (len(agents) + 1) + "|",
    ]
    lines.append(
        "| training updates/s (1 thread) | "
        + " | ".join(fmt([done[(a, s)]["updates_per_s"] for s in seeds], 1.0, 2) for a in agents)
        + " |"
    )
    lines.append(
        "| inference ms per chunk query | "
        + " | ".join(fmt([done[(a, s)]["latency_ms"] for s in seeds], 1.0, 1) for a in agents)
        + " |"
    )
    variants = [v for v in args.inference.split(",") if v]
    if variants:
        with ThreadPoolExecutor(args.jobs) as pool:
            jobs = {
                (v, a, s): pool.submit(
                    evaluate_inference, Path(done[(a, s)]["run_dir"]), args.inference_per_task, **INFERENCE[v]
                )
                for v in variants
                for a in agents
                for s in seeds
            }
            inference = {k: f.result() for k, f in jobs.items()}
        lines += [
            "",
            f"| inference ({args.inference_per_task} episodes per task) | "
            + " | ".join(LABELS.get(a, a) for a in agents)
            + " |",
            "|---" * (len(agents) + 1) + "|",
        ]
        lines.append(
            "| whole chunk open-loop (as trained above) | "
            + " | ".join(fmt([done[(a, s)]["eval/success_rate"] for s in seeds], digits=1) for a in agents)
            + " |"
        )
        for v in variants:
            lines.append(
                f"| {v} | " + " | ".join(fmt([inference[(v, a, s)] for s in seeds], digits=1) for a in agents) + " |"
            )
    command = command_line("benchmarks/act_jepa.py", argv)
    print("\n".join(lines))
    print(f"\n{command}")
    results = {
        "command": command,
        "preset": PRESETS[args.preset],
        "cells": {f"{a}_s{s}": r for (a, s), r in done.items()},
        "table": lines,
    }
    (out / f"results_{args.obs}_{args.preset}_{args.steps}.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
