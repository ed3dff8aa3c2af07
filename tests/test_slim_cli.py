"""`slim` through embodied-train: a tiny run writes checkpoints, metrics, the skill video grid,
the skills plot and the planner's figures; resume continues it; the baselines run; bad
overrides get one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from embodied.agents import registry
from helpers import assert_one_line_error, run_cli

TINY_SLIM = [
    *registry.TINY_SLIM,
    "env.render_size=[64,64]",
    "eval.episodes=1",
    "eval.video_episodes=1",
    "agent.report_skills=4",
    "agent.video_grid=4",
    "agent.planner_data_episodes=3",
    "agent.planner_episodes=2",
    "agent.planner_candidates=16",
    "checkpoint.every=32",
    "log_every=16",
    "logger=[csv]",
]


def test_tiny_slim_run_writes_everything_and_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_cli(
        "embodied.train", "experiment=slim_tabletop", "total_steps=64", *TINY_SLIM, f"run_dir={run_dir}", check=True
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["agent"] == "slim" and summary["steps"] == 64
    metrics = summary["metrics"]
    for key in (
        "skills/coverage_bins",
        "skills/contact_rate",
        "skills/safety_violation_rate",
        "planner/success_rate",
        "search_planner/success_rate",
        "eval/mean/contact",
    ):
        assert key in metrics, key
    assert 0 <= metrics["skills/contact_rate"] <= 1 and metrics["skills/coverage_bins"] >= 1
    assert (run_dir / "videos" / "skills_grid.mp4").stat().st_size > 0 and (run_dir / "skills.png").stat().st_size > 0
    with (run_dir / "metrics.csv").open() as f:
        header = next(csv.reader(f))
    assert {
        "charts/reward_discovery",
        "charts/reward_reach",
        "charts/reward_safety",
        "losses/value",
        "losses/skill_model",
    } <= set(header)
    assert (run_dir / "checkpoints" / "00000032").is_dir() and (run_dir / "checkpoints" / "00000064").is_dir()
    run_cli("embodied.train", "total_steps=96", f"run_dir={run_dir}", "resume=true", check=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 96 and summary["resumed_from_step"] == 64
    rollout = run_cli(
        "embodied.rollout", f"run={run_dir}", "episodes=1", "video=true", check=True
    )  # a new skill per episode
    assert list(Path(rollout.stdout.strip().splitlines()[-1]).glob("*.mp4"))


def test_baselines_run(tmp_path: Path) -> None:
    quick = [
        *TINY_SLIM,
        "agent.report_skills=2",
        "agent.video_grid=0",
        "agent.planner_episodes=0",
        "eval.episodes=0",
        "total_steps=32",
    ]
    run_cli("embodied.train", "experiment=slim_sum_tabletop", *quick, f"run_dir={tmp_path / 'sum'}", check=True)
    run_cli(
        "embodied.train",
        "experiment=diayn_tabletop",
        "agent.skill_type=discrete",
        "agent.skill_dim=4",
        *quick,
        f"run_dir={tmp_path / 'diayn'}",
        check=True,
    )
    header = (tmp_path / "diayn" / "metrics.csv").read_text().splitlines()[0]
    assert (
        "charts/reward_discovery" in header and "charts/reward_reach" not in header
    )  # pure skill discovery: no reach reward
    assert json.loads((tmp_path / "diayn" / "summary.json").read_text())["metrics"]["skills/coverage_bins"] >= 1


def test_bad_overrides_get_one_line(tmp_path: Path) -> None:
    proc = run_cli(
        "embodied.train",
        "experiment=slim_tabletop",
        "agent.critics=both",
        "total_steps=8",
        *TINY_SLIM,
        f"run_dir={tmp_path / 'a'}",
    )
    assert_one_line_error(proc, "agent.critics must be multi or single")
    proc = run_cli(
        "embodied.train",
        "experiment=slim_tabletop",
        "agent.weights.speed=1",
        "total_steps=8",
        *TINY_SLIM,
        f"run_dir={tmp_path / 'b'}",
    )
    assert proc.returncode == 2 and "speed" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli(
        "embodied.train",
        "experiment=slim_tabletop",
        "env=memory_pick_place",
        "total_steps=8",
        *TINY_SLIM,
        f"run_dir={tmp_path / 'c'}",
    )
    assert_one_line_error(proc, "info['ee_pos']")
    assert not (tmp_path / "c" / "summary.json").exists()
