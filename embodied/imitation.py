"""Offline imitation from demonstrations: the one training loop every dataset-trained policy uses.

A policy subclasses `ImitationAgent` and supplies `build_model`, `window_kwargs`,
`compute_loss` and `act`; this module owns the rest, once: checking the dataset against
the env before anything trains, normalisation statistics (fitted on the training
episodes and stored in the checkpoint), the held-out episode split, AdamW with
linear warm-up and cosine decay, bf16 autocast on CUDA, validation losses, and
save/load of weights, optimiser, step and sampler RNG so a resumed run continues
exactly. The budget is `total_updates`, in gradient updates.

Under torchrun (see embodied.distributed) the training step runs in DistributedDataParallel:
`batch_size` stays the global batch, every rank draws the same global indices and keeps its
slice (`self.rows`), and a policy draws its per-row randomness for the global batch too
(`global_rows`) and divides masked sums by `batch_count`, so N processes compute the
gradient one process computes on the same global batch.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from embodied import distributed
from embodied.agent import Agent, TrainHooks
from embodied.config import AgentConfig
from embodied.errors import CheckpointError, ConfigError, DatasetError

NORMALIZER_PREFIX = "normalizer."


@dataclass
class ImitationConfig(AgentConfig):
    """Fields every dataset-trained policy shares."""

    dataset: str = "???"
    """Demonstrations written by embodied-collect (a dataset folder)."""
    val_fraction: float = 0.1
    """Episodes held out for validation losses (and the world-model probe)."""
    batch_size: int = 128
    lr: float = 6e-4
    weight_decay: float = 0.1
    warmup_fraction: float = 0.04
    """Linear warm-up over this fraction of total_updates, then cosine decay to 0."""
    grad_clip: float = 1.0
    """Max global gradient norm (0: no clipping)."""
    normalization: str = "mean_std"
    """How states and actions are normalised: mean_std or min_max."""
    amp: bool = True
    """bf16 autocast on CUDA (ignored on CPU)."""
    val_every: int = 500
    """Validation losses every this many gradient steps (0: never)."""
    val_batches: int = 4
    compile: bool = False
    """torch.compile the training step (checkpoints keep the uncompiled module's names)."""

    def __post_init__(self) -> None:
        if self.normalization not in ("mean_std", "min_max"):
            raise ConfigError(f"agent.normalization must be mean_std or min_max, got {self.normalization!r}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"agent.val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.batch_size <= 0 or self.lr <= 0:
            raise ConfigError("agent.batch_size and agent.lr must be > 0")
        if not 0 <= self.warmup_fraction < 1:
            raise ConfigError(f"agent.warmup_fraction must be in [0, 1), got {self.warmup_fraction}")


def env_tasks(env: gym.Env) -> tuple[str, ...] | None:
    """The task list of a multi-task env (its one-hot order), None for a single-task env."""
    tasks = getattr(env.unwrapped, "tasks", None)
    return tuple(tasks) if tasks is not None else None


def collect_command(env_config: Any, out: str, episodes: int = 40) -> str:
    """The embodied-collect command for demos that fit `env_config`, with its non-default observation options."""
    options = []
    for f in dataclasses.fields(env_config):
        if f.name not in ("obs_mode", "cameras", "image_size", "tasks", "render_quality"):
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        value = getattr(env_config, f.name)
        if value != default:
            options.append(
                f"{f.name}=[{','.join(map(str, value))}]" if isinstance(value, (list, tuple)) else f"{f.name}={value}"
            )
    return " ".join(["embodied-collect", f"env={env_config.id}", f"episodes={episodes}", *options, f"out={out}"])


def check_dataset(dataset: Any, env: gym.Env, env_id: str) -> None:
    """Raise DatasetError (one line) if the demos cannot train a policy for `env`.

    Spaces must match (action dimension, observation keys and shapes), and the
    demonstrated task set must be the env's: same task list in the same order for a
    multi-task env, the same env id for a single-task one.
    """
    tasks = env_tasks(env)
    fix = f"collect demos with `embodied-collect env={env_id} episodes=N out=...`"
    if tasks is not None:
        have = tuple(dataset.attrs.get("tasks") or ())
        if not have:
            raise DatasetError(
                f"dataset {dataset.path} holds one task ({dataset.env_id}) but env {env_id} has {len(tasks)}; {fix}"
            )
        if have != tasks:
            missing = [t for t in tasks if t not in have]
            extra = [t for t in have if t not in tasks]
            what = (
                f"lacks tasks {missing}"
                if missing
                else f"has extra tasks {extra}"
                if extra
                else "orders its tasks differently"
            )
            raise DatasetError(f"dataset {dataset.path} {what} compared with env {env_id} ({len(tasks)} tasks); {fix}")
    elif dataset.env_id and dataset.env_id != env_id:
        raise DatasetError(
            f"dataset {dataset.path} was collected on {dataset.env_id}, not {env_id}; train on env {dataset.env_id} or {fix}"
        )
    dataset.check_compatible(env.observation_space, env.action_space)
    profile = getattr(env.unwrapped, "render_quality", None)
    if getattr(env.unwrapped, "cameras", ()) and profile is not None:
        have = dataset.attrs.get("render_quality", "full")  # datasets from before the profiles are full
        if have != profile:
            raise DatasetError(
                f"dataset {dataset.path} was rendered with render_quality={have} but env {env_id} renders {profile}; "
                f"train with env.render_quality={have} or collect again with render_quality={profile}"
            )


class LossModule(nn.Module):
    """A policy's `compute_loss` as the forward of a module holding its networks, so that
    DDP (its gradient all-reduce hooks) and torch.compile see the whole training step."""

    def __init__(
        self, model: nn.Module, compute_loss: Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]
    ) -> None:
        super().__init__()
        self.model = model
        self.compute_loss = compute_loss

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.compute_loss(batch)


class ImitationAgent(Agent):
    """Base of the imitation policies: subclasses build the model and define the loss."""

    multi_process = True
    step_unit = "gradient updates"
    exact_resume = True

    config: ImitationConfig

    def __init__(
        self,
        config: ImitationConfig,
        observation_space: gym.Space,
        action_space: gym.Space,
        device: torch.device,
        seed: int = 0,
    ) -> None:
        super().__init__(config, observation_space, action_space, device, seed)
        if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
            raise ConfigError(f"agent '{config.name}' needs a flat Box action space, got {action_space}")
        self.obs_shapes = (
            {k: tuple(s.shape) for k, s in observation_space.spaces.items()}
            if isinstance(observation_space, gym.spaces.Dict)
            else {"state": tuple(observation_space.shape)}
        )
        self.action_dim = int(action_space.shape[0])
        self.model = self.build_model().to(device)
        self.normalizer: Any = None
        self.optimizer = torch.optim.AdamW(self.parameter_groups(), lr=config.lr, betas=(0.9, 0.95))
        self.generator = torch.Generator().manual_seed(seed)
        self.total_steps = 0
        self.metrics: dict[str, float] = {}
        self.final_metrics: dict[str, float] = {}
        self.dataset_info: dict[str, Any] = {}
        self.split: tuple[list[int], list[int]] | None = None
        self.rows = distributed.local_rows(config.batch_size)  # this process's rows of every global batch
        self.shard: slice | None = None  # self.rows while a multi-process update runs, else None
        self.step_module: nn.Module | None = None  # compute_loss as a module (DDP-wrapped, compiled), built by fit

    # --- what a policy defines ----------------------------------------------------
    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """The policy's networks (called once, in the constructor)."""

    @abc.abstractmethod
    def window_kwargs(self) -> dict[str, Any]:
        """WindowDataset arguments (obs_keys, obs_horizon, action_horizon, future_horizon, ...)."""

    @abc.abstractmethod
    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss of a normalised batch and the metrics to log (losses/*)."""

    def parameter_groups(self) -> list[dict]:
        from embodied.nn import weight_decay_groups

        return weight_decay_groups(self.model, self.config.weight_decay)

    def after_update(self) -> dict[str, float]:
        """Called after each optimiser step (e.g. an EMA target update); returns metrics to log."""
        return {}

    def after_training(self, train: Any, val: Any, hooks: TrainHooks) -> None:
        """Called once when training ends (e.g. a representation probe)."""

    # --- data -----------------------------------------------------------------------
    def normalizer_modes(self, keys: list[str]) -> dict[str, str]:
        """Task one-hots are min-max scaled (their argmax survives); the rest follow the config."""
        return {k: "min_max" if k == "obs/task" else self.config.normalization for k in keys}

    def open_data(self, env_factory: Any) -> tuple[Any, Any]:
        """Check the dataset against the env, fit the normaliser, return (train, val) windows."""
        from embodied.data import DemoDataset, Normalizer, WindowDataset

        if self.config.dataset in ("", "???"):
            raise ConfigError(f"agent '{self.config.name}' needs agent.dataset=<path written by embodied-collect>")
        if not Path(self.config.dataset).expanduser().exists():
            raise DatasetError(
                f"no dataset at {Path(self.config.dataset).expanduser().absolute()}; collect one with `{collect_command(env_factory.config, self.config.dataset)}`"
            )
        dataset = DemoDataset.open(self.config.dataset)
        env = env_factory.make(wrap_stats=False)
        try:
            check_dataset(dataset, env, env_factory.config.id)
        finally:
            env.close()
        if self.split is None or max(self.split[0] + self.split[1], default=-1) >= dataset.num_episodes:
            self.split = WindowDataset.episode_split(dataset, self.config.val_fraction, self.seed)
        train_eps, val_eps = self.split  # a resumed run keeps its checkpoint's split
        kwargs = self.window_kwargs()
        lowdim = ["action", *(f"obs/{k}" for k in kwargs["obs_keys"] if len(self.obs_shapes.get(k, ())) == 1)]
        if self.normalizer is None:  # a resumed run keeps its checkpoint's statistics
            starts, ends = dataset.episode_starts[train_eps], dataset.episode_ends[train_eps]
            rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
            self.normalizer = Normalizer.from_arrays(
                {k: dataset.array(k)[rows] for k in lowdim}, self.normalizer_modes(lowdim)
            )
        self.dataset_info = {
            "path": str(dataset.path),
            "env_id": dataset.env_id,
            "episodes": dataset.num_episodes,
            "train_episodes": len(train_eps),
            "val_episodes": len(val_eps),
            "tasks": dataset.attrs.get("tasks"),
        }
        train = WindowDataset(dataset, normalizer=self.normalizer, episodes=train_eps, **kwargs)
        val = WindowDataset(dataset, normalizer=self.normalizer, episodes=val_eps, **kwargs) if val_eps else None
        return train, val

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pin = self.device.type == "cuda"
        return {k: (v.pin_memory() if pin else v).to(self.device, non_blocking=pin) for k, v in batch.items()}

    def observation_batch(self, obs: Any) -> dict[str, torch.Tensor]:
        """One env observation -> normalised tensors shaped like a batch of one (obs_horizon 1)."""
        obs = obs if isinstance(obs, dict) else {"state": obs}
        out = {}
        for key, value in obs.items():
            x = torch.as_tensor(np.asarray(value))[None, None]
            if x.dtype != torch.uint8:
                x = x.float()
                if f"obs/{key}" in self.normalizer:
                    x = self.normalizer.normalize(f"obs/{key}", x)
            out[f"obs/{key}"] = x.to(self.device)
        return out

    def autocast(self) -> Any:
        enabled = self.config.amp and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    # --- several processes ----------------------------------------------------------
    def global_rows(self, n: int) -> tuple[int, slice]:
        """(rows of the global batch, this batch's slice of them) for a batch of n rows.

        Draw per-row randomness (noise, timesteps) for all the rows, then keep the slice:
        the draws then do not depend on the number of processes."""
        return (self.config.batch_size, self.shard) if self.shard is not None else (n, slice(0, n))

    def batch_count(self, count: torch.Tensor) -> torch.Tensor:
        """The denominator of a masked mean over the global batch: `count` averaged over the ranks
        during a multi-process update (itself otherwise). A local sum divided by it averages over
        the ranks, as DDP averages gradients, to the global-batch mean."""
        return distributed.mean(count.float()) if self.shard is not None else count

    def training_module(self) -> nn.Module:
        """compute_loss as a module over `self.model`: DDP-wrapped under torchrun, compiled with agent.compile."""
        module: nn.Module = LossModule(self.model, self.compute_loss)
        if distributed.world_size() > 1:
            from torch.nn.parallel import DistributedDataParallel

            # static_graph: a multistage policy leaves some parameters unused (the other stage's head)
            module = DistributedDataParallel(
                module, device_ids=[self.device] if self.device.type == "cuda" else None, static_graph=True
            )
        return torch.compile(module) if self.config.compile else module

    # --- training -------------------------------------------------------------------
    def schedule_segment(self, step: int) -> tuple[int, int]:
        """(step within its schedule, the schedule's length): one schedule over all of training;
        a multi-stage policy restarts it per stage."""
        return step, self.total_steps

    def learning_rate(self, step: int) -> float:
        """Linear warm-up then cosine decay to zero over the step's schedule segment."""
        step, length = self.schedule_segment(step)
        warmup = int(self.config.warmup_fraction * length)
        if step < warmup:
            return self.config.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, length - warmup)
        return self.config.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    def learn(self, env: Any, total_steps: int, hooks: TrainHooks) -> None:
        train, val = self.open_data(env)
        self.total_steps = total_steps
        if self.fit(train, val, total_steps, hooks) and distributed.is_main():
            self.after_training(train, val, hooks)

    def fit(self, train: Any, val: Any, until: int, hooks: TrainHooks) -> bool:
        """Gradient steps on random training windows until `num_steps == until`; False if the hooks stopped it.

        Every rank draws the same global batch indices and loads only its rows of them."""
        started, start_step = time.time(), self.num_steps
        self.step_module = self.training_module()  # per fit: a stage may freeze parameters
        while self.num_steps < until:
            idx = torch.randint(len(train), (self.config.batch_size,), generator=self.generator).numpy()
            metrics = distributed.mean_metrics(self.update(self.to_device(train.batch(idx[self.rows]))))
            metrics["charts/updates_per_s"] = (self.num_steps - start_step) / max(time.time() - started, 1e-9)
            self.metrics = metrics
            if val is not None and self.config.val_every > 0 and self.num_steps % self.config.val_every == 0:
                self.metrics.update(self.validate(val))  # the same windows on every rank
            if distributed.any_rank(not hooks.on_step(self.num_steps)):
                return False
        return True

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One gradient step on a device batch (this rank's rows under torchrun) at the scheduled learning rate; returns its metrics."""
        if self.step_module is None:
            self.step_module = self.training_module()
        self.step_module.train()
        lr = self.learning_rate(self.num_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.shard = self.rows if distributed.world_size() > 1 else None
        try:
            with self.autocast():
                loss, metrics = self.step_module(batch)
        finally:
            self.shard = None
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            metrics["losses/grad_norm"] = float(
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            )
        self.optimizer.step()
        metrics.update(self.after_update())
        self.num_steps += 1
        metrics["charts/learning_rate"] = lr
        return metrics

    @torch.no_grad()
    def validate(self, val: Any) -> dict[str, float]:
        """Mean losses on fixed held-out windows (the same ones every time), as losses/val_*."""
        self.model.eval()
        n = min(len(val), self.config.val_batches * self.config.batch_size)
        idx = np.linspace(0, len(val) - 1, n).astype(np.int64)
        sums: dict[str, float] = {}
        chunks = [idx[i : i + self.config.batch_size] for i in range(0, n, self.config.batch_size)]
        for chunk in chunks:
            with self.autocast():
                _, metrics = self.compute_loss(self.to_device(val.batch(chunk)))
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + v * len(chunk) / n
        self.model.train()
        return {k.replace("losses/", "losses/val_"): v for k, v in sums.items() if k.startswith("losses/")}

    def training_metrics(self) -> dict[str, float]:
        return dict(self.metrics)

    # --- checkpoints ----------------------------------------------------------------
    def extra_generators(self) -> dict[str, torch.Generator]:
        """Random generators beyond the training sampler's that a checkpoint must restore (e.g. action noise)."""
        return {}

    def save(self, directory: Path) -> None:
        from embodied.checkpoint import write_agent_files

        if self.normalizer is None:
            raise CheckpointError(
                "nothing to save: the agent has not seen a dataset yet (train it or load a checkpoint)"
            )
        tensors = {**self.model.state_dict(), **self.normalizer.state_dict(NORMALIZER_PREFIX)}
        meta = {
            "agent": self.config.name,
            "config": dataclasses.asdict(self.config),
            "obs_shapes": self.obs_shapes,
            "action_dim": self.action_dim,
            "dataset": self.dataset_info,
            "num_steps": self.num_steps,
        }
        state = {
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            **{f"generator/{name}": g.get_state() for name, g in self.extra_generators().items()},
            "num_steps": self.num_steps,
            "total_steps": self.total_steps,
            "final_metrics": self.final_metrics,
            "split": list(self.split or ([], [])),
        }
        write_agent_files(directory, tensors, meta, state)

    def load(self, directory: Path) -> None:
        from embodied.checkpoint import read_agent_files
        from embodied.data import Normalizer

        meta, tensors, state = read_agent_files(directory, self.config.name)
        if {k: tuple(v) for k, v in meta["obs_shapes"].items()} != self.obs_shapes or meta[
            "action_dim"
        ] != self.action_dim:
            raise CheckpointError(
                f"checkpoint '{directory}' was trained on observations {meta['obs_shapes']} and {meta['action_dim']}-d actions; this env gives {self.obs_shapes} and {self.action_dim}-d"
            )
        weights = {k: v for k, v in tensors.items() if not k.startswith(NORMALIZER_PREFIX)}
        missing, unexpected = self.model.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint '{directory}' does not fit this model (missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}); check the agent.* sizes match the run's"
            )
        self.normalizer = Normalizer.from_state_dict(tensors, NORMALIZER_PREFIX)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        for name, generator in self.extra_generators().items():
            if f"generator/{name}" in state:  # checkpoints written before it was saved lack it
                generator.set_state(state[f"generator/{name}"])
        self.num_steps, self.total_steps = int(state["num_steps"]), int(state["total_steps"])
        self.final_metrics = dict(state.get("final_metrics") or {})
        self.split = (
            (list(state["split"][0]), list(state["split"][1])) if state.get("split") and state["split"][0] else None
        )
        self.dataset_info = meta.get("dataset", {})
