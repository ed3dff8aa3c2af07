"""Concept-shift sweep: homeostatic (LRH) vs random (LRR) vs constant learning rate.

    python benchmarks/concept_shift.py                       # 6 shift settings x 3 rules x 5 seeds, 50 epochs
    python benchmarks/concept_shift.py --epochs 5 --seeds 1  # a quick look
    python benchmarks/concept_shift.py --dataset mnist_standin   # MNIST's scale: 6,000 minibatches an epoch

Man, Damasio & Neven (2022) report that the homeostatic learner's advantage grows
with the rate of shift. Each run is `embodied-concept-shift` in-process; this prints
a table (mean ± 95% CI over seeds) and the command, and writes results.json,
table.md and concept_shift.png under --out.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from embodied.agents.homeostatic.config import ConceptShiftConfig
from embodied.evaluation import mean_ci

RULES = ("homeostatic", "random", "constant")
SEASONAL = [0, 1, 5, 10, 50, 50, 10, 5, 1, 0]
"""The second-order shift: the swap rate rises and falls every 10 epochs (seasonality)."""


def _shift_name(rate: int | None) -> str:
    return "seasonal" if rate is None else str(rate)


def _one(job: tuple[ConceptShiftConfig, str]) -> dict:
    import torch

    from embodied.agents.homeostatic.concept_shift import run

    torch.set_num_threads(1)
    config, run_dir = job
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    summary = run(config, Path(run_dir))
    curve = np.genfromtxt(Path(run_dir) / "metrics.csv", delimiter=",", names=True)
    return {**summary, "epoch_val_acc": np.atleast_1d(curve["evalval_acc"]).tolist()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rates", default="0,1,5,10,50,seasonal", help="swaps per epoch; 'seasonal' is the second-order schedule"
    )
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--eta0", type=float, default=1e-3)
    parser.add_argument("--optimizer", default="sgd", help="sgd (the paper's), momentum or adam")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-path", default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="runs/bench/concept_shift")
    args = parser.parse_args(argv)
    out = Path(args.out)
    rates = [None if r == "seasonal" else int(r) for r in args.rates.split(",")]
    rules = args.rules.split(",")
    base = ConceptShiftConfig(
        epochs=args.epochs,
        eta0=args.eta0,
        dataset=args.dataset,
        data_path=args.data_path,
        optimizer=args.optimizer,
        plot=True,
    )
    jobs = []
    for rate in rates:
        for rule in rules:
            for seed in range(args.seeds):
                shift = dict(swaps_schedule=SEASONAL) if rate is None else dict(swaps_per_epoch=rate)
                jobs.append(
                    (
                        replace(base, rule=rule, seed=seed, **shift),
                        str(out / f"spe_{_shift_name(rate)}" / rule / f"seed{seed}"),
                    )
                )
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_one, jobs))

    rows = []
    for rate in rates:
        for rule in rules:
            runs = [
                r
                for r, (c, _) in zip(results, jobs)
                if c.rule == rule
                and (
                    c.swaps_schedule == SEASONAL
                    if rate is None
                    else (c.swaps_schedule is None and c.swaps_per_epoch == rate)
                )
            ]
            row = {
                "shift": _shift_name(rate),
                "rule": rule,
                "seeds": len(runs),
                "curve": np.mean([r["epoch_val_acc"] for r in runs], axis=0).tolist(),
            }
            for key in ("val_acc_mean_epochs", "val_acc_mean_curve", "recovery_acc_mean", "eta_mean", "gate_open_rate"):
                row[key] = mean_ci([r["metrics"].get(key, float("nan")) for r in runs])
            row["eta_range"] = [min(r["metrics"]["eta_min"] for r in runs), max(r["metrics"]["eta_max"] for r in runs)]
            row["moves_up_down"] = [
                sum(r["metrics"]["moves_up"] for r in runs),
                sum(r["metrics"]["moves_down"] for r in runs),
            ]
            rows.append(row)
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    table = _table(rows, rates, rules, args)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(table + f"\n\nCommand: `{command}`\n")
    (out / "results.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1))
    _plot(out / "concept_shift.png", rows, rates, rules)
    print(table)
    print(f"\nplot: {out / 'concept_shift.png'}\ncommand: {command}")
    return 0


def _table(rows: list[dict], rates: list, rules: list[str], args: argparse.Namespace) -> str:
    fmt = lambda m: f"{100 * m[0]:.1f} ± {100 * m[1]:.1f}"  # noqa: E731
    lines = [
        f"Concept shift on {args.dataset} ({args.optimizer}, {args.epochs} epochs, η0 = {args.eta0:g}, {args.seeds} seeds; mean ± 95% CI, %).",
        "`epoch-end` is the paper's metric (validation accuracy at each epoch's end, averaged over epochs);",
        "`curve` averages validation accuracy measured every 10 minibatches; `recovery` is the mean accuracy over the 200 samples after each swap.",
        "",
        "`gate open` is the share of η events the rule let through (LRH: its look-ahead test passed), with the up / down moves summed over seeds.",
        "",
        "| swaps/epoch | rule | epoch-end val acc | curve val acc | recovery | mean η (×1e-3) | η range (×1e-3) | gate open, up / down | LRH − constant (epoch-end) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by = {(r["shift"], r["rule"]): r for r in rows}
    for rate in rates:
        name = _shift_name(rate)
        for rule in rules:
            r = by[(name, rule)]
            gap = ""
            if rule == "homeostatic" and (name, "constant") in by:
                gap = f"{100 * (r['val_acc_mean_epochs'][0] - by[(name, 'constant')]['val_acc_mean_epochs'][0]):+.1f}"
            rec = fmt(r["recovery_acc_mean"]) if np.isfinite(r["recovery_acc_mean"][0]) else "–"
            low, high = r["eta_range"]
            up, down = r["moves_up_down"]
            lines.append(
                f"| {name} | {rule} | {fmt(r['val_acc_mean_epochs'])} | {fmt(r['val_acc_mean_curve'])} | {rec} | "
                f"{1e3 * r['eta_mean'][0]:.2f} | {1e3 * low:.2f}–{1e3 * high:.2f} | "
                f"{100 * r['gate_open_rate'][0]:.1f}%, {up} / {down} | {gap} |"
            )
    return "\n".join(lines)


def _plot(path: Path, rows: list[dict], rates: list, rules: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [_shift_name(r) for r in rates]
    x = np.arange(len(names))
    by = {(r["shift"], r["rule"]): r for r in rows}
    for k, rule in enumerate(rules):
        means = [by[(n, rule)]["val_acc_mean_epochs"][0] for n in names]
        errs = [by[(n, rule)]["val_acc_mean_epochs"][1] for n in names]
        axes[0].bar(x + (k - 1) * 0.27, means, 0.27, yerr=errs, capsize=3, label=rule)
    axes[0].set_xticks(x, names)
    axes[0].set_xlabel("swaps per epoch")
    axes[0].set_ylabel("validation accuracy (mean over epochs)")
    axes[0].legend()
    shown = "1" if "1" in names else names[0]
    for rule in rules:
        curve = by[(shown, rule)]["curve"]
        axes[1].plot(np.arange(1, len(curve) + 1), curve, label=rule)
    axes[1].set_title(f"epoch-end validation accuracy, swaps/epoch = {shown}")
    axes[1].set_ylim(0, 1)
    axes[1].set_xlabel("epoch")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
