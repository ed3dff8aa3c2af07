"""`embodied-design-reward`: Auto MC-Reward's design -> critique -> train -> analyse loop.

    embodied-design-reward task=CollectWood iterations=3 llm.base_url=http://localhost:8000/v1 llm.model=qwen llm.api_key_env=''
    embodied-design-reward task=CollectWood llm.mode=replay llm.store=runs/<old>/llm_store   # offline, same artifacts

Each iteration k leaves `<run>/iterations/k/`: reward.py (the accepted design, or the last
attempt), critique.json (every Designer/Critic attempt: static and execution errors with
the offending view, the LLM review), train/ (the embodied-train run with the designed
reward), analysis.md (trajectory statistics + the LLM's causes and suggestions) and
metrics.json (the task's own success rate, measured apart from the designed reward).
`<run>/summary.json` lists every iteration and the isolation the reward sandbox got
(`reward_sandbox`, checked at start-up: under isolation=kernel a kernel that refuses
seccomp stops the run before any design runs); `<run>/best` points at the fittest one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

log = logging.getLogger("embodied.design_reward")


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def record_views(task: str, episodes: int, seed: int) -> list[list[dict[str, Any]]]:
    """`info["mc"]` of every step of random-policy episodes, for the Critic's execution check."""
    import embodied.envs as envs

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
    return out


def design_round(
    client: Any, cfg: Any, task: Any, k: int, episodes: list, analysis: str
) -> tuple[str | None, dict[str, Any]]:
    """Designer and Critic until the Critic accepts or the revisions run out."""
    from embodied.agents.auto_mc_reward import critic, prompts
    from embodied.sandbox.checks import MAX_SOURCE

    messages = prompts.designer(task, failure_stats=analysis)
    attempts: list[dict[str, Any]] = []
    code = None
    for revision in range(cfg.revisions + 1):
        answer = client.chat(messages, tag=f"designer/{k}/{revision}")[0]
        code = critic.extract_code(answer)
        execution: dict[str, Any] = {}
        review = None
        if code is None:
            errors = [
                {
                    "kind": "format",
                    "message": "no ```python block defining reward(view, memory)",
                    "line": None,
                    "view": None,
                }
            ]
        else:
            errors = critic.static_errors(code)
            if not errors:
                execution, errors = critic.execute(
                    code, episodes, cfg.scale_constraint, cfg.timeout_s, cfg.memory_mb, cfg.isolation
                )
            if not errors:
                text = client.chat(prompts.critic(task, code, execution), tag=f"critic/{k}/{revision}")[0]
                review = critic.extract_json(text) or {
                    "verdict": "revise",
                    "problems": ["the review was not a JSON object"],
                    "suggestions": [],
                }
        attempts.append({"revision": revision, "errors": errors, "execution": execution, "review": review})
        if code is not None and not errors and review is not None and review.get("verdict") == "pass":
            return code, {"accepted": True, "attempts": attempts}
        previous = critic.clip(
            code or answer, MAX_SOURCE
        )  # longer code is refused anyway; the error says how long it was
        messages = prompts.designer(task, analysis, critic.feedback(errors, review), previous_code=previous)
    return None, {"accepted": False, "attempts": attempts, "last_code": code}


def train(cfg: Any, reward_path: Path, out: Path) -> tuple[dict[str, Any] | None, str]:
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
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        return None, errors[-1] if errors else (proc.stderr.strip().splitlines() or ["training failed"])[-1]
    return json.loads((out / "summary.json").read_text()), ""


def iteration_metrics(k: int, summary: dict[str, Any] | None, status: str, error: str = "") -> dict[str, Any]:
    """metrics.json: the task's own measures (no wall times, so replays are byte-identical)."""
    out: dict[str, Any] = {"iteration": k, "status": status}
    if summary is not None:
        m = summary["metrics"]
        keys = (
            "eval/success_rate",
            "eval/success_ci95_low",
            "eval/success_ci95_high",
            "eval/death_rate",
            "eval/death_rate/lava",
            "eval/steps_to_success_mean",
            "eval/length_mean",
            "eval/episodes",
        )
        out.update({key.removeprefix("eval/"): m[key] for key in keys if key in m})
        out["train_steps"] = summary["steps"]
        if "reward_sandbox" in summary:
            out["reward_sandbox"] = summary["reward_sandbox"]
    if error:
        out["error"] = error
    return out


def design(cfg_node: DictConfig) -> Path:
    from hydra.core.hydra_config import HydraConfig

    from embodied.agents.auto_mc_reward import analyzer, critic, prompts
    from embodied.cli import to_dataclass
    from embodied.envs.minecraft.tasks import get_task
    from embodied.llm.client import ChatClient
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
    client = ChatClient(cfg.llm, store_dir=store)
    client.check()  # an unreachable endpoint or a bad key stops here, before any training
    task = get_task(cfg.task)
    episodes = record_views(cfg.task, cfg.view_episodes, cfg.view_seed)
    analysis, history = "", []
    for k in range(1, cfg.iterations + 1):
        it_dir = run_dir / "iterations" / str(k)
        it_dir.mkdir(parents=True)
        code, critique = design_round(client, cfg, task, k, episodes, analysis)
        (it_dir / "reward.py").write_text(code or critique.get("last_code") or "# no design was produced\n")
        write_json(it_dir / "critique.json", critique)
        if code is None:
            metrics = iteration_metrics(k, None, "design_failed", "the Critic rejected every revision")
            analysis = (
                "The previous design was rejected by the Critic:\n"
                + json.dumps(critique["attempts"][-1], default=str)[:3000]
            )
        else:
            summary, error = train(cfg, it_dir / "reward.py", it_dir / "train")
            if summary is None:
                metrics = iteration_metrics(k, None, "train_failed", error)
                analysis = f"Training with the previous design failed: {critic.clip(error, critic.MAX_MESSAGE)}"
            else:
                metrics = iteration_metrics(k, summary, "trained")
                stats = analyzer.statistics(it_dir / "train")
                text = client.chat(prompts.analyzer(task, stats, code), tag=f"analyzer/{k}")[0]
                (it_dir / "analysis.md").write_text(analyzer.report(stats, text))
                analysis = (
                    f"Statistics of the previous design's training:\n{json.dumps(stats, indent=1)}\n\nAnalysis:\n{text}"
                )
        write_json(it_dir / "metrics.json", metrics)
        history.append(metrics)
        log.info("iteration %d: %s", k, {key: v for key, v in metrics.items() if key != "error"})
    trained = [m for m in history if m["status"] == "trained"]
    best = max(trained, key=lambda m: (m.get("success_rate", 0.0), -m["iteration"])) if trained else None
    if best is not None:
        (run_dir / "best").symlink_to(Path("iterations") / str(best["iteration"]))
    write_json(
        run_dir / "summary.json",
        {
            "task": cfg.task,
            "iterations": history,
            "best_iteration": best["iteration"] if best else None,
            "llm": {"model": cfg.llm.model, "mode": cfg.llm.mode},
            "reward_sandbox": reward_sandbox,
        },
    )
    print(run_dir)
    return run_dir


def main() -> Any:
    from embodied.cli import fresh_run_dir_argv, hydra_command

    return hydra_command(
        design, "design_reward", argv_hook=lambda argv: fresh_run_dir_argv(argv, "iterations", "a design run")
    )()


if __name__ == "__main__":
    main()
