"""ACT-JEPA through the commands a user runs: collect MT15 demos, train, roll out; bad datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embodied.agents.registry import ACT_SIZES
from helpers import assert_one_line_error, run_cli

TINY_ACT = [
    *ACT_SIZES,
    "agent.probe_steps=5",
    "env.max_episode_steps=30",
    "env.render_size=[64,64]",
    "eval.episodes=2",
    "eval.video_episodes=1",
    "checkpoint.every=1",
    "log_every=1",
]


@pytest.fixture(scope="module")
def mt15_demos(tmp_path_factory) -> Path:
    """One short expert episode per MT15 task (failures kept: 30 steps rarely suffice)."""
    out = tmp_path_factory.mktemp("demos") / "mt15"
    run_cli(
        "embodied.collect",
        "env=embodied/MetaWorld-MT15-v0",
        "episodes=1",
        "max_episode_steps=30",
        "keep_failures=true",
        f"out={out}",
        check=True,
    )
    return out


def test_two_step_run_writes_checkpoint_video_and_probe(mt15_demos: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_cli(
        "embodied.train",
        "experiment=act_jepa_metaworld15",
        f"agent.dataset={mt15_demos}",
        "total_updates=2",
        *TINY_ACT,
        f"run_dir={run_dir}",
        check=True,
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["steps"] == 2 and summary["agent"] == "act_jepa"
    assert (run_dir / "checkpoints" / "last" / "model.safetensors").exists()
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()) == ["00000001", "00000002"]
    assert [Path(v).suffix for v in summary["videos"]] == [".mp4"] and (
        run_dir / summary["videos"][0]
    ).stat().st_size > 0
    metrics = summary["metrics"]
    assert {"probe/rmse", "probe/ate", "eval/success_rate"} <= set(metrics)
    assert any(k.startswith("eval/success_rate/") for k in metrics)  # per task
    rollout = run_cli("embodied.rollout", f"run={run_dir}", "episodes=1", "video=true", check=True)
    assert list(Path(rollout.stdout.strip().splitlines()[-1]).glob("*.mp4"))


@pytest.mark.slow  # ~21 s (collects a second dataset): `make test-all` runs it
def test_dataset_with_other_tasks_is_refused_before_training(tmp_path: Path) -> None:
    demos = tmp_path / "reach"
    run_cli(
        "embodied.collect",
        "env=embodied/MetaWorld-reach-v0",
        "episodes=1",
        "max_episode_steps=10",
        "keep_failures=true",
        f"out={demos}",
        check=True,
    )
    run_dir = tmp_path / "run"
    proc = run_cli(
        "embodied.train",
        "experiment=act_jepa_metaworld15",
        f"agent.dataset={demos}",
        "total_updates=2",
        *TINY_ACT,
        f"run_dir={run_dir}",
    )
    assert_one_line_error(
        proc,
        "holds one task (embodied/MetaWorld-reach-v0)",
        "has 15",
        "embodied-collect env=embodied/MetaWorld-MT15-v0",
    )
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "summary.json").exists()
    proc = run_cli(
        "embodied.train",
        "experiment=act_jepa_metaworld15",
        f"agent.dataset={tmp_path / 'missing'}",
        "total_updates=2",
        *TINY_ACT,
        f"run_dir={tmp_path / 'run2'}",
    )
    assert_one_line_error(proc, "no dataset at", "embodied-collect env=embodied/MetaWorld-MT15-v0 episodes=40")
