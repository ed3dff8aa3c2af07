"""Homeostatic vs constant vs random plasticity on the foraging arena, with and without concept shift.

    python benchmarks/foraging.py                 # 3 plasticity rules x 2 shift settings x 3 seeds, 300k steps each
    python benchmarks/foraging.py --steps 20000 --seeds 0   # a quick look

Each cell is one `embodied-train experiment=homeostatic_ppo_foraging agent.plasticity=<rule>
env.shift_every=<N>` run (complete runs in --out are reused, so it resumes). Survival
time and mean drive are reported two ways: over training (every logged window of
training episodes, averaged: how well the agent lives while the world shifts under it)
and at the final evaluation (20 episodes, the normal mapping, 2 videos per run).
Recovery after a swap: env steps from the swap until the windowed training survival is back at
its mean over the three windows before it (a swap it never recovers from counts as the steps left
in the run, and is reported as censored). Two reference policies bracket the learners: uniform
random actions, and a scripted forager that knows the mapping (heads for the nearest item that
feeds its lowest variable once that variable is 0.15 below the setpoint, else stands still).
Prints Markdown tables (mean ± 95% CI over seeds) and, last, the command line, and writes
`<out>/foraging_curves.png`: the training episodes' mean survival against env steps, one
line per rule and shift setting (mean over seeds), the concept shifts marked (`--png` copies it).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import command_line, train_once

from embodied.evaluation import mean_ci


def episode_rows(run_dir: Path) -> list[dict[str, str]]:
    """The training log's rows that summarise a window of finished episodes."""
    with (run_dir / "metrics.csv").open() as f:
        return [r for r in csv.DictReader(f) if r.get("charts/episodic_length")]


def training_means(run_dir: Path) -> dict[str, float]:
    """Means over the training log of the windowed episode length and drive."""
    rows = episode_rows(run_dir)
    return {
        "train_length": float(np.mean([float(r["charts/episodic_length"]) for r in rows])),
        "train_drive": float(np.mean([float(r["charts/mean/drive"]) for r in rows])),
        "final_eta": float(
            next((r["charts/plasticity_eta"] for r in reversed(rows) if r.get("charts/plasticity_eta")), "nan")
        ),
    }


def recoveries(run_dir: Path, shift_every: int, num_envs: int = 8) -> list[tuple[float, bool]]:
    """(env steps to recover, censored) for every swap with three logged windows before it."""
    steps, lengths = curve(run_dir)
    out = []
    for k in range(1, int(steps[-1] // (shift_every * num_envs)) + 1):
        swap = k * shift_every * num_envs
        before, after = lengths[steps <= swap][-3:], steps > swap
        if len(before) < 3 or not after.any():
            continue
        back = np.nonzero(after & (lengths >= before.mean()))[0]
        out.append((float(steps[back[0]] - swap), False) if len(back) else (float(steps[-1] - swap), True))
    return out


def scripted_action(env, threshold: float = 0.15) -> np.ndarray:
    """The reference forager: the nearest item feeding the lowest variable, once it is `threshold` below the setpoint."""
    need = int(np.argmin(env.internal - env.setpoint))
    if env.internal[need] > env.setpoint[need] - threshold:
        return np.zeros(2, dtype=np.float32)
    kind = ("food", "water")[need if env.mapping == "normal" else 1 - need]
    offsets = env.resource_pos[kind] - env.robot_pos
    target = offsets[np.argmin(np.sum(offsets**2, axis=1))]
    return np.clip(target / max(np.linalg.norm(target), 1e-9) * min(1.0, 5 * np.linalg.norm(target)), -1, 1).astype(
        np.float32
    )


def reference_survival(policy: str, episodes: int = 20, seed: int = 0) -> list[float]:
    """Episode lengths (1000-step cap) of the `random` or `scripted` reference policy."""
    import embodied.envs as envs

    env = envs.make("embodied/HomeostaticForaging-v0")
    rng, lengths = np.random.default_rng(seed), []
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        for t in range(1, 1001):
            action = rng.uniform(-1, 1, 2).astype(np.float32) if policy == "random" else scripted_action(env.unwrapped)
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        lengths.append(float(t))
    return lengths


def curve(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, windowed mean episode length) from a run's training log."""
    rows = episode_rows(run_dir)
    return np.array([float(r["step"]) for r in rows]), np.array([float(r["charts/episodic_length"]) for r in rows])


def plot_curves(path: Path, runs: dict[tuple[str, int], list[Path]], steps: int, num_envs: int = 8) -> None:
    """Survival learning curves per (rule, shift), mean over seeds; vertical lines at the shifts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for (rule, shift), dirs in runs.items():
        curves = [curve(d) for d in dirs]
        n = min(len(c[0]) for c in curves)
        x = curves[0][0][:n]
        ax.plot(x, np.mean([c[1][:n] for c in curves], axis=0), label=f"{rule}, shift every {shift or 'never'}")
        if shift:  # shift_every counts each env's own steps; the log counts all envs' steps
            for k in range(1, int(steps / (shift * num_envs)) + 1):
                ax.axvline(k * shift * num_envs, color="grey", lw=0.5, ls=":")
    ax.axhline(800, color="k", lw=0.8, ls="--", label="target: 800 of 1,000 steps")
    ax.set_xlabel("env steps")
    ax.set_ylabel("survival (training episodes, steps)")
    ax.set_ylim(0, 1050)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", default="homeostatic,constant,random")
    parser.add_argument("--shifts", default="0,10000", help="env.shift_every values (env steps per env; 0: no shift)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--out", default="runs/bench/foraging")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--png", help="also copy the learning curves here (e.g. docs/img/foraging_curves.png)")
    args = parser.parse_args(argv)
    rules, shifts, seeds = (
        args.rules.split(","),
        [int(s) for s in args.shifts.split(",")],
        [int(s) for s in args.seeds.split(",")],
    )
    out = Path(args.out)
    cells = [(rule, shift, seed) for shift in shifts for rule in rules for seed in seeds]

    def run(cell: tuple[str, int, int]) -> dict:
        rule, shift, seed = cell
        run_dir = out / f"shift{shift}_{rule}_s{seed}"
        summary = train_once(
            run_dir,
            [
                "experiment=homeostatic_ppo_foraging",
                f"agent.plasticity={rule}",
                f"env.shift_every={shift}",
                f"seed={seed}",
                f"total_steps={args.steps}",
            ],
        )
        return {**summary["metrics"], **training_means(run_dir), "videos": summary.get("videos", [])}

    with ThreadPoolExecutor(args.jobs) as pool:  # each job is a subprocess
        done = dict(zip(cells, pool.map(run, cells)))
    fmt = lambda values, scale=1.0, digits=0: "{:.{d}f} ± {:.{d}f}".format(
        *(scale * v for v in mean_ci(values)), d=digits
    )  # noqa: E731
    print(
        "| shift_every | plasticity | survival, training (steps) | drive, training | survival, eval | drive, eval | eval success | final η (×1e-4) | recovery after a swap (steps) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for shift in shifts:
        for rule in rules:
            rs = [done[(rule, shift, seed)] for seed in seeds]
            recovery = "–"
            if shift:
                swaps = [r for seed in seeds for r in recoveries(out / f"shift{shift}_{rule}_s{seed}", shift)]
                censored = sum(c for _, c in swaps)
                recovery = f"{fmt([r for r, _ in swaps])} ({len(swaps)} swaps, {censored} not recovered)"
            print(
                f"| {shift or 'none'} | {rule} | {fmt([r['train_length'] for r in rs])} | {fmt([r['train_drive'] for r in rs], digits=3)} "
                f"| {fmt([r['eval/length_mean'] for r in rs])} | {fmt([r['eval/mean/drive'] for r in rs], digits=3)} "
                f"| {fmt([r['eval/success_rate'] for r in rs], 100)}% | {fmt([r['final_eta'] for r in rs], 1e4, 2)} | {recovery} |",
                flush=True,
            )
    for policy in ("random", "scripted"):
        lengths = reference_survival(policy)
        print(
            f"| none | reference: {policy} policy | – | – | {fmt(lengths)} (20 episodes) | – | {np.mean(np.array(lengths) >= 1000):.0%} | – | – |"
        )
    print(
        f"\n{args.steps} PPO steps per run, {len(seeds)} seeds (mean ± 95% CI over seeds; recovery: over swaps), episodes capped at 1000 steps; videos in {out}/*/videos."
    )
    png = out / "foraging_curves.png"
    plot_curves(
        png, {(r, sh): [out / f"shift{sh}_{r}_s{seed}" for seed in seeds] for sh in shifts for r in rules}, args.steps
    )
    if args.png:
        shutil.copyfile(png, args.png)
    print(f"learning curves: {png}")
    print(f"command: {command_line('benchmarks/foraging.py', argv)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
