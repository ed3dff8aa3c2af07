"""`embodied-design-reward`: Auto MC-Reward's design -> critique -> train -> analyse loop, Eureka-style.

    embodied-design-reward task=CollectWood                       # the local model (llm=local), started on demand
    embodied-design-reward task=EatCow llm=endpoint llm.base_url=http://localhost:8000/v1 llm.model=qwen
    embodied-design-reward task=CollectWood llm.mode=replay llm.store=runs/<old>/llm_store   # offline, same artifacts
    embodied-design-reward run_dir=runs/<stopped> resume=true      # continue where the LLM failed

Each iteration k draws `samples` candidate designs (separate requests, each with its own
seed); each goes through the Designer and the Critic (candidate.py) in
`iterations/k/candidates/j/` (reward.py, critique.json), every accepted one is trained for
the iteration's budget (train/, metrics.json; `train.jobs` at once) and the fittest by the
task's own success (ties: fewer deaths, then fewer steps to success) becomes the
iteration's reward.py; the Trajectory Analyzer's analysis.md of it feeds the next round.
`iterations/k/metrics.json` counts the attempts failing at each stage. `<run>/summary.json`
is rewritten after every iteration: its `status` is running, complete or stopped (with
`stopped_at`: the iteration, role, candidate and error), and `resume=true` continues a
stopped run from its first unfinished iteration, answering the requests already made
from the run's LLM store. `<run>/best` points at the fittest iteration.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Optional

import numpy as np
from omegaconf import DictConfig

from embodied.errors import EmbodiedError

log = logging.getLogger("embodied.design_reward")
METRIC_KEYS = (
    "eval/success_rate",
    "eval/success_ci95_low",
    "eval/success_ci95_high",
    "eval/death_rate",
    "eval/death_rate/lava",
    "eval/steps_to_success_mean",
    "eval/length_mean",
    "eval/episodes",
)
PROBE_STEPS = 30


class DesignStopped(EmbodiedError):
    """The LLM failed mid-iteration; the artifacts so far and summary.json say where, resume=true continues."""


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def record_views(task: str, episodes: int, seed: int) -> list[list[dict[str, Any]]]:
    """`info["mc"]` of every step of random-policy episodes, plus one success probe, for the Critic.

    The probe is the first steps of the first episode ending in the view the task's
    achievement would give (view.goal_view), so the Critic sees a success step even when
    random play reaches none.
    """
    import embodied.envs as envs
    from embodied.envs.minecraft.tasks import get_task
    from embodied.envs.minecraft.view import goal_view

    env = envs.make(f"embodied/Crafter-{task}-v0", obs_mode="symbolic")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(episodes):
        env.reset(seed=seed + i)
        views, done = [], False
        while not done:
            _, _, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
            views.append(info["mc"])
            done = terminated or truncated
        out.append(views)
    env.close()
    achievement = get_task(task).achievement
    lead = [v for v in out[0] if not v["done"]][: PROBE_STEPS - 1]
    if achievement is not None and lead:
        out.append([*lead, goal_view(lead[-1], achievement)])
    return out


def without_header(source: str) -> str:
    """`source` without its leading comment block (who wrote it, and why: not for the Designer to copy)."""
    lines = source.splitlines()
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines) + "\n"


def prompt_options(cfg: Any, episodes: list) -> Any:
    """The Designer's prompt additions: a real view, and the hand-written reward of another task."""
    from embodied.agents.auto_mc_reward.prompts import PromptOptions
    from embodied.envs.minecraft.rewards import HANDWRITTEN, handwritten_path

    view = episodes[0][min(20, len(episodes[0]) - 1)] if cfg.prompt.example_view else None
    other = next(t for t in HANDWRITTEN if t != cfg.task)
    worked = (other, without_header(handwritten_path(other).read_text())) if cfg.prompt.worked_example else None
    return PromptOptions(example_view=view, worked_example=worked)


def train(cfg: Any, reward_path: Path, out: Path) -> tuple[Optional[dict[str, Any]], str]:
    """One embodied-train run with the designed reward; (its summary, error line)."""
    experiment = cfg.train.experiment or f"ppo_crafter_{snake(cfg.task)}"
    argv = [
        sys.executable,
        "-m",
        "embodied.train",
        f"experiment={experiment}",
        "reward=designed",
        f"reward.path={reward_path}",
        f"reward.scale_constraint={cfg.scale_constraint}",
        f"reward.timeout_s={cfg.timeout_s}",
        f"reward.memory_mb={cfg.memory_mb}",
        f"reward.isolation={cfg.isolation}",
        f"total_steps={cfg.train.total_steps}",
        f"seed={cfg.train.seed}",
        f"run_dir={out}",
        *cfg.train.overrides,
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if cfg.train.jobs > 1:
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        return None, errors[-1] if errors else (proc.stderr.strip().splitlines() or ["training failed"])[-1]
    return json.loads((out / "summary.json").read_text()), ""


def candidate_metrics(j: int, critique: dict[str, Any], summary: Optional[dict], error: str) -> dict[str, Any]:
    """metrics.json of one candidate: how far it got, and the task's own measures (no wall times)."""
    attempts = critique["attempts"]
    out: dict[str, Any] = {"candidate": j, "attempts": len(attempts)}
    if not critique["accepted"]:
        last = attempts[-1]["failed_stage"] if attempts else None
        out.update(status="design_failed", failed_stage=last)
        out["error"] = f"no attempt passed the Critic in {len(attempts)} tries; the last failed at the {last} stage"
        return out
    out["review"] = attempts[-1].get("review_outcome")
    if summary is None:
        out.update(status="train_failed", failed_stage="training", error=error)
        return out
    m = summary["metrics"]
    out["status"] = "trained"
    out.update({key.removeprefix("eval/"): m[key] for key in METRIC_KEYS if key in m})
    out["train_steps"] = summary["steps"]
    if "reward_sandbox" in summary:
        out["reward_sandbox"] = summary["reward_sandbox"]
    return out


def fitness(metrics: dict[str, Any]) -> tuple[float, float, float]:
    """Higher is fitter: the task's success, then fewer deaths, then fewer steps to success."""
    steps = metrics.get("steps_to_success_mean")
    return (
        float(metrics.get("success_rate", 0.0)),
        -float(metrics.get("death_rate", 0.0)),
        -float(steps) if steps is not None and np.isfinite(steps) else -np.inf,
    )


def stage_counts(critiques: list[dict[str, Any]]) -> dict[str, int]:
    """Attempts that failed at each stage, and those accepted, over an iteration's candidates."""
    from embodied.agents.auto_mc_reward.candidate import STAGES

    counts = {stage: 0 for stage in (*STAGES, "accepted")}
    for critique in critiques:
        for attempt in critique["attempts"]:
            counts[attempt["failed_stage"] or "accepted"] += 1
    return counts


def iteration(ctx: dict[str, Any], k: int, analysis: str) -> tuple[dict[str, Any], str]:
    """Iteration k: K candidates designed, the accepted ones trained, the fittest analysed; (metrics, next analysis)."""
    from embodied.agents.auto_mc_reward import analyzer, candidate, critic, prompts
    from embodied.agents.auto_mc_reward.candidate import request_seed
    from embodied.run_info import write_json

    cfg, client, task = ctx["cfg"], ctx["client"], ctx["task"]
    it_dir = ctx["run_dir"] / "iterations" / str(k)
    it_dir.mkdir(parents=True)
    designs, critiques = [], []
    for j in range(cfg.samples):
        out = it_dir / "candidates" / str(j)
        code, critique = candidate.design(
            client, cfg, task, k, j, ctx["episodes"], analysis, ctx["options"], ctx["seed"], out
        )
        designs.append(code)
        critiques.append(critique)
    accepted = [j for j, code in enumerate(designs) if code is not None]
    with ThreadPoolExecutor(max(1, min(cfg.train.jobs, len(accepted) or 1))) as pool:
        trained = dict(
            zip(
                accepted,
                pool.map(
                    lambda j: train(
                        cfg, it_dir / "candidates" / str(j) / "reward.py", it_dir / "candidates" / str(j) / "train"
                    ),
                    accepted,
                ),
            )
        )
    candidates = []
    for j, critique in enumerate(critiques):
        summary, error = trained.get(j, (None, ""))
        metrics = candidate_metrics(j, critique, summary, error)
        write_json(it_dir / "candidates" / str(j) / "metrics.json", metrics)
        candidates.append(metrics)
    fit = [m for m in candidates if m["status"] == "trained"]
    metrics: dict[str, Any] = {"iteration": k, "stages": stage_counts(critiques), "candidates": candidates}
    if not fit:
        stages = sorted({m.get("failed_stage") for m in candidates}, key=str)
        metrics.update(status="design_failed" if not accepted else "train_failed", failed_stages=stages)
        shutil.copyfile(it_dir / "candidates" / "0" / "reward.py", it_dir / "reward.py")
        last = critiques[-1]["attempts"][-1] if critiques[-1]["attempts"] else {}
        summary_text = critic.feedback(last.get("errors") or [], last.get("review"), last.get("answer") or "")
        return (
            metrics,
            f"Every candidate of the previous iteration failed (stages: {', '.join(map(str, stages))}). The last problems:\n{summary_text}",
        )
    best = max(fit, key=fitness)
    b = best["candidate"]
    shutil.copyfile(it_dir / "candidates" / str(b) / "reward.py", it_dir / "reward.py")
    metrics.update({key: v for key, v in best.items() if key not in ("candidate", "attempts")})
    metrics.update(status="trained", best_candidate=b)
    stats = analyzer.statistics(it_dir / "candidates" / str(b) / "train")
    code = (it_dir / "reward.py").read_text()
    text = client.chat(
        prompts.analyzer(task, stats, code),
        temperature=0.0,
        seed=request_seed(ctx["seed"], "analyzer", k),
        tag=f"analyzer/{k}",
    )[0]
    (it_dir / "analysis.md").write_text(analyzer.report(stats, text))
    return metrics, f"Statistics of the previous design's training:\n{json.dumps(stats, indent=1)}\n\nAnalysis:\n{text}"


def run_seed(cfg: Any, run_dir: Path, store: Path) -> int:
    """The base of every request seed: llm.seed, else the resumed run's, the replayed store's, or a fresh one."""
    if cfg.llm.seed is not None:
        return int(cfg.llm.seed)
    recorded = run_dir / "summary.json" if cfg.resume else store / "run.json" if cfg.llm.mode == "replay" else None
    if recorded is not None and recorded.is_file():
        seed = json.loads(recorded.read_text()).get("llm", {}).get("seed")
        if seed is not None:
            return int(seed)
    return random.SystemRandom().randrange(2**31)


def resume_state(run_dir: Path) -> tuple[list[dict[str, Any]], str]:
    """(history of finished iterations, the analysis that feeds the next) of a stopped run; moves the unfinished one aside."""
    history, analysis = [], ""
    root = run_dir / "iterations"
    k = 1
    while (root / str(k) / "metrics.json").is_file():
        history.append(json.loads((root / str(k) / "metrics.json").read_text()))
        analysis = (root / str(k) / "next_prompt.md").read_text()
        k += 1
    if (root / str(k)).exists():
        n = 1
        while (root / f"{k}.stopped-{n}").exists():
            n += 1
        (root / str(k)).rename(root / f"{k}.stopped-{n}")
    return history, analysis


def design(cfg_node: DictConfig) -> Path:
    from hydra.core.hydra_config import HydraConfig

    from embodied.agents.auto_mc_reward import critic
    from embodied.agents.auto_mc_reward.candidate import Stopped
    from embodied.cli import to_dataclass
    from embodied.envs.minecraft.tasks import get_task
    from embodied.llm import LLMError
    from embodied.llm.client import ChatClient
    from embodied.llm.server import serving
    from embodied.reward_code import sandbox_record
    from embodied.run_info import write_json

    cfg = to_dataclass(cfg_node)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    # Before any untrusted code: the isolation this machine gives (IsolationError under kernel without seccomp).
    reward_sandbox = sandbox_record(critic.sandbox_isolation(cfg.timeout_s, cfg.memory_mb, cfg.isolation))
    if reward_sandbox["warning"]:
        log.warning(reward_sandbox["warning"])
    # A relative store is this run's own folder when recording, an earlier run's when replaying.
    store = Path(cfg.llm.store)
    if not store.is_absolute():
        store = store.resolve() if cfg.llm.mode == "replay" else run_dir / store
    history, analysis = resume_state(run_dir) if cfg.resume else ([], "")
    seed = run_seed(cfg, run_dir, store)
    if cfg.llm.mode == "record":
        store.mkdir(parents=True, exist_ok=True)
        write_json(store / "run.json", {"llm": {"model": cfg.llm.model, "seed": seed}})
    task = get_task(cfg.task)
    episodes = record_views(cfg.task, cfg.view_episodes, cfg.view_seed)
    ctx = {"cfg": cfg, "task": task, "run_dir": run_dir, "episodes": episodes, "seed": seed}
    ctx["options"] = prompt_options(cfg, episodes)

    def summary(status: str, **extra: Any) -> None:
        trained = [m for m in history if m["status"] == "trained"]
        best = max(trained, key=lambda m: (*fitness(m), -m["iteration"])) if trained else None
        link = run_dir / "best"
        if link.is_symlink():
            link.unlink()
        if best is not None:
            link.symlink_to(Path("iterations") / str(best["iteration"]))
        write_json(
            run_dir / "summary.json",
            {
                "task": cfg.task,
                "status": status,
                **extra,
                "iterations": history,
                "best_iteration": best["iteration"] if best else None,
                "llm": {"model": cfg.llm.model, "mode": cfg.llm.mode, "seed": seed, "samples": cfg.samples},
                "reward_sandbox": reward_sandbox,
            },
        )

    started = time.monotonic()
    with serving(cfg.llm) as server:
        client = ChatClient(cfg.llm, store_dir=store)
        client.check()  # an unreachable endpoint or a bad key stops here, before any training
        ctx["client"] = client
        for k in range(len(history) + 1, cfg.iterations + 1):
            summary("running")
            try:
                metrics, analysis = iteration(ctx, k, analysis)
            except (Stopped, LLMError) as err:
                where = err.where if isinstance(err, Stopped) else {"role": "analyzer", "iteration": k}
                message = str(err)
                why = server.gone() if server is not None else None  # a local server's own last words
                message += f"; {why}" if why else ""
                summary("stopped", stopped_at={**where, "error": message})
                raise DesignStopped(
                    f"iteration {k} stopped at the {where['role']}: {message} (artifacts kept in {run_dir}; continue with resume=true run_dir={run_dir})"
                ) from None
            (run_dir / "iterations" / str(k) / "next_prompt.md").write_text(analysis)
            write_json(run_dir / "iterations" / str(k) / "metrics.json", metrics)
            history.append(metrics)
            log.info(
                "iteration %d: %s", k, {key: v for key, v in metrics.items() if key not in ("candidates", "error")}
            )
    summary("complete")
    write_json(run_dir / "timings.json", {"wall_s": round(time.monotonic() - started, 1), "llm": dict(client.stats)})
    print(run_dir)
    return run_dir


def main() -> Any:
    from embodied.cli import fresh_run_dir_argv, hydra_command
    from embodied.errors import ConfigError

    def argv_hook(argv: list[str]) -> list[str]:
        values = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
        if values.get("resume", "false").lower() != "true":
            return fresh_run_dir_argv(argv, "iterations", "a design run")
        run_dir = values.get("run_dir")
        if not run_dir or not (Path(run_dir) / "summary.json").is_file():
            raise ConfigError(f"resume=true needs run_dir=<a design run with a summary.json>, got {run_dir!r}")
        return [*argv, f"hydra.run.dir={run_dir}"]

    # SIGTERM unwinds like Ctrl-C: the local server's lease is released and summary.json stays "running"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return hydra_command(design, "design_reward", argv_hook=argv_hook)()


if __name__ == "__main__":
    main()
