"""Multi-process training under torchrun: the process group, ranks, reductions (dataset-trained policies only).

    torchrun --nproc-per-node=N -m embodied.train experiment=act_jepa_metaworld15 ...

torchrun starts N copies of `embodied-train` and sets RANK, LOCAL_RANK, WORLD_SIZE and
MASTER_ADDR/PORT. `setup` joins its process group (nccl on CUDA, one GPU per process
at cuda:LOCAL_RANK; gloo on CPU). Rank 0 owns the run directory (metrics, checkpoints,
summary, videos, evaluation); the other ranks train and write nothing: `worker_argv`
points their Hydra output at a throwaway folder removed at exit, and `broadcast_object`
hands them rank 0's run directory. Without torchrun (WORLD_SIZE unset or 1) every helper
is a no-op, so one process runs exactly as before.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.distributed as dist

from embodied.errors import ConfigError

WORKER_DIR_PREFIX = "embodied-rank"


def _initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of training processes (1 without torchrun)."""
    return dist.get_world_size() if _initialized() else int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank (0 without torchrun)."""
    return dist.get_rank() if _initialized() else int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's index on its machine: its GPU."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    """Whether this process writes the run's files (rank 0)."""
    return rank() == 0


def require_single_process(agent: str) -> None:
    """ConfigError under torchrun with several processes, for agents that train in one."""
    if world_size() > 1:
        raise ConfigError(f"agent '{agent}' does not support multi-process training; run it without torchrun")


def setup(device: torch.device) -> torch.device:
    """Join torchrun's process group (once per process); return this rank's device (cuda -> cuda:LOCAL_RANK)."""
    if world_size() <= 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    if not _initialized():
        if device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            dist.init_process_group("gloo")
        atexit.register(cleanup)
    return device


def cleanup() -> None:
    """Leave the process group (registered at exit by `setup`)."""
    if _initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank gets here."""
    if _initialized() and world_size() > 1:
        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Run the block on rank 0, then on the other ranks (e.g. rank 0 writes a cache they then read)."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def _reduce_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` (detached) over the ranks; `tensor` itself in one process."""
    if world_size() <= 1:
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out)
    return out / world_size()


def mean_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """Every metric averaged over the ranks (all ranks pass the same keys)."""
    if world_size() <= 1 or not metrics:
        return metrics
    keys = sorted(metrics)
    values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=_reduce_device())
    dist.all_reduce(values)
    averaged = dict(zip(keys, (values / world_size()).tolist()))
    return {k: averaged[k] for k in metrics}


def any_rank(flag: bool) -> bool:
    """True on every rank when `flag` is true on any (a stop request reaches processes at different steps)."""
    if world_size() <= 1:
        return flag
    value = torch.tensor([float(flag)], device=_reduce_device())
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def broadcast_object(obj: Any) -> Any:
    """Rank 0's `obj` (picklable) on every rank."""
    if world_size() <= 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def local_rows(batch_size: int) -> slice:
    """This rank's rows of a global batch of `batch_size` rows; ConfigError unless the ranks split it evenly."""
    n = world_size()
    if batch_size % n:
        raise ConfigError(
            f"agent.batch_size ({batch_size}) is the global batch and must be divisible by the number of processes ({n})"
        )
    share = batch_size // n
    return slice(rank() * share, (rank() + 1) * share)


def worker_argv(argv: list[str]) -> list[str]:
    """Hydra overrides for ranks > 0: output into a throwaway folder (removed at exit), no .hydra/, warnings only."""
    if world_size() <= 1 or is_main():
        return argv
    scratch = tempfile.mkdtemp(prefix=f"{WORKER_DIR_PREFIX}{rank()}-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    own = ("hydra.run.dir=", "hydra.sweep.dir=", "hydra.output_subdir=", "hydra.job_logging.root.level=")
    kept = [a for a in argv if not a.startswith(own)]
    return [
        *kept,
        f"hydra.run.dir={scratch}",
        f"hydra.sweep.dir={scratch}",
        "hydra.output_subdir=null",
        "hydra.job_logging.root.level=WARNING",
    ]


class WorkerHooks:
    """TrainHooks of ranks > 0: no logging, no checkpoints, no progress bar; they pass on stop requests."""

    def __init__(self) -> None:
        self.stop_signal: int | None = None

    def on_step(self, step: int, metrics: Any = None) -> bool:
        return self.stop_signal is None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def request_stop(self, signum: int, _frame: Any = None) -> None:
        if self.stop_signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.stop_signal = signum
