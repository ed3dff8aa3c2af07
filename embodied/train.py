"""`embodied-train`: build env + agent from the config, train, checkpoint, evaluate with video.

    embodied-train                                   # the default experiment
    embodied-train experiment=ppo_metaworld_reach seed=1
    embodied-train run_dir=runs/x resume=true        # continue from runs/x/checkpoints/last
    embodied-train -m seed=0,1,2 run_dir=runs/s       # a Hydra multirun; run again, it finishes only the unfinished jobs
    embodied-train -m seed=0,1,2 hydra/launcher=joblib  # in parallel (also submitit_slurm, submitit_local, ray)

The run directory layout is described in docs/usage.md; its path is printed last.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from embodied.config import training_budget
from embodied.errors import CheckpointError, ConfigError
from embodied.evaluation import episode_metrics
from embodied.rendering import record_qualities, renders_with_mujoco, require_rendering

log = logging.getLogger("embodied.train")


class TrainingHooks:
    """What runs between env steps: metric logging, periodic checkpoints, stop requests."""

    def __init__(
        self, config: Any, agent: Any, logger: Any, run_dir: Path, start_step: int, death_causes: tuple[str, ...] = ()
    ) -> None:
        from tqdm import tqdm

        self.config, self.agent, self.logger, self.run_dir = config, agent, logger, run_dir
        self.start_step, self.start_time = start_step, time.time()
        self.episodes: list[dict[str, Any]] = []
        self.death_causes = death_causes
        self.next_log = (start_step // config.log_every + 1) * config.log_every
        every = config.checkpoint.every
        self.next_checkpoint = (start_step // every + 1) * every if every > 0 else None
        self.stop_signal: int | None = None
        self.last_logged = -1
        total = training_budget(config, agent.step_unit, config.agent.name)[1]
        self.progress = tqdm(total=total, initial=start_step, unit="step", mininterval=5, disable=None)

    def on_step(self, step: int, episodes: list[dict[str, float]] | None = None) -> bool:
        self.progress.update(step - self.progress.n)
        self.episodes.extend(episodes or ())
        if step >= self.next_log:
            self.log(step, self.agent.training_metrics())
            self.next_log = (step // self.config.log_every + 1) * self.config.log_every
        if self.next_checkpoint is not None and step >= self.next_checkpoint:
            self.save(step)
            self.next_checkpoint = (step // self.config.checkpoint.every + 1) * self.config.checkpoint.every
        return self.stop_signal is None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        if step == self.last_logged and not self.episodes:
            return
        self.last_logged = step
        elapsed = max(time.time() - self.start_time, 1e-9)
        row = {"charts/SPS": (step - self.start_step) / elapsed, **metrics}
        if self.episodes:
            stats = episode_metrics(self.episodes, "charts/", self.death_causes)
            stats["charts/episodic_return"] = stats.pop("charts/return_mean")
            stats["charts/episodic_length"] = stats.pop("charts/length_mean")
            row.update(stats)
            self.episodes.clear()
        self.logger.log(step, row)

    def save(self, step: int) -> Path:
        from embodied.checkpoint import save_checkpoint

        return save_checkpoint(self.run_dir, step, self.agent, keep=self.config.checkpoint.keep)

    def request_stop(self, signum: int, _frame: Any = None) -> None:
        if self.stop_signal is not None:  # a second Ctrl-C: stop now, without the checkpoint
            raise KeyboardInterrupt
        log.warning("signal %d: finishing the current step, then writing a checkpoint", signum)
        self.stop_signal = signum


def agent_class(name: str) -> type:
    """The Agent subclass registered under `name`."""
    from embodied.agents import REGISTRY
    from embodied.config import load_object

    spec = REGISTRY.get(name)
    if spec is None:
        raise ConfigError(f"unknown agent '{name}'; registered: {', '.join(REGISTRY)}")
    return load_object(spec.agent)


def build_agent(agent_config: Any, observation_space: Any, action_space: Any, device: Any, seed: int) -> Any:
    """Instantiate the registered agent named by `agent_config.name`."""
    return agent_class(agent_config.name)(agent_config, observation_space, action_space, device, seed)


def train(cfg: DictConfig) -> Path:
    """Run one training job in Hydra's output directory; return the run directory."""
    import torch
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from embodied import distributed
    from embodied.checkpoint import find_checkpoint, load_checkpoint
    from embodied.cli import to_dataclass
    from embodied.envs.factory import EnvFactory
    from embodied.evaluation import episodes_as_dicts, run_episodes, summarize
    from embodied.metrics import MetricLogger
    from embodied.run_info import git_commit, versions, write_json
    from embodied.seeding import resolve_device, seed_everything
    from embodied.sweep import job_threads, limit_threads
    from embodied.video import ensure_writable_dir

    record_qualities(cfg.env)  # the saved config names the render profile, not "auto"
    config = to_dataclass(cfg)
    hydra_cfg = HydraConfig.get()
    experiment = hydra_cfg.runtime.choices.get("experiment", "custom")
    budget_key, budget = training_budget(config, agent_class(config.agent.name).step_unit, config.agent.name)
    if not agent_class(config.agent.name).multi_process:  # under torchrun only agents that declare it train
        distributed.require_single_process(config.agent.name)
    device = distributed.setup(resolve_device(config.device))  # under torchrun: join the process group
    main = distributed.is_main()  # rank 0 writes the run; other ranks only train (see embodied.distributed)
    run_dir = distributed.broadcast_object(Path(hydra_cfg.runtime.output_dir))
    if main:
        (run_dir / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        if config.eval.video and config.eval.episodes > 0:
            ensure_writable_dir(run_dir / "videos")

    # --- set-up: seeds, device, env factory, agent, logger, resume --------------------
    seed_everything(config.seed)
    threads = config.torch_threads or job_threads(hydra_cfg)  # parallel sweep jobs share the cores
    if threads:
        limit_threads(threads)
    factory = EnvFactory(config.env, seed=config.seed, reward=config.reward)
    probe = factory.make()
    needs_frames = (config.eval.video and config.eval.episodes > 0) or getattr(
        config.env, "obs_mode", "state"
    ) != "state"
    if needs_frames and renders_with_mujoco(probe):  # fail now, not after training, when there is no GL
        probe.close()
        require_rendering()
    observation_space, action_space = probe.observation_space, probe.action_space
    death_causes = tuple(probe.metadata.get("death_causes", ()))
    probe.close()
    agent = build_agent(config.agent, observation_space, action_space, device, config.seed)
    agent.include_replay_buffer = config.checkpoint.replay_buffer
    start_step = 0
    # a re-launched sweep (embodied.sweep) continues its unfinished jobs from their last checkpoint
    resume = config.resume or (hydra_cfg.mode == RunMode.MULTIRUN and (run_dir / "checkpoints" / "last").exists())
    if resume:
        state = load_checkpoint(find_checkpoint(run_dir, "last"), agent)
        start_step = int(state["step"])
        log.info("resumed from step %d", start_step)
    if main:
        logger = MetricLogger(
            run_dir,
            config.logger,
            config=OmegaConf.to_container(cfg, resolve=True),
            resume_step=start_step if resume else None,
        )
        hooks = TrainingHooks(config, agent, logger, run_dir, start_step, death_causes)
    else:
        hooks = distributed.WorkerHooks()

    # --- train (SIGINT/SIGTERM end the step, checkpoint, exit non-zero) ---------------
    started = time.time()
    previous = {s: signal.signal(s, hooks.request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        agent.learn(factory, budget, hooks)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if main:
            hooks.progress.close()
    if not main:  # ranks > 0 write nothing: rank 0 logs, checkpoints and evaluates
        if hooks.stop_signal is not None:
            sys.exit(128 + hooks.stop_signal)
        return run_dir
    step = agent.num_steps
    hooks.log(step, agent.training_metrics())
    checkpoint = hooks.save(step)
    summary: dict[str, Any] = {
        "status": "complete" if hooks.stop_signal is None else "interrupted",
        "experiment": experiment,
        "env_id": config.env.id,
        "agent": config.agent.name,
        "seed": config.seed,
        "device": str(device),
        "processes": distributed.world_size(),  # torchrun's, one per device
        "torch_threads": torch.get_num_threads(),
        "steps": step,
        budget_key: budget,  # total_steps (env steps) or total_updates (gradient updates)
        "step_unit": agent.step_unit,
        "resumed_from_step": start_step if resume else None,
        "train_wall_time_s": round(time.time() - started, 2),
        "checkpoint": str(checkpoint.relative_to(run_dir)),
        "versions": versions(),
        "git_commit": git_commit(),
    }
    if factory.reward_sandbox is not None:  # reward code ran: the isolation it got, and its warning if any
        summary["reward_sandbox"] = factory.reward_sandbox
    if hooks.stop_signal is not None:
        write_json(run_dir / "summary.json", summary)
        logger.close()
        print(
            f"interrupted at step {step}; checkpoint written; continue with: embodied-train run_dir={run_dir} resume=true",
            file=sys.stderr,
        )
        print(run_dir)
        sys.exit(128 + hooks.stop_signal)

    # --- evaluate with video ----------------------------------------------------------
    eval_metrics: dict[str, float] = {}
    final_metrics = dict(agent.final_metrics)  # what an agent measures once, after training (e.g. a probe)
    if config.eval.episodes > 0:
        env = factory.make(render_mode="rgb_array" if config.eval.video else None)
        results = run_episodes(
            env,
            lambda obs: agent.act(obs, deterministic=config.eval.deterministic),
            episodes=config.eval.episodes,
            seed=config.seed + config.eval.seed_offset,
            reset_policy=agent.reset,
            video_dir=run_dir / "videos" if config.eval.video else None,
            video_episodes=config.eval.video_episodes,
            video_prefix=f"eval_step{step}",
        )
        env.close()
        eval_metrics = summarize(results, death_causes=death_causes)
        summary["eval_episodes"] = episodes_as_dicts(results)
        summary["videos"] = [str(Path(r.video).relative_to(run_dir)) for r in results if r.video]
    final_metrics.update(agent.final_report(factory, run_dir))  # e.g. SLIM's skills and planner
    if final_metrics or eval_metrics:
        logger.log(step, {**final_metrics, **eval_metrics})
    logger.close()
    summary["metrics"] = {**final_metrics, **eval_metrics}
    summary["wall_time_s"] = round(time.time() - started, 2)
    write_json(run_dir / "summary.json", summary)
    log.info("eval: %s", {k: round(v, 3) for k, v in eval_metrics.items()})
    print(run_dir)
    return run_dir


def _prepare_argv(argv: list[str]) -> list[str]:
    """Check run_dir/resume before Hydra writes anything; on resume, replay the run's overrides.
    Under torchrun, ranks > 0 get a throwaway Hydra output folder (rank 0 owns the run)."""
    from embodied.distributed import worker_argv

    values = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in argv if "=" in a and not a.startswith("-")}
    resume = values.get("resume", "false").lower() in ("true", "1", "yes")
    run_dir = values.get("run_dir")
    if "-m" in argv or "--multirun" in argv:
        return worker_argv(_sweep_argv(argv, run_dir, resume))
    if resume and not run_dir:
        raise ConfigError("resume=true needs run_dir=<the run directory to continue>")
    if run_dir and not resume and (Path(run_dir) / "checkpoints").exists():
        raise CheckpointError(
            f"run_dir '{run_dir}' already holds a run; pass resume=true to continue it, or choose a new run_dir"
        )
    if run_dir and not any(a.startswith("hydra.run.dir=") for a in argv):
        argv = [*argv, f"hydra.run.dir={run_dir}"]
    if not resume:
        return worker_argv(argv)
    overrides_file = Path(run_dir) / ".hydra" / "overrides.yaml"
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"cannot resume: run directory '{run_dir}' does not exist")
    if not (Path(run_dir) / "checkpoints" / "last").exists():
        raise CheckpointError(
            f"cannot resume: '{run_dir}' has no complete checkpoint (checkpoints/last); start a new run instead"
        )
    original = yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
    given = {a.split("=", 1)[0].lstrip("+~") for a in argv if "=" in a}
    kept = [o for o in original if o.split("=", 1)[0].lstrip("+~") not in given | {"resume", "run_dir"}]
    return worker_argv(kept + argv)


def _sweep_argv(argv: list[str], sweep_dir: str | None, resume: bool) -> list[str]:
    """A multirun's run_dir is its sweep directory; re-running the command there finishes the unfinished jobs."""
    if resume:
        raise ConfigError(
            "resume=true continues one run; to finish an interrupted sweep, re-run its command with run_dir=<the sweep directory>"
        )
    if sweep_dir is None:
        return argv
    if any(a.startswith("hydra.sweep.dir=") for a in argv):
        raise ConfigError("give the sweep directory once: run_dir=DIR or hydra.sweep.dir=DIR, not both")
    return [a for a in argv if not a.startswith("run_dir=")] + [f"hydra.sweep.dir={sweep_dir}"]


def main() -> Any:
    from embodied.cli import hydra_command

    return hydra_command(train, "config", argv_hook=_prepare_argv)()


if __name__ == "__main__":
    main()
