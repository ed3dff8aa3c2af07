"""ACT-JEPA vs ACT on the paper's 15 Meta-World v3 tasks: success per task, probe, speed.

    python benchmarks/act_jepa.py                          # state row, 3 seeds, the CPU preset
    python benchmarks/act_jepa.py --obs pixels --seeds 0   # pixel row
    python benchmarks/act_jepa.py --preset paper           # the published sizes (d=512, batch 128): a GPU job
    python benchmarks/act_jepa.py --expert-smoothing 0.8 --action-noise 0.2 --expert-tasks door-close   # smoothed, noise-injected door-close expert

1. Demos: `embodied-collect env=embodied/MetaWorld-MT15-v0 episodes=40` (40 successful
   scripted-expert episodes per task, 200-step cap), made once and reused; a table of the
   expert per task (success over attempts, action jerk and saturation of the labels).
2. One `embodied-train experiment=act_jepa_metaworld15[_pixels] agent=<act_jepa|act>` run per
   agent and seed (complete runs in --out are reused), evaluated on 20 episodes per task
   and probed (frozen encoder -> next 30 states, on the held-out 10% of demos); validation
   action L1 against training steps is plotted (val_curves_*.png).
3. Speed: training updates/s from the run's log; inference latency (ms per chunk query,
   batch 1, this CPU) timed on the trained checkpoint.

4. `--inference`: other ways of executing the chunks, chosen on held-out seeds (seed offset
   `--inference-seed-offset`, away from the evaluation seeds); `--final-inference` then
   re-evaluates every run with the chosen one on the evaluation seeds.

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
from typing import Callable

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
    "medium": [
        "agent.dim=256",
        "agent.ffn=1024",
        "agent.heads=8",
        "agent.predictor_dim=128",
        "agent.predictor_ffn=512",
        "agent.batch_size=64",
    ],
}
LABELS = {"act_jepa": "ACT-JEPA", "act": "ACT (baseline)"}


def collect(demos: Path, episodes: int, pixels: bool, expert: list[str]) -> None:
    """The demos, once: `expert` is embodied-collect's expert options (gain, smoothing, noise, tasks)."""
    if (demos / "zarr.json").exists():
        return
    args = [
        sys.executable,
        "-m",
        "embodied.collect",
        "env=embodied/MetaWorld-MT15-v0",
        f"episodes={episodes}",
        f"out={demos}",
        *expert,
    ]
    if pixels:
        args += ["obs_mode=state+pixels", "image_size=[64,64]", f"workers={min(2, os.cpu_count() or 1)}"]
    print("collecting:", " ".join(args[1:]), file=sys.stderr, flush=True)
    subprocess.run(args, check=True)


# embodied-collect's expert options: (key, short name in the demos' name, label in the expert table, default)
EXPERT_OPTIONS = (
    ("expert_gain", "gain", "gain", 1.0),
    ("expert_smoothing", "smooth", "smoothing", 0.0),
    ("action_noise", "noise", "action noise (DART, expert labels)", 0.0),
)


def expert_options(args: argparse.Namespace) -> tuple[list[str], str]:
    """embodied-collect overrides for the expert flags, and the suffix that names their demos."""
    tasks = [t for t in args.expert_tasks.split(",") if t]
    chosen = [
        (key, short, getattr(args, key)) for key, short, _, default in EXPERT_OPTIONS if getattr(args, key) != default
    ]
    overrides = [f"{key}={value}" for key, _, value in chosen]
    suffix = "".join(f"_{short}{value:g}" for _, short, value in chosen)
    if chosen and tasks:
        overrides.append(f"expert_tasks=[{','.join(tasks)}]")
        suffix += "-" + "-".join(tasks)
    return overrides, suffix


def expert_table(demos: Path) -> list[str]:
    """The scripted expert per task, from the dataset's attributes."""
    from embodied.data import DemoDataset

    attrs = DemoDataset.open(demos).attrs
    settings = [
        f"{label} {attrs.get(key, default)}"
        for key, _, label, default in EXPERT_OPTIONS
        if attrs.get(key, default) != default
    ]
    tasks = attrs.get("expert_tasks")
    lines = [
        f"Scripted expert per task ({demos.name}; "
        + (", ".join(settings) + (f" on {', '.join(tasks)}" if tasks else "") if settings else "the default expert")
        + "): success over all attempts; of the kept episodes' labels, jerk = mean |a_t - a_(t-1)| and saturation = fraction of entries at ±1",
        "",
        "| task | expert success | attempts | action jerk | saturation |",
        "|---|---|---|---|---|",
    ]
    for task in attrs["tasks"]:
        lines.append(
            f"| {task} | {100 * attrs['task_success_rate'][task]:.0f}% | {attrs['task_attempts'][task]} "
            f"| {attrs['task_action_jerk'][task]:.3f} | {attrs['task_action_saturation'][task]:.2f} |"
        )
    return lines


def val_curves(run_dirs: dict[str, list[Path]], path: Path) -> list[str]:
    """Plot validation action L1 against steps (one line per run) and return a table of its
    value at each 1/4 of training, mean over seeds."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for (label, dirs), color in zip(run_dirs.items(), ("C0", "C1", "C2", "C3")):
        for i, run_dir in enumerate(dirs):
            with (run_dir / "metrics.csv").open() as f:
                rows = [r for r in csv.DictReader(f) if r.get("losses/val_action_l1")]
            steps = np.array([float(r["step"]) for r in rows])
            l1 = np.array([float(r["losses/val_action_l1"]) for r in rows])
            curves.setdefault(label, []).append((steps, l1))
            ax.plot(steps, l1, color=color, alpha=0.7, label=label if i == 0 else None)
    ax.set_xlabel("gradient steps")
    ax.set_ylabel("validation action L1 (normalised)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    lines = ["| validation action L1 at step | " + " | ".join(curves) + " |", "|---" * (len(curves) + 1) + "|"]
    first = next(iter(curves.values()))[0][0]
    for q in (0.25, 0.5, 0.75, 1.0):
        step = first[min(len(first) - 1, int(round(q * len(first))) - 1)]
        cells = []
        for runs in curves.values():
            values = [l1[np.searchsorted(steps, step)] for steps, l1 in runs if step in steps]
            cells.append(f"{np.mean(values):.3f}")
        lines.append(f"| {int(step)} | " + " | ".join(cells) + " |")
    return lines


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


def evaluate_inference(
    run_dir: Path, episodes_per_task: int, seed_offset: int | None = None, **settings: object
) -> dict[str, float]:
    """Success rate (all tasks, and per task) of the run's last checkpoint with other inference
    settings (n_action_steps, temporal_ensemble): the same weights, only how the chunks are
    executed changes. Seeds start at the run's seed + `seed_offset` (default: its evaluation seeds)."""
    from embodied.evaluation import run_episodes

    config, env, agent = trained_agent(run_dir)
    for key, value in settings.items():
        setattr(agent.config, key, value)
    offset = config.eval.seed_offset if seed_offset is None else seed_offset
    results = run_episodes(env, agent.act, 15 * episodes_per_task, config.seed + offset, reset_policy=agent.reset)
    env.close()
    rates = {"all": float(np.mean([r.success for r in results]))}
    tasks = SUITES["MT15"]  # the task of seed s is tasks[s % 15]
    start = config.seed + offset
    for i in range(len(tasks)):
        rates[tasks[(start + i) % len(tasks)]] = float(np.mean([r.success for r in results[i :: len(tasks)]]))
    return rates


def failure_strip(run_dir: Path, task: str, path: Path, frames: int = 8, tries: int = 10, **settings: object) -> bool:
    """Save a strip of `frames` evenly spaced frames of the first failed evaluation episode on
    `task` (of the run's evaluation seeds, with these inference settings); False if none failed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from embodied.envs.factory import EnvFactory

    config, _, agent = trained_agent(run_dir)
    for key, value in settings.items():
        setattr(agent.config, key, value)
    env = EnvFactory(config.env, seed=config.seed).make(render_mode="rgb_array")
    tasks = SUITES["MT15"]
    start = config.seed + config.eval.seed_offset
    first = next(i for i in range(len(tasks)) if tasks[(start + i) % len(tasks)] == task)
    horizon = env.spec.max_episode_steps
    keep = set(np.linspace(0, horizon - 1, frames).astype(int).tolist())
    for k in range(tries):
        seed = start + first + k * len(tasks)
        obs, _ = env.reset(seed=seed)
        agent.reset()
        shots, success, t, done = {}, False, 0, False
        while not done:
            if t in keep:
                shots[t] = env.render()
            obs, _, terminated, truncated, info = env.step(agent.act(obs))
            success, t, done = success or info.get("success", False), t + 1, terminated or truncated
        if not success:
            fig, axes = plt.subplots(1, len(shots), figsize=(1.6 * len(shots), 1.9))
            for ax, (step, image) in zip(axes, sorted(shots.items())):
                ax.imshow(image)
                ax.set_title(f"t={step}", fontsize=8)
                ax.axis("off")
            fig.suptitle(f"{task}: failed episode, seed {seed}", fontsize=9)
            fig.tight_layout()
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=100)
            plt.close(fig)
            env.close()
            return True
    env.close()
    return False


INFERENCE = {  # each names both settings: a run's config may default to either
    "open_loop": {"n_action_steps": None, "temporal_ensemble": False},
    "requery_15": {"n_action_steps": 15, "temporal_ensemble": False},
    "requery_5": {"n_action_steps": 5, "temporal_ensemble": False},
    "requery_10": {"n_action_steps": 10, "temporal_ensemble": False},
    "requery_1": {"n_action_steps": 1, "temporal_ensemble": False},
    "temporal_ensemble": {"temporal_ensemble": True},
}


def task_rates(metrics: dict) -> dict[str, float]:
    """Per-task success rates from a run's summary metrics."""
    return {task: metrics[f"eval/success_rate/{task}"] for task in SUITES["MT15"]}


def success_rows(rates: Callable[[str, int], dict[str, float]], agents: list[str], seeds: list[int]) -> list[str]:
    """Table rows per task and the mean, from `rates(agent, seed)` (task -> rate, "all" -> mean)."""
    rows = [
        f"| {task} | " + " | ".join(fmt([rates(a, s)[task] for s in seeds]) for a in agents) + " |"
        for task in SUITES["MT15"]
    ]
    mean = " | ".join("**" + fmt([rates(a, s)["all"] for s in seeds], digits=1) + "**" for a in agents)
    return [*rows, f"| **mean** | {mean} |"]


def evaluate_all(
    done: dict, variants: list[str], agents: list[str], seeds: list[int], jobs: int, per_task: int, offset: int | None
) -> dict:
    """evaluate_inference for every (variant, agent, seed), `jobs` processes at a time."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = {
            (v, a, s): pool.submit(evaluate_inference, Path(done[(a, s)]["run_dir"]), per_task, offset, **INFERENCE[v])
            for v in variants
            for a in agents
            for s in seeds
        }
        return {k: f.result() for k, f in futures.items()}


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
    parser.add_argument(
        "--inference-seed-offset",
        type=int,
        default=2_000_000,
        help="--inference runs on seeds seed + this (held out: the evaluation seeds start at seed + 1,000,000)",
    )
    parser.add_argument(
        "--final-inference",
        default="",
        help="re-evaluate every run on its evaluation seeds with this setting (one of the --inference names)",
    )
    parser.add_argument(
        "--failure-strips",
        action="store_true",
        help="a frame strip (PNG) of a failed episode of the first seed's run, per agent, for every task under 80%%",
    )
    parser.add_argument("--expert-gain", type=float, default=1.0, help="embodied-collect expert_gain")
    parser.add_argument("--expert-smoothing", type=float, default=0.0, help="embodied-collect expert_smoothing")
    parser.add_argument(
        "--action-noise", type=float, default=0.0, help="embodied-collect action_noise (executed noise, expert labels)"
    )
    parser.add_argument(
        "--expert-tasks", default="", help="comma-separated tasks the three expert options apply to (default: all)"
    )
    args = parser.parse_args(argv)
    agents, seeds = args.agents.split(","), [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    pixels = args.obs == "pixels"
    if args.speed_only:
        print("\n".join(speed_only(args, agents, pixels)) + f"\n\n{command_line('benchmarks/act_jepa.py', argv)}")
        return 0
    expert_overrides, suffix = expert_options(args)
    demos = out / f"demos_mt15_{args.obs}_{args.demos_per_task}{suffix}"
    collect(demos, args.demos_per_task, pixels, expert_overrides)
    expert = expert_table(demos)
    experiment = "act_jepa_metaworld15_pixels" if pixels else "act_jepa_metaworld15"
    cells = [(agent, seed) for agent in agents for seed in seeds]

    def run(cell: tuple[str, int]) -> dict:
        agent, seed = cell
        run_dir = out / f"{demos.name.removeprefix('demos_mt15_')}_{args.preset}_{args.steps}_{agent}_s{seed}"
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
        f"Meta-World MT15, {args.obs} observations, {args.demos_per_task} demos/task, {args.steps} steps, preset {args.preset}, {len(seeds)} seed(s), {args.eval_per_task} eval episodes per task, inference as the experiment config sets it; success % (mean ± 95% CI over seeds)",
        "",
        header,
        "|---" * (len(agents) + 1) + "|",
    ]

    def rates_of(a: str, s: int) -> dict[str, float]:  # the trained runs' evaluation; --final-inference replaces it
        return {"all": done[(a, s)]["eval/success_rate"], **task_rates(done[(a, s)])}

    lines += success_rows(rates_of, agents, seeds)
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
    unknown = sorted(set(variants + [args.final_inference] * bool(args.final_inference)) - set(INFERENCE))
    if unknown:
        raise SystemExit(f"unknown inference setting(s) {', '.join(unknown)}; choose from {', '.join(INFERENCE)}")
    inference: dict = {}
    if variants:
        inference = evaluate_all(
            done, variants, agents, seeds, args.jobs, args.inference_per_task, args.inference_seed_offset
        )
        lines += [
            "",
            f"| inference (held-out seeds, {args.inference_per_task} episodes per task) | "
            + " | ".join(LABELS.get(a, a) for a in agents)
            + " |",
            "|---" * (len(agents) + 1) + "|",
        ]
        for v in variants:
            lines.append(
                f"| {v} | "
                + " | ".join(fmt([inference[(v, a, s)]["all"] for s in seeds], digits=1) for a in agents)
                + " |"
            )
    if args.final_inference:
        final = evaluate_all(done, [args.final_inference], agents, seeds, args.jobs, args.eval_per_task, None)
        lines += [
            "",
            f"Evaluation seeds again, chunks executed as {args.final_inference} ({args.eval_per_task} episodes per task):",
            "",
            header,
            "|---" * (len(agents) + 1) + "|",
        ]

        def rates_of(a: str, s: int) -> dict[str, float]:
            return final[(args.final_inference, a, s)]

        lines += success_rows(rates_of, agents, seeds)
        inference.update(final)
    if args.failure_strips:
        setting = INFERENCE[args.final_inference] if args.final_inference else {}
        lines += [
            "",
            "| failure strips (tasks under 80%, first seed) | " + " | ".join(LABELS.get(a, a) for a in agents) + " |",
        ]
        lines.append("|---" * (len(agents) + 1) + "|")
        for task in tasks:
            cells = []
            for a in agents:
                rates = [rates_of(a, s)[task] for s in seeds]
                strip = out / "failures" / f"{a}_{task}.png"
                if np.mean(rates) >= 0.8:
                    cells.append("≥ 80%")
                elif failure_strip(Path(done[(a, seeds[0])]["run_dir"]), task, strip, **setting):
                    cells.append(str(strip))
                else:
                    cells.append("no failure in 10 episodes")
            if any(c != "≥ 80%" for c in cells):  # a task every agent solves needs no strip
                lines.append(f"| {task} | " + " | ".join(cells) + " |")
    curves = out / f"val_curves_{demos.name.removeprefix('demos_mt15_')}_{args.preset}_{args.steps}.png"
    lines += [
        "",
        *val_curves({LABELS.get(a, a): [Path(done[(a, s)]["run_dir"]) for s in seeds] for a in agents}, curves),
    ]
    lines.append(f"\n(curves: {curves})")
    lines = expert + [""] + lines
    command = command_line("benchmarks/act_jepa.py", argv)
    print("\n".join(lines))
    print(f"\n{command}")
    results = {
        "command": command,
        "preset": PRESETS[args.preset],
        "cells": {f"{a}_s{s}": r for (a, s), r in done.items()},
        "inference": {f"{v}_{a}_s{s}": r for (v, a, s), r in inference.items()},
        "table": lines,
    }
    (out / f"results_{demos.name.removeprefix('demos_mt15_')}_{args.preset}_{args.steps}.json").write_text(
        json.dumps(results, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
