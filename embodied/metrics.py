"""Metric sinks with one set of flat names: metrics.csv, TensorBoard, W&B (optional).

Names follow CleanRL: `charts/*` (episodic return, SPS, ...), `losses/*`, `eval/*`.
The CSV is wide (one column per metric, a row per logging step); when a new metric
appears the file is rewritten with the wider header, so it always parses.

On resume the logs are rewound to the checkpoint's step: rows the interrupted run logged
after its last checkpoint move to `metrics.discarded.csv`, and TensorBoard purges its
events past that step, so every curve has one point per step.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path
from typing import Any, Iterable


class MetricLogger:
    """Write the same metrics to every configured sink."""

    def __init__(
        self,
        run_dir: Path,
        sinks: Iterable[str] = ("csv", "tensorboard"),
        config: dict[str, Any] | None = None,
        resume_step: int | None = None,
    ) -> None:
        """
        Args:
            run_dir: the run directory (metrics.csv and tb/ go here).
            sinks: any of "csv", "tensorboard", "wandb".
            config: the resolved config, for W&B.
            resume_step: when resuming, the checkpoint's step: rows up to it are kept, later
                ones (logged by the interrupted run after its last checkpoint) are set aside.
        """
        self.run_dir = Path(run_dir)
        self.sinks = set(sinks)
        self.start = time.time()
        self.csv_path = self.run_dir / "metrics.csv"
        self._rows: list[dict[str, Any]] = []
        self._columns: list[str] = ["step", "wall_time"]
        if resume_step is not None and self.csv_path.exists():
            self._rewind_csv(resume_step)
        self._tb = None
        if "tensorboard" in self.sinks:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1  # events at steps >= purge are dropped
            self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=purge)
        self._wandb = None
        if "wandb" in self.sinks:
            try:
                import wandb
            except ImportError as err:
                from embodied.errors import ConfigError

                raise ConfigError(
                    "logger includes wandb but it is not installed: pip install 'embodied[wandb]'"
                ) from err
            self._wandb = wandb.init(config=config, dir=str(self.run_dir), resume="allow")

    def _rewind_csv(self, resume_step: int) -> None:
        """Keep the rows up to `resume_step`; append the later ones to metrics.discarded.csv."""
        with self.csv_path.open(newline="") as f:
            reader = csv.DictReader(f)
            self._columns = list(reader.fieldnames or self._columns)
            rows = list(reader)
        self._rows = [r for r in rows if float(r.get("step") or 0) <= resume_step]
        dropped = [r for r in rows if float(r.get("step") or 0) > resume_step]
        if dropped:
            side = self.run_dir / "metrics.discarded.csv"
            new_file = not side.exists()
            with side.open("a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self._columns)
                if new_file:
                    writer.writeheader()
                writer.writerows(dropped)
            tmp = self.csv_path.with_name(".metrics.csv.tmp")
            with tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self._columns)
                writer.writeheader()
                writer.writerows(self._rows)
            tmp.replace(self.csv_path)
        if self._rows:
            self.start -= float(self._rows[-1].get("wall_time") or 0.0)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Record `metrics` at env step `step` in every sink."""
        clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        row = {"step": int(step), "wall_time": round(time.time() - self.start, 3), **clean}
        if "csv" in self.sinks:
            self._write_csv(row)
        if self._tb is not None:
            for key, value in clean.items():
                self._tb.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log(clean, step=step)

    def _write_csv(self, row: dict[str, Any]) -> None:
        new = [k for k in row if k not in self._columns]
        self._rows.append(row)
        if new or not self.csv_path.exists():
            self._columns += new
            with self.csv_path.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self._columns)
                writer.writeheader()
                writer.writerows(self._rows)
        else:
            with self.csv_path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self._columns).writerow(row)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def read_metrics(path: Path) -> list[dict[str, float]]:
    """Rows of a metrics.csv as dicts of floats (empty cells dropped)."""
    with Path(path).open(newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
