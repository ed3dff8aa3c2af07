"""`embodied-report DIR`: one table and a few plots for a run or a folder of runs.

    embodied-report dir=runs/multirun/2026-11-21/10-00-00_ppo_crafter_collect_wood
    embodied-report dir=runs/bench/slim out=reports/slim

Every folder under `dir` holding a `summary.json` (written by embodied-train) is a run.
Runs are grouped into configurations by their Hydra overrides (`.hydra/overrides.yaml`)
without `seed`, `run_dir` and `resume`, and named by the overrides that vary (those all
runs share are listed once); `report.md` has one row per configuration with
the mean ± 95% CI over its seeds (Student t, `embodied.evaluation.mean_ci`) of every final
metric (`eval/*` first, then the agents' own, e.g. `skills/*`). Runs that did not complete
are listed, not averaged. Plots (PNG): `learning_curves.png` (the training metric, default
`charts/episodic_return`, against env steps: mean and 95% band over seeds on a common step
grid), `success.png` (`eval/success_rate` per configuration with CIs) and, when
configurations differ in `reward=`, `rewards.png` (each reward design side by side).
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import yaml

from embodied.errors import ConfigError
from embodied.evaluation import mean_ci
from embodied.metrics import read_metrics

IGNORED_OVERRIDES = ("seed", "run_dir", "resume", "hydra.run.dir", "hydra.sweep.dir")


@dataclass
class ReportConfig:
    """Arguments of embodied-report (key=value)."""

    dir: str = "???"
    """A run directory, a Hydra multirun directory, or any folder of runs."""
    out: Optional[str] = None
    """Where report.md and the PNGs go; None: `dir`."""
    curve: str = "charts/episodic_return"
    """Training metric (a metrics.csv column) for the learning curves."""


@dataclass
class Run:
    path: Path
    label: str
    """The configuration: the overrides that vary between the reported runs (else the experiment name)."""
    seed: int
    complete: bool
    metrics: dict[str, float]
    overrides: dict[str, str] = field(default_factory=dict)

    def curve(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of a training metric from metrics.csv (empty if absent)."""
        path = self.path / "metrics.csv"
        rows = [r for r in read_metrics(path) if key in r and "step" in r] if path.exists() else []
        return np.array([r["step"] for r in rows]), np.array([r[key] for r in rows])


def _overrides(run_dir: Path) -> dict[str, str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    items = yaml.safe_load(path.read_text()) or [] if path.exists() else []
    pairs = (str(o).lstrip("+~").split("=", 1) for o in items if "=" in str(o))
    return {k: v for k, v in pairs if k not in IGNORED_OVERRIDES}


def find_runs(root: Path) -> list[Run]:
    """Every run under `root` (itself included), sorted by configuration then seed."""
    runs = []
    for summary_path in sorted(Path(root).rglob("summary.json")):
        run_dir = summary_path.parent
        try:
            summary = json.loads(summary_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"cannot read {summary_path}: {err}; delete or repair that run") from None
        overrides = _overrides(run_dir)
        label = str(summary.get("experiment", "default"))
        metrics = {k: float(v) for k, v in (summary.get("metrics") or {}).items() if isinstance(v, (int, float))}
        runs.append(
            Run(run_dir, label, int(summary.get("seed", 0)), summary.get("status") == "complete", metrics, overrides)
        )
    common = set.intersection(*(set(r.overrides.items()) for r in runs)) if runs else set()
    for run in runs:  # a configuration is named by the overrides that vary between runs
        varying = sorted(set(run.overrides.items()) - common)
        run.label = " ".join(f"{k}={v}" for k, v in varying) or run.label
    return sorted(runs, key=lambda r: (r.label, r.seed))


def shared_overrides(runs: list[Run]) -> list[str]:
    """Overrides every run has (shown once above the table)."""
    common = set.intersection(*(set(r.overrides.items()) for r in runs)) if runs else set()
    return [f"{k}={v}" for k, v in sorted(common)]


def group(runs: list[Run]) -> dict[str, list[Run]]:
    """Complete runs by configuration label."""
    groups: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        if run.complete:
            groups[run.label].append(run)
    return dict(groups)


def metric_names(groups: dict[str, list[Run]]) -> list[str]:
    """Final metrics present in any run: eval/* first, then the rest, each alphabetically."""
    names = {k for runs in groups.values() for r in runs for k in r.metrics}
    return sorted(names, key=lambda k: (not k.startswith("eval/"), k))


def _cell(values: list[float]) -> str:
    mean, half = mean_ci(values)
    if math.isnan(mean):
        return "–"
    return f"{mean:.3g} ± {half:.2g}" if len(values) > 1 else f"{mean:.3g}"


def markdown(root: Path, runs: list[Run], groups: dict[str, list[Run]]) -> str:
    names = metric_names(groups)
    lines = [
        f"# Report: {root}",
        "",
        f"{sum(len(g) for g in groups.values())} complete runs in {len(groups)} configurations; mean ± 95% CI over seeds (Student t).",
    ]
    shared = shared_overrides(runs)
    lines += ["", f"Every run: `{' '.join(shared)}`.", ""] if shared else [""]
    lines += ["| configuration | seeds | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for label, members in groups.items():
        cells = [_cell([r.metrics[n] for r in members if n in r.metrics]) for n in names]
        lines.append(f"| {label} | {','.join(str(r.seed) for r in members)} | " + " | ".join(cells) + " |")
    incomplete = [r for r in runs if not r.complete]
    if incomplete:
        lines += [
            "",
            f"Not averaged ({len(incomplete)} incomplete runs; resume them with `embodied-train run_dir=<run> resume=true`):",
            "",
        ]
        lines += [f"- {r.path}" for r in incomplete]
    return "\n".join(lines) + "\n"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(groups: dict[str, list[Run]], key: str, path: Path) -> Path | None:
    """Mean and 95% band over seeds of `key` against env steps, interpolated onto a common grid."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    drawn = False
    for label, members in groups.items():
        curves = [c for c in (r.curve(key) for r in members) if len(c[0]) > 0]
        if not curves:
            continue
        end = min(c[0][-1] for c in curves)
        grid = np.linspace(max(c[0][0] for c in curves), end, 50) if end > 0 else np.array([end])
        values = np.stack([np.interp(grid, s, v) for s, v in curves])
        mean = values.mean(0)
        half = np.array([mean_ci(values[:, i])[1] for i in range(len(grid))])
        ax.plot(grid, mean, label=label)
        ax.fill_between(grid, mean - half, mean + half, alpha=0.2)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set(xlabel="env steps", ylabel=key, title=f"{key}: mean and 95% CI over seeds")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_bars(labels: list[str], samples: list[list[float]], ylabel: str, path: Path, title: str) -> Path:
    """One bar per entry: the mean with its 95% CI, and the seeds as dots."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(labels) + 2), 4))
    stats = [mean_ci(s) for s in samples]
    ax.bar(
        range(len(labels)), [m for m, _ in stats], yerr=[h for _, h in stats], capsize=4, color="tab:blue", alpha=0.7
    )
    for i, s in enumerate(samples):
        ax.scatter([i] * len(s), s, color="k", s=10, zorder=3)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=7)
    ax.set(ylabel=ylabel, title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def report(cfg: ReportConfig) -> Path:
    """Write report.md and the plots; return the report's path."""
    root = Path(cfg.dir)
    if not root.is_dir():
        raise ConfigError(
            f"dir '{root}' is not a directory; give a run or multirun directory (e.g. runs/multirun/<date>/<time>_<experiment>)"
        )
    runs = find_runs(root)
    if not runs:
        raise ConfigError(
            f"no runs under '{root}': a run is a folder with summary.json, written by embodied-train when it finishes"
        )
    out = Path(cfg.out) if cfg.out else root
    out.mkdir(parents=True, exist_ok=True)
    groups = group(runs)
    plots = [plot_curves(groups, cfg.curve, out / "learning_curves.png")]
    success = {
        label: [r.metrics["eval/success_rate"] for r in members if "eval/success_rate" in r.metrics]
        for label, members in groups.items()
    }
    if any(success.values()):
        plots.append(
            plot_bars(
                list(success),
                list(success.values()),
                "eval/success_rate",
                out / "success.png",
                "success per configuration (mean, 95% CI, seeds)",
            )
        )
    rewards = {r.overrides.get("reward") for members in groups.values() for r in members}
    if len(rewards) > 1:
        plots.append(plot_rewards(groups, out / "rewards.png"))
    text = markdown(root, runs, groups) + "".join(f"\n![{p.stem}]({p.name})\n" for p in plots if p is not None)
    path = out / "report.md"
    path.write_text(text)
    return path


def plot_rewards(groups: dict[str, list[Run]], path: Path) -> Path:
    """Each reward design's final success (or return) pooled over the configurations that share it."""
    key = (
        "eval/success_rate"
        if any("eval/success_rate" in r.metrics for m in groups.values() for r in m)
        else "eval/return_mean"
    )
    by_reward: dict[str, list[float]] = defaultdict(list)
    for members in groups.values():
        for r in members:
            if key in r.metrics:
                by_reward[r.overrides.get("reward", "(env reward)")].append(r.metrics[key])
    return plot_bars(
        list(by_reward), list(by_reward.values()), key, path, "reward designs compared (mean, 95% CI, runs)"
    )


def main() -> None:
    from embodied.cli import parse_args, run_command

    path = run_command(lambda: report(parse_args(ReportConfig, sys.argv[1:], "embodied-report")))
    print(path)


if __name__ == "__main__":
    main()
