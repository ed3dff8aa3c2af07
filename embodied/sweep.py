"""Sweeps that survive interruption, and jobs that share a machine without fighting over threads.

`ResumableSweeper` (in `hydra_plugins/embodied_sweeper`, where Hydra requires plugins to live)
is `embodied-train`'s default Hydra sweeper (`hydra/sweeper=resumable`).
It expands a multirun exactly like Hydra's basic sweeper, then looks in the sweep
directory before launching anything: jobs whose run finished (`summary.json` says
`complete`) are skipped, the rest are launched with any launcher (basic, joblib,
submitit, ray), and `embodied-train` resumes a job from its `checkpoints/last` when
one is there. Re-running an interrupted sweep's command with the same sweep
directory (`run_dir=DIR`, i.e. `hydra.sweep.dir=DIR`) therefore finishes only what
is left. A job directory whose recorded overrides differ from the job's is refused:
mixing two sweeps in one directory would average unrelated runs.

`job_threads` gives each job of a parallel launcher its share of the CPU cores.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from omegaconf import DictConfig

from embodied.errors import ConfigError
from embodied.run_info import run_complete

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def job_status(job_dir: Path, overrides: list[str]) -> str:
    """'new', 'complete' or 'unfinished' for a job directory; ConfigError if it holds another job."""
    recorded = job_dir / ".hydra" / "overrides.yaml"
    if not recorded.exists():
        return "new"
    before = yaml.safe_load(recorded.read_text()) or []
    if sorted(before) != sorted(overrides):
        ran = [o for o in before if o not in overrides] or ["(no more overrides)"]
        gives = [o for o in overrides if o not in before] or ["(no more overrides)"]
        raise ConfigError(
            f"sweep directory {job_dir.parent} holds another sweep: its job {job_dir.name} ran {' '.join(ran)}, "
            f"this sweep gives that job {' '.join(gives)}; re-run the original command or choose a new run_dir"
        )
    return "complete" if run_complete(job_dir) else "unfinished"


def job_threads(hydra_cfg: DictConfig | None, cores: int | None = None) -> int | None:
    """CPU threads for one job of a parallel multirun (None: not a parallel launcher, leave the default).

    joblib runs n_jobs processes on this machine: each gets cores // n_jobs. submitit
    (SLURM or local) jobs get their `cpus_per_task` (1 when unset, SLURM's default),
    Ray jobs their `ray.remote.num_cpus` (1 when unset, Ray's default).
    """
    from hydra.types import RunMode

    if hydra_cfg is None or hydra_cfg.mode != RunMode.MULTIRUN:
        return None
    launcher = hydra_cfg.launcher
    target = str(launcher.get("_target_", ""))
    cores = cores or len(os.sched_getaffinity(0))
    if target.endswith("JoblibLauncher"):
        n_jobs = int(launcher.get("n_jobs") or -1)
        n_jobs = cores + 1 + n_jobs if n_jobs < 0 else n_jobs
        return max(1, cores // max(1, n_jobs))
    if "submitit" in target:
        return int(launcher.get("cpus_per_task") or 1)
    if "ray" in target:
        remote = launcher.get("ray", {}).get("remote", {}) or {}
        return max(1, int(remote.get("num_cpus") or 1))
    return None


def limit_threads(threads: int) -> None:
    """Use at most `threads` CPU threads in torch, in BLAS/OpenMP pools and in child processes."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
