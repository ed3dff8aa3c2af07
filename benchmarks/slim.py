"""SLIM vs the naive single-critic sum vs pure LSD vs pure DIAYN on embodied/Tabletop-v0.

    python benchmarks/slim.py                          # 6 methods x 3 seeds, 1M env steps each
    python benchmarks/slim.py --steps 100000 --seeds 0  # a quick look

Each cell is one `embodied-train experiment=<method>_tabletop seed=<s> total_steps=<N>` run
(complete runs in --out are reused, so it resumes); all methods get the same env steps,
seeds, PPO settings and networks. After training every run rolls out 64 skills (16 in
videos/skills_grid.mp4) and runs both skill planners, the learned-model one and the
simulator-search one, on 50 random push-to-goal tasks (see embodied/agents/slim/skills.py). Prints a Markdown table (mean ± 95% CI over seeds), Welch
t-tests of SLIM against each baseline, writes results.json and skills_by_method.png (final
object displacement of every skill, per method) into --out, and, last, the command line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from common import command_line, train_once, trained_agent

from embodied.evaluation import mean_ci

METHODS = {  # name: the experiment and its overrides
    "slim": ["experiment=slim_tabletop"],
    "slim_safe": ["experiment=slim_tabletop", "agent.weights.safety=3.0"],
    "sum": ["experiment=slim_sum_tabletop"],
    "sum_scaled": ["experiment=slim_sum_tabletop", "agent.weights.discovery=100.0"],
    "lsd": ["experiment=lsd_tabletop"],
    "diayn": ["experiment=diayn_tabletop"],
}
LABELS = {
    "slim": "SLIM, weights 3/1/1",
    "slim_safe": "SLIM, weights 3/1/3",
    "sum": "single critic on the 3/1/1 sum",
    "sum_scaled": "single critic on the 100/1/1 sum",
    "lsd": "LSD only",
    "diayn": "DIAYN only",
}
COLUMNS = [  # (metric, header, scale)
    ("skills/coverage_bins", "coverage (5 cm bins)", 1.0),
    ("skills/on_table_coverage_bins", "on-table coverage (bins)", 1.0),
    ("skills/off_table_rate", "pushed off the table (%)", 100.0),
    ("skills/displacement_spread_m", "spread (cm)", 100.0),
    ("skills/moved_rate", "moved >5 cm (%)", 100.0),
    ("skills/contact_rate", "contact (%)", 100.0),
    ("skills/safety_violation_rate", "unsafe steps (%)", 100.0),
    ("skills/unsafe_episode_rate", "unsafe episodes (%)", 100.0),
    ("planner/success_rate", "push-to-goal, model planner (%)", 100.0),
    ("search_planner/success_rate", "push-to-goal, search planner (%)", 100.0),
]


def cell(out: Path, method: str, seed: int, steps: int) -> dict:
    run_dir = out / f"{method}_s{seed}"
    summary = train_once(run_dir, [*METHODS[method], f"seed={seed}", f"total_steps={steps}", "logger=[csv]"])
    metrics = dict(summary["metrics"])
    if not {"skills/on_table_coverage_bins", "search_planner/success_rate"} <= set(
        metrics
    ):  # runs trained before these existed
        metrics.update(posthoc_metrics(run_dir))
    return {
        "method": method,
        "seed": seed,
        "run_dir": str(run_dir),
        "metrics": metrics,
        "train_wall_time_s": summary["train_wall_time_s"],
    }


def posthoc_metrics(run_dir: Path) -> dict[str, float]:
    """Skill metrics and the search planner on the run's last checkpoint, exactly as `final_report` runs them (cached in posthoc.json)."""
    cache = run_dir / "posthoc.json"
    if not cache.exists():
        code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import slim; slim._posthoc_to_file({str(run_dir)!r})"
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return json.loads(cache.read_text())


def _posthoc_to_file(run_dir: str) -> None:
    from embodied.agents.slim.skills import measure_skills, search_metrics, skill_metrics
    from embodied.envs.factory import EnvFactory

    config, _, agent = trained_agent(Path(run_dir))
    factory = EnvFactory(config.env, seed=config.seed)
    rollouts, _ = measure_skills(agent, factory)
    np.savez(Path(run_dir) / "skills.npz", **vars(rollouts))
    result = {**skill_metrics(rollouts), **search_metrics(agent, factory)}
    (Path(run_dir) / "posthoc.json").write_text(json.dumps(result))


def plot(out: Path, cells: list[dict], methods: list[str]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seed = min(c["seed"] for c in cells)
    cols = min(3, len(methods))
    rows = -(-len(methods) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.9 * rows), sharex=True, sharey=True, squeeze=False)
    for ax in axes.flat[len(methods) :]:
        ax.axis("off")
    for ax, method in zip(axes.flat, methods):
        data = np.load(
            Path(next(c["run_dir"] for c in cells if c["method"] == method and c["seed"] == seed)) / "skills.npz"
        )
        z, d = data["skills"], data["displacement"] * 100
        off = data["off_table"] if "off_table" in data else np.zeros(len(d), bool)
        colour = np.arctan2(z[:, 1], z[:, 0]) if z.shape[1] >= 2 else z[:, 0]
        ax.scatter(
            d[~off, 0],
            d[~off, 1],
            c=colour[~off],
            cmap="hsv",
            vmin=-np.pi,
            vmax=np.pi,
            s=16,
            edgecolors="k",
            linewidths=0.3,
        )
        ax.scatter(
            d[off, 0],
            d[off, 1],
            c=colour[off],
            cmap="hsv",
            vmin=-np.pi,
            vmax=np.pi,
            s=22,
            marker="x",
            label="off the table",
        )
        ax.set(title=f"{LABELS[method]}\n(seed {seed})", xlabel="object dx (cm)", aspect="equal")
        ax.axhline(0, color="0.85", lw=0.5)
        ax.axvline(0, color="0.85", lw=0.5)
    for row in axes:
        row[0].set_ylabel("object dy (cm)")
    fig.suptitle("Final cube displacement of 64 skills\n(colour: skill direction; x: the cube ended off the table)")
    fig.tight_layout()
    path = out / "skills_by_method.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=list(METHODS), help="weights are discovery/reach/safety"
    )
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once (one torch thread each)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/slim"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    todo = [(m, s) for s in args.seeds for m in args.methods]
    with ThreadPoolExecutor(args.jobs) as pool:
        cells = list(pool.map(lambda ms: cell(args.out, ms[0], ms[1], args.steps), todo))

    from scipy import stats

    print(f"\nembodied/Tabletop-v0, {args.steps:,} env steps per run, seeds {args.seeds}: mean ± 95% CI over seeds\n")
    print("| method | " + " | ".join(h for _, h, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    table: dict[str, dict[str, list[float]]] = {}
    for method in args.methods:
        values = {key: [c["metrics"][key] * scale for c in cells if c["method"] == method] for key, _, scale in COLUMNS}
        table[method] = values
        row = []
        for key, _, _ in COLUMNS:
            mean, half = mean_ci(values[key])
            row.append(f"{mean:.1f} ± {half:.1f}")
        print(f"| {LABELS[method]} | " + " | ".join(row) + " |")
    tests: dict[str, dict[str, dict[str, float]]] = {}
    references = [m for m in ("slim", "slim_safe") if m in table]
    if references and len(args.seeds) > 1:
        print("\nWelch t-tests, each SLIM row vs each baseline (p-values; 3 seeds make these coarse):")
        for ref in references:
            for method in (m for m in args.methods if not m.startswith("slim")):
                pair = tests.setdefault(ref, {}).setdefault(method, {})
                for key, _, _ in COLUMNS:
                    a, b = table[ref][key], table[method][key]
                    with (
                        warnings.catch_warnings()
                    ):  # identical samples (e.g. 100% contact everywhere) warn; p is then 1 or 0
                        warnings.simplefilter("ignore")
                        pair[key] = (
                            float(stats.ttest_ind(a, b, equal_var=False).pvalue)
                            if np.std(a) + np.std(b) > 0
                            else (0.0 if np.mean(a) != np.mean(b) else 1.0)
                        )
                print(
                    f"  {LABELS[ref]} vs {LABELS[method]}: " + ", ".join(f"{h} p={pair[k]:.3f}" for k, h, _ in COLUMNS)
                )
    figure = plot(args.out, cells, args.methods)
    command = command_line("benchmarks/slim.py", argv)
    (args.out / "results.json").write_text(
        json.dumps(
            {"command": command, "steps": args.steps, "seeds": args.seeds, "cells": cells, "welch_p": tests}, indent=1
        )
    )
    print(
        f"\nfigure: {figure}\nvideos: "
        + ", ".join(f"{c['run_dir']}/videos/skills_grid.mp4" for c in cells if c["seed"] == min(args.seeds))
    )
    print(f"command: {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
