"""Training speed and inference latency of every registered agent, in-process, CPU, one torch thread.

    python benchmarks/agent_speed.py [--budget small|full] [--agents sac,ppo,...] [--json out.json]

For each registered agent, on its experiment's env and config (its registry entry's BenchSpec):

1. Training rate: `agent.learn(env_factory, budget, hooks)` runs exactly as in
   `embodied-train`, but with hooks that only read the clock. After a warm-up (one whole
   rollout + update for on-policy agents, `learning_starts` + 50 steps for SAC, 3 gradient
   steps for imitation agents), the clock starts at the beginning of an update cycle and
   stops, after at least `seconds`, at the beginning of a later one, so the rate covers whole
   cycles (env steps and the updates they trigger). Start-up, env construction, dataset
   loading and evaluation are not timed. RL agents report env steps/s; imitation agents
   (act, act_jepa, ptp) report gradient updates/s on a small scripted-expert dataset made with
   `embodied-collect` and cached under `--out`.
2. Inference latency: ms per `agent.act(obs)` call on one observation of the env (batch 1,
   deterministic), median and p90 over `calls` calls after `warmup_calls`. Chunking agents
   (act, act_jepa, ptp) keep a queue of actions and query the model only when it is empty:
   the latency is the query (the queue is emptied before every timed call, so each call runs
   the full model; ptp keeps its frame history, so the query runs on a full 16-frame context),
   and `cached_ms` is the median of the calls served from the queue.

act, act_jepa and ptp use the CPU presets of benchmarks/act_jepa.py and benchmarks/ptp.py (the
sizes behind the learning results in benchmarks/README.md); with `--preset paper` the published sizes.
Prints a Markdown table and, last, the command line; `--json` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from common import command_line

from embodied.agents.registry import REGISTRY, BenchSpec
from embodied.config import training_budget

BUDGETS: dict[str, dict[str, float]] = {
    # seconds: timed training window per agent (at least one whole update cycle);
    # calls / warmup_calls: act() calls timed / discarded first
    "tiny": {"seconds": 0.0, "calls": 5, "warmup_calls": 1, "warmup_cycles": 0},
    "small": {"seconds": 5.0, "calls": 30, "warmup_calls": 5, "warmup_cycles": 1},
    "full": {"seconds": 60.0, "calls": 200, "warmup_calls": 20, "warmup_cycles": 1},
}


AGENTS: dict[str, BenchSpec] = {name: spec.bench for name, spec in REGISTRY.items()}
"""How each registered agent is timed: its registry entry's BenchSpec (agents/registry.py)."""


def preset_overrides(spec: BenchSpec, preset: str) -> list[str]:
    """The size overrides of an imitation agent's preset, from the benchmark that owns them."""
    if not spec.preset:
        return []
    if spec.preset == "act_jepa":
        from act_jepa import PRESETS
    else:
        from ptp import PRESETS
    return list(PRESETS[preset])


def collect_demos(out: Path, args: tuple[str, ...]) -> Path:
    """A small scripted-expert dataset, made once with embodied-collect and cached in `out`."""
    name = "demos_" + "_".join(a.split("=", 1)[1].replace("/", "-") for a in args)
    path = out / name
    if not (path / "zarr.json").exists():
        cmd = [sys.executable, "-m", "embodied.collect", *args, f"out={path}"]
        print("collecting:", " ".join(cmd[1:]), file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            raise RuntimeError(f"embodied-collect failed: {lines[-1] if lines else proc.returncode}")
    return path


# --- training rate -----------------------------------------------------------------------
@dataclass
class CycleTimer:
    """TrainHooks that time whole update cycles and stop training once the window is done.

    A cycle is `period` steps (a rollout of an on-policy agent, 1 for SAC and imitation
    agents); cycle boundaries are the steps with `step % period == phase`, the first step
    of each rollout, seen after the previous update.
    """

    period: int
    warmup_steps: int
    seconds: float
    phase: int | None = None
    start: tuple[int, float] | None = None
    stop: tuple[int, float] | None = None
    last_boundary: tuple[int, float] | None = None
    steps_seen: int = 0

    def on_step(self, step: int, _episodes: Any = None) -> bool:
        now = time.perf_counter()
        self.steps_seen = step
        if self.phase is None:
            self.phase = step % self.period
        if step % self.period != self.phase:
            return True
        if self.start is None:
            if step >= self.warmup_steps:
                self.start = (step, now)
            return True
        self.last_boundary = (step, now)
        if now - self.start[1] >= self.seconds:
            self.stop = (step, now)
            return False
        return True

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """Nothing is logged while timing."""

    def rate(self) -> tuple[float, int, float]:
        """(steps per second, steps timed, seconds timed) over the whole cycles seen."""
        end = self.stop or self.last_boundary
        if self.start is None or end is None:
            raise RuntimeError(
                f"training ended at step {self.steps_seen} before a whole update cycle was timed (warm-up {self.warmup_steps} steps, cycle {self.period})"
            )
        steps, seconds = end[0] - self.start[0], end[1] - self.start[1]
        return steps / seconds, steps, seconds


def cycle_of(config: Any) -> tuple[int, int]:
    """(steps per update cycle, steps before updates start) of an agent under `config`."""
    cfg, envs = config.agent, config.env.num_envs
    cycle = AGENTS[cfg.name].cycle
    if cycle == "rollout":
        return cfg.n_steps * envs, 0
    if cycle == "train_freq":
        return cfg.train_freq * envs, cfg.learning_starts + 50
    return 1, 3  # one update per step (imitation: one gradient step)


def time_training(agent: Any, factory: Any, config: Any, seconds: float, warmup_cycles: int) -> dict[str, Any]:
    """Run the agent's own learn loop under a CycleTimer; return the measured rate."""
    period, warmup = cycle_of(config)
    timer = CycleTimer(period=period, warmup_steps=warmup + warmup_cycles * period, seconds=seconds)
    agent.learn(factory, training_budget(config, agent.step_unit, config.agent.name)[1], timer)
    rate, steps, elapsed = timer.rate()
    return {
        "train_rate": rate,
        "timed_steps": steps,
        "timed_s": elapsed,
        "cycle_steps": period,
        "warmup_steps": timer.warmup_steps,
    }


# --- inference latency -------------------------------------------------------------------
def time_act(agent: Any, obs: Any, calls: int, warmup_calls: int) -> dict[str, Any]:
    """ms per act(obs): the full model call (a chunk query for chunking agents) and, for those, a cached step."""
    chunking = hasattr(agent, "queue")
    agent.reset()
    query, cached = [], []
    for i in range(warmup_calls + calls):
        if chunking:
            agent.queue.clear()  # the next act() queries the model
        start = time.perf_counter()
        agent.act(obs, deterministic=True)
        if i >= warmup_calls:
            query.append(time.perf_counter() - start)
        if chunking and agent.queue and i >= warmup_calls:
            start = time.perf_counter()
            agent.act(obs, deterministic=True)  # served from the queue
            cached.append(time.perf_counter() - start)
    ms = 1000 * np.asarray(query)
    row = {
        "latency_ms_median": float(np.median(ms)),
        "latency_ms_p90": float(np.percentile(ms, 90)),
        "latency_calls": calls,
        "latency_what": "chunk query (full model call)" if chunking else "act() (full model call)",
    }
    row["cached_ms_median"] = float(1000 * np.median(cached)) if cached else None
    return row


# --- one agent ------------------------------------------------------------------------------
def bench_agent(name: str, budget: str, out: Path, preset: str = "cpu", device: str = "cpu") -> dict[str, Any]:
    """Training rate and act() latency of one registered agent on its experiment's env."""
    import torch

    from embodied.cli import compose, to_dataclass
    from embodied.envs.factory import EnvFactory
    from embodied.seeding import seed_everything
    from embodied.train import build_agent

    spec, plan = AGENTS[name], BUDGETS[budget]
    torch.set_num_threads(1)
    overrides = [f"experiment={spec.experiment}", *spec.overrides, *preset_overrides(spec, preset)]
    if spec.imitation:
        overrides.append(f"agent.dataset={collect_demos(out, spec.demos)}")
    config = to_dataclass(compose("config", overrides))
    seed_everything(config.seed)
    factory = EnvFactory(config.env, seed=config.seed, reward=config.reward)
    probe = factory.make()
    agent = build_agent(config.agent, probe.observation_space, probe.action_space, torch.device(device), config.seed)
    row: dict[str, Any] = {
        "agent": name,
        "experiment": spec.experiment,
        "overrides": overrides[1:],
        "preset": preset if spec.preset else None,
        "train_unit": "updates/s" if spec.imitation else "env steps/s",
        "num_envs": config.env.num_envs,
        "notes": spec.notes,
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
    }
    row.update(time_training(agent, factory, config, plan["seconds"], int(plan["warmup_cycles"])))
    obs, _ = probe.reset(seed=0)
    row.update(time_act(agent, obs, int(plan["calls"]), int(plan["warmup_calls"])))
    probe.close()
    row["torch_threads"] = torch.get_num_threads()
    return row


def without_json(argv: list[str]) -> list[str]:
    """The arguments without `--json PATH` (where the output goes does not change the numbers)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--json":
            skip = True
        elif not arg.startswith("--json="):
            out.append(arg)
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| agent | experiment | training rate | act() ms, median / p90 | what act() times | cached step ms |",
        "|---|---|---:|---:|---|---:|",
    ]
    for r in rows:
        cached = f"{r['cached_ms_median']:.3f}" if r.get("cached_ms_median") is not None else "–"
        exp = r["experiment"] + (f", preset {r['preset']}" if r.get("preset") else "")
        lines.append(
            f"| {r['agent']} | {exp} | {r['train_rate']:.1f} {r['train_unit']} | {r['latency_ms_median']:.2f} / {r['latency_ms_p90']:.2f} | {r['latency_what']} | {cached} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--budget",
        choices=sorted(BUDGETS),
        default="small",
        help="timed seconds and calls per agent (tiny: plumbing tests only)",
    )
    parser.add_argument("--agents", default=",".join(AGENTS), help="comma-separated registered agents")
    parser.add_argument("--preset", choices=("cpu", "paper"), default="cpu", help="sizes of act, act_jepa and ptp")
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where the agent's networks run (cuda: bf16 autocast for act, act_jepa, ptp)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("runs/bench/agent_speed"), help="where the demo datasets are cached"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    names = [a.strip() for a in args.agents.split(",") if a.strip()]
    if args.device == "cuda" and not __import__("torch").cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible to torch")
    unknown = [a for a in names if a not in AGENTS]
    if unknown:
        parser.error(f"unknown agent {unknown[0]!r}; choose from: {', '.join(AGENTS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        rows.append(bench_agent(name, args.budget, args.out, args.preset, args.device))
    command = command_line("benchmarks/agent_speed.py", without_json(argv if argv is not None else sys.argv[1:]))
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "budget": args.budget, "rows": rows}, indent=1))
    print(f"\n{command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
