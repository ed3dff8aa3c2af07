"""`embodied-concept-shift`: one learner (LRH, LRR or constant η) under concept shift.

    embodied-concept-shift rule=homeostatic swaps_per_epoch=10 seed=0
    embodied-concept-shift -m rule=homeostatic,random,constant swaps_per_epoch=0,1,5,10,50 seed=0,1,2,3,4
    embodied-concept-shift dataset=mnist data_path=~/data/mnist

The training loop is the authors' (Man, Damasio & Neven 2022): per epoch, shuffle,
minibatches of 10 through `HomeostaticLearner`, labels of two random classes swapped
in train and validation at equal intervals, validation accuracy at the epoch's end.
We also measure validation accuracy every `eval_every` minibatches, so recovery after
each swap is visible. Writes metrics.csv (per epoch), curve.csv, swaps.csv,
summary.json and plot.png in the run directory.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from embodied.agents.homeostatic.config import ConceptShiftConfig
from embodied.agents.homeostatic.data import Split, load, swap_classes, swap_points, swaps_in_epoch
from embodied.agents.homeostatic.learner import HomeostaticLearner


def mlp(input_dim: int, hidden: list[int], classes: int = 10) -> nn.Sequential:
    """The paper's MLP (784-80-60-10 on MNIST): ELU, He-initialised weights, N(0, 1) biases."""
    layers: list[nn.Module] = []
    sizes = [input_dim, *hidden, classes]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(n_in, n_out)
        nn.init.kaiming_normal_(linear.weight, mode="fan_in", nonlinearity="relu")
        nn.init.normal_(linear.bias)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(nn.ELU())
    return nn.Sequential(*layers)


def make_optimizer(name: str, params: Any, lr: float) -> torch.optim.Optimizer:
    """sgd (momentum-free), momentum (0.9) or adam, at learning rate `lr`."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=0.9 if name == "momentum" else 0.0)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(dim=1) == y).float().mean())


def run(config: ConceptShiftConfig, run_dir: Path, data: Split | None = None) -> dict[str, Any]:
    """Train one learner under the configured shift; write its files; return the summary."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    data = data or load(config.dataset, config.data_path, config.val_fraction, config.seed)
    x_train, x_val = torch.from_numpy(data.x_train), torch.from_numpy(data.x_val)
    y_train, y_val = data.y_train.copy(), data.y_val.copy()  # swapped in place by the shift
    model = mlp(data.input_dim, list(config.hidden))
    learner = HomeostaticLearner(
        model,
        make_optimizer(config.optimizer, model.parameters(), config.eta0),
        rule=config.rule,
        eta0=config.eta0,
        step=config.eta_step,
        floor=config.eta_floor,
        excitatory=config.excitatory,
        interval=config.interval,
        memory=config.memory,
        seed=config.seed,
    )
    batches = len(y_train) // config.batch_size  # the authors drop the last partial batch
    curve: list[dict[str, float]] = []
    swaps: list[dict[str, Any]] = []
    epochs: list[dict[str, float]] = []
    started, seen = time.time(), 0
    gate = {"events": 0, "moves": 0, "moves_up": 0, "moves_down": 0}  # how often η was allowed to move, and where

    def validate() -> float:
        return accuracy(model, x_val, torch.from_numpy(y_val))

    for epoch in range(config.epochs):
        order = rng.permutation(len(y_train))
        learner.new_epoch()
        points = set(swap_points(batches, swaps_in_epoch(epoch, config.swaps_per_epoch, config.swaps_schedule)))
        correct = 0
        for b in range(batches):
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            result = learner.train_batch(x_train[idx], torch.from_numpy(y_train[idx]))
            gate["events"] += result.events
            gate["moves"] += result.moves
            gate["moves_up"] += result.ups
            gate["moves_down"] += result.moves - result.ups
            correct += result.correct
            seen += len(idx)
            if (b + 1) in points:
                before = validate()
                mapping = swap_classes(rng, y_train, y_val)
                learner.relabel(mapping)
                swaps.append(
                    {
                        "epoch": epoch,
                        "batch": b + 1,
                        "samples": seen,
                        "classes": sorted(mapping),
                        "acc_before": before,
                        "acc_after": validate(),
                    }
                )
                curve.append(
                    {
                        "samples": seen,
                        "epoch": epoch + (b + 1) / batches,
                        "val_acc": swaps[-1]["acc_after"],
                        "eta": learner.eta,
                    }
                )
            elif (b + 1) % config.eval_every == 0:
                curve.append(
                    {"samples": seen, "epoch": epoch + (b + 1) / batches, "val_acc": validate(), "eta": learner.eta}
                )
        epochs.append(
            {
                "epoch": epoch + 1,
                "samples": seen,
                "train_acc": correct / (batches * config.batch_size),
                "val_acc": validate(),
                "eta": learner.eta,
            }
        )

    _attach_recovery(swaps, curve, config.recovery_window * config.batch_size)
    summary = {
        "status": "complete",
        "rule": config.rule,
        "optimizer": config.optimizer,
        "dataset": data.name,
        "dataset_sha256": data.sha256,
        "swaps_per_epoch": config.swaps_per_epoch,
        "swaps_schedule": config.swaps_schedule,
        "seed": config.seed,
        "epochs": config.epochs,
        "swaps": len(swaps),
        "metrics": {
            "val_acc_mean_epochs": float(np.mean([e["val_acc"] for e in epochs])),
            "val_acc_mean_curve": float(np.mean([c["val_acc"] for c in curve])) if curve else float("nan"),
            "val_acc_final": epochs[-1]["val_acc"],
            "train_acc_mean_epochs": float(np.mean([e["train_acc"] for e in epochs])),
            "eta_mean": float(np.mean(learner.eta_history)),
            "eta_min": float(np.min(learner.eta_history)),
            "eta_max": float(np.max(learner.eta_history)),
            **gate,
            "gate_open_rate": gate["moves"] / gate["events"] if gate["events"] else 0.0,
            "eta_final": learner.eta,
            "swap_drop_mean": float(np.mean([s["acc_before"] - s["acc_after"] for s in swaps])) if swaps else 0.0,
            "recovery_acc_mean": float(np.mean([s["recovery_acc"] for s in swaps if s["recovery_acc"] is not None]))
            if swaps
            else float("nan"),
        },
        "wall_time_s": round(time.time() - started, 2),
    }
    _write(run_dir, config, epochs, curve, swaps, summary)
    return summary


def _attach_recovery(swaps: list[dict[str, Any]], curve: list[dict[str, float]], window: int) -> None:
    """Each swap's recovery: mean validation accuracy over the `window` samples after it."""
    samples = np.array([c["samples"] for c in curve])
    accs = np.array([c["val_acc"] for c in curve])
    for swap in swaps:
        inside = (samples > swap["samples"]) & (samples <= swap["samples"] + window)
        swap["recovery_acc"] = float(accs[inside].mean()) if inside.any() else None


def _write(run_dir: Path, config: ConceptShiftConfig, epochs: list, curve: list, swaps: list, summary: dict) -> None:
    from embodied.metrics import MetricLogger
    from embodied.run_info import versions, write_json

    logger = MetricLogger(run_dir, ["csv"])
    for row in epochs:
        logger.log(
            row["samples"],
            {
                "charts/epoch": row["epoch"],
                "charts/train_acc": row["train_acc"],
                "eval/val_acc": row["val_acc"],
                "charts/eta": row["eta"],
            },
        )
    logger.close()
    _csv(run_dir / "curve.csv", curve, ["samples", "epoch", "val_acc", "eta"])
    _csv(
        run_dir / "swaps.csv",
        [{**s, "classes": "-".join(map(str, s["classes"]))} for s in swaps],
        ["epoch", "batch", "samples", "classes", "acc_before", "acc_after", "recovery_acc"],
    )
    if config.plot:
        plot_run(
            run_dir / "plot.png",
            curve,
            swaps,
            title=f"{config.rule}, {summary['dataset']}, {_shift_label(config)}, seed {config.seed}",
        )
    write_json(run_dir / "summary.json", {**summary, "versions": versions()})  # last: marks the run complete


def _csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns)
        writer.writeheader()
        writer.writerows(rows)


def _shift_label(config: ConceptShiftConfig) -> str:
    return f"schedule {config.swaps_schedule}" if config.swaps_schedule else f"{config.swaps_per_epoch} swaps/epoch"


def plot_run(path: Path, curve: list[dict[str, float]], swaps: list[dict[str, Any]], title: str) -> None:
    """Validation accuracy and η over epochs, with a tick per swap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_eta) = plt.subplots(2, 1, figsize=(8, 5), sharex=True, height_ratios=[2, 1])
    epochs = [c["epoch"] for c in curve]
    ax_acc.plot(epochs, [c["val_acc"] for c in curve], lw=0.8)
    if len(swaps) <= 200:
        at = {c["samples"]: c["epoch"] for c in curve}  # every swap has a curve point at its sample count
        for s in swaps:
            ax_acc.axvline(at[s["samples"]], color="grey", lw=0.3, alpha=0.5)
    ax_acc.set_ylabel("validation accuracy")
    ax_acc.set_ylim(0, 1)
    ax_acc.set_title(title)
    ax_eta.plot(epochs, [c["eta"] for c in curve], color="tab:orange", lw=0.8)
    ax_eta.set_ylabel("η")
    ax_eta.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _main(cfg: DictConfig) -> Path:
    from hydra.core.hydra_config import HydraConfig

    from embodied.cli import to_dataclass

    config: ConceptShiftConfig = to_dataclass(cfg)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    (run_dir / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.set_num_threads(1)
    summary = run(config, run_dir)
    print({k: round(v, 4) for k, v in summary["metrics"].items()})
    print(run_dir)
    return run_dir


def main() -> Any:
    from embodied.cli import fresh_run_dir_argv, hydra_command

    return hydra_command(
        _main, "concept_shift", argv_hook=lambda argv: fresh_run_dir_argv(argv, "summary.json", "a finished run")
    )()


if __name__ == "__main__":
    main()
