"""Hydra plugin: the resumable sweeper (logic and rationale in `embodied.sweep`)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Dict, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf, open_dict

from embodied.errors import EmbodiedError
from embodied.sweep import job_status

log = logging.getLogger("embodied.sweep")


# Stored as a plain node (embodied.config.register_configs): a dataclass here would be pickled by
# value to launcher workers (Hydra's plugin scan re-imports this module) and fail to rebuild there.
SWEEPER_NODE = {
    "_target_": "hydra_plugins.embodied_sweeper.resumable_sweeper.ResumableSweeper",
    "max_batch_size": None,
    "params": None,
}


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ResumableSweeper(BasicSweeper):
    """Hydra's basic sweeper that skips finished jobs and keeps every job's directory across re-launches."""

    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None) -> None:
        # BasicSweeper.__init__ is not called: Hydra's plugin scan re-executes its module, and its
        # `super(BasicSweeper, self)` then names a different class object than the one we subclass.
        self.max_batch_size, self.params = max_batch_size, params or {}
        self.overrides: Any = None
        self.batch_index = 0
        self.hydra_context: Any = None
        self.config: Any = None
        self.launcher: Any = None

    def job_dir(self, overrides: list[str], num: int) -> str:
        """The job's subdirectory as Hydra would name it when launched as job `num` of the full sweep."""
        subdir = self.config.hydra.sweep._get_node("subdir")._value()  # type: ignore[union-attr]
        if subdir == "${hydra.job.num}":
            return str(num)
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))  # type: ignore[union-attr]
        with open_dict(cfg):
            cfg.hydra.job.num = num
        return str(cfg.hydra.sweep.subdir)

    def plan(self, arguments: list[str]) -> tuple[list[list[str]], dict[str, int]]:
        """The jobs still to run (each pinned to its directory) and a count per status."""
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)  # type: ignore[union-attr]
        parsed = parser.parse_overrides([*self._parse_config(), *arguments])
        jobs = [job for batch in self.split_arguments(parsed, None) for job in batch]
        sweep_dir = Path(self.config.hydra.sweep.dir)  # type: ignore[union-attr]
        todo: list[list[str]] = []
        counts = {"new": 0, "unfinished": 0, "complete": 0}
        for num, job in enumerate(jobs):
            subdir = self.job_dir(job, num)
            task = [o for o in job if not o.lstrip("+~").startswith("hydra.")]
            status = job_status(sweep_dir / subdir, task)
            counts[status] += 1
            if status != "complete":
                todo.append([*job, f"hydra.sweep.subdir={_quote(subdir)}"])
        return todo, counts

    def sweep(self, arguments: list[str]) -> Any:
        try:
            todo, counts = self.plan(arguments)
        except EmbodiedError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(err.exit_code)
        sweep_dir = Path(self.config.hydra.sweep.dir)  # type: ignore[union-attr]
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        log.info(
            "sweep %s: %d jobs, %d already complete (skipped), %d to resume, %d new; "
            "if interrupted, re-run this command with run_dir=%s to finish the rest",
            sweep_dir,
            sum(counts.values()),
            counts["complete"],
            counts["unfinished"],
            counts["new"],
            sweep_dir,
        )
        self.overrides = list(self.split_overrides_to_chunks(todo, self.max_batch_size)) if todo else []
        returns, initial_job_idx = [], 0
        while not self.is_done():
            batch = self.get_job_batch()
            self.validate_batch_is_legal(batch)
            results = self.launcher.launch(batch, initial_job_idx=initial_job_idx)  # type: ignore[union-attr]
            for result in results:
                _ = result.return_value  # raises if the job failed
            initial_job_idx += len(batch)
            returns.append(results)
        return returns
