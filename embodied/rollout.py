"""`embodied-rollout`: load a run's checkpoint, run episodes, write metrics and videos.

    embodied-rollout run=runs/2026-11-21/12-00-00_sac_metaworld_reach episodes=20 video=true
    embodied-rollout run=RUN checkpoint=10000 episodes=5

Writes RUN/rollouts/<time>/{metrics.json, *.mp4}, built in a temporary folder and
renamed when complete, so an interrupted rollout leaves nothing that looks finished.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING

from embodied.errors import ConfigError


@dataclass
class RolloutConfig:
    run: str = MISSING
    """Run directory written by embodied-train."""
    checkpoint: str = "last"
    """"last" or a step number."""
    episodes: int = 10
    video: bool = False
    """Record an mp4 per recorded episode."""
    video_episodes: Optional[int] = None
    """How many episodes to record (default: all when video=true)."""
    seed: Optional[int] = None
    """First episode seed (default: the run's seed + eval.seed_offset)."""
    deterministic: bool = True
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.episodes <= 0:
            raise ConfigError(f"episodes must be > 0, got {self.episodes}")


def rollout(args: RolloutConfig) -> Path:
    """Run the episodes; return the rollout folder."""
    from embodied.checkpoint import find_checkpoint, load_checkpoint
    from embodied.config import load_run_config
    from embodied.envs.factory import EnvFactory
    from embodied.evaluation import episodes_as_dicts, run_episodes, summarize
    from embodied.run_info import write_json
    from embodied.seeding import resolve_device, seed_everything
    from embodied.train import build_agent
    from embodied.video import ensure_writable_dir

    run_dir = Path(args.run)
    checkpoint = find_checkpoint(run_dir, args.checkpoint)
    config = load_run_config(run_dir / ".hydra" / "config.yaml")
    root = ensure_writable_dir(run_dir / "rollouts")
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
    final, tmp = root / stamp, root / f".tmp-{stamp}"
    if final.exists():
        raise ConfigError(f"rollout folder '{final}' already exists; wait a second and run again")

    seed = config.seed + config.eval.seed_offset if args.seed is None else args.seed
    seed_everything(seed)
    factory = EnvFactory(config.env, seed=seed)
    env = factory.make(render_mode="rgb_array" if args.video else None)
    agent = build_agent(config.agent, env.observation_space, env.action_space, resolve_device(args.device), config.seed)
    state = load_checkpoint(checkpoint, agent, restore_rng=False)

    tmp.mkdir()
    try:
        results = run_episodes(
            env,
            lambda obs: agent.act(obs, deterministic=args.deterministic),
            episodes=args.episodes,
            seed=seed,
            reset_policy=agent.reset,
            video_dir=tmp if args.video else None,
            video_episodes=(args.episodes if args.video_episodes is None else args.video_episodes) if args.video else 0,
            progress=True,
        )
        env.close()
        metrics: dict[str, Any] = {
            **summarize(results, prefix="", death_causes=env.metadata.get("death_causes", ())),
            "checkpoint_step": state["step"],
            "checkpoint": str(checkpoint),
            "env_id": config.env.id,
            "agent": config.agent.name,
            "first_seed": seed,
            "deterministic": args.deterministic,
            "episodes_detail": [
                {**e, "video": Path(e["video"]).name if e["video"] else None} for e in episodes_as_dicts(results)
            ],
        }
        write_json(tmp / "metrics.json", metrics)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    rate, low, high = metrics["success_rate"], metrics["success_ci95_low"], metrics["success_ci95_high"]
    print(
        f"success {rate:.1%} (95% CI {low:.1%}-{high:.1%}), return {metrics['return_mean']:.1f}, length {metrics['length_mean']:.0f} over {args.episodes} episodes",
        file=sys.stderr,
    )
    print(final)
    return final


def main() -> None:
    from embodied.cli import parse_args, run_command

    run_command(lambda: rollout(parse_args(RolloutConfig, sys.argv[1:], "embodied-rollout")))


if __name__ == "__main__":
    main()
