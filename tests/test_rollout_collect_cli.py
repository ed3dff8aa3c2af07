"""Smoke and bad-input tests of embodied-rollout and embodied-collect."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from embodied.data import DemoDataset
from helpers import assert_one_line_error, run_cli


def test_rollout_writes_metrics_and_videos(tiny_run: Path) -> None:
    proc = run_cli("embodied.rollout", f"run={tiny_run}", "episodes=2", "video=true", check=True)
    out = Path(proc.stdout.strip().splitlines()[-1])
    assert out.parent == tiny_run / "rollouts"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["episodes"] == 2 and metrics["checkpoint_step"] == 300
    assert metrics["success_ci95_low"] <= metrics["success_rate"] <= metrics["success_ci95_high"]
    assert metrics["length_mean"] == 50
    videos = sorted(out.glob("*.mp4"))
    assert len(videos) == 2
    assert iio.imread(videos[0]).shape == (51, 64, 64, 3)


def test_rollout_same_seed_same_returns(tiny_run: Path) -> None:
    a = run_cli("embodied.rollout", f"run={tiny_run}", "episodes=2", "seed=7", check=True)
    b = run_cli("embodied.rollout", f"run={tiny_run}", "episodes=2", "seed=7", check=True)
    ra = json.loads((Path(a.stdout.split()[-1]) / "metrics.json").read_text())["episodes_detail"]
    rb = json.loads((Path(b.stdout.split()[-1]) / "metrics.json").read_text())["episodes_detail"]
    assert [e["episode_return"] for e in ra] == [e["episode_return"] for e in rb]


def test_rollout_bad_inputs(tiny_run: Path, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("embodied.rollout", f"run={tmp_path / 'missing'}"), "does not exist")
    assert_one_line_error(
        run_cli("embodied.rollout", f"run={tiny_run}", "checkpoint=12345"), "no checkpoint at step 12345", "300"
    )
    assert_one_line_error(run_cli("embodied.rollout", f"run={tiny_run}", "episods=2"), "episodes")
    assert_one_line_error(run_cli("embodied.rollout"), "run=")


def _copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest, symlinks=True, ignore=shutil.ignore_patterns("rollouts"))
    return dest


def test_rollout_refuses_truncated_checkpoint(tiny_run: Path, tmp_path: Path) -> None:
    run = _copy_run(tiny_run, tmp_path / "run")
    weights = run / "checkpoints" / "last" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    proc = run_cli("embodied.rollout", f"run={run}", "episodes=1", "video=true")
    assert_one_line_error(proc, "model.safetensors", "hash")
    assert not list(run.glob("rollouts/*/metrics.json"))


def test_rollout_refuses_other_agents_checkpoint(tiny_run: Path, tmp_path: Path) -> None:
    run = _copy_run(tiny_run, tmp_path / "run")
    state_file = run / "checkpoints" / "last" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["agent"] = "ppo"
    state_file.write_text(json.dumps(state))
    assert_one_line_error(run_cli("embodied.rollout", f"run={run}", "episodes=1"), "agent 'ppo'")


def test_rollout_unwritable_output(tiny_run: Path, tmp_path: Path) -> None:
    run = _copy_run(tiny_run, tmp_path / "run")
    (run / "rollouts").write_text("not a folder")
    assert_one_line_error(run_cli("embodied.rollout", f"run={run}", "episodes=1", "video=true"), "rollouts")
    assert (run / "rollouts").read_text() == "not a folder"


def test_collect_writes_dataset(tmp_path: Path) -> None:
    out = tmp_path / "reach"
    run_cli(
        "embodied.collect",
        "env=embodied/MetaWorld-reach-v0",
        "episodes=2",
        f"out={out}",
        "max_episode_steps=60",
        "action_noise=0.05",
        check=True,
    )
    ds = DemoDataset.open(out)
    assert ds.num_episodes == 2 and ds.num_steps == 120 and ds.obs_keys == ["state"]
    assert ds.attrs["success_rate"] == 1.0 and ds.attrs["episode_success"] == [True, True]
    assert ds.attrs["collector"].startswith("scripted-expert")
    actions = ds.array("action")
    assert actions.shape == (120, 4) and np.abs(actions).max() <= 1.0


def test_collect_bad_inputs(tmp_path: Path) -> None:
    assert_one_line_error(
        run_cli("embodied.collect", "env=embodied/MetaWorld-reech-v0", "episodes=1", f"out={tmp_path / 'a'}"), "reach"
    )
    assert_one_line_error(run_cli("embodied.collect", "env=embodied/MetaWorld-reach-v0", "episodes=1"), "out=")
    proc = run_cli(
        "embodied.collect",
        "env=embodied/MetaWorld-reach-v0",
        "episodes=2",
        f"out={tmp_path / 'noisy'}",
        "action_noise=5",
        "max_attempts=2",
        "max_episode_steps=30",
    )
    assert_one_line_error(proc, "nothing written")
    assert not (tmp_path / "noisy").exists() and not list(tmp_path.glob("noisy.tmp*"))


def test_collect_with_workers_writes_the_same_dataset(tmp_path: Path) -> None:
    """Attempts run in two processes, out of order and ahead of need, yet the dataset is the
    one a single process writes: same episodes (first successes per task's seed stream), same order."""
    from embodied.collect import CollectConfig, collect

    common = dict(
        env="embodied/MetaWorld-multitask-v0",
        tasks=["reach", "push"],
        episodes=2,
        max_episode_steps=100,
        action_noise=0.4,  # push fails often (seeds 0, 2, 3, 9 are kept), reach does not
        stop_on_success=True,
        max_attempts=30,
    )
    one = DemoDataset.open(collect(CollectConfig(out=str(tmp_path / "one"), **common)))
    two = DemoDataset.open(collect(CollectConfig(out=str(tmp_path / "two"), workers=2, **common)))
    assert one.attrs["task_attempts"]["push"] > 2, "no attempt failed: the test would prove nothing"
    for key in ("episode_seeds", "episode_tasks", "attempts", "task_attempts", "success_rate"):
        assert one.attrs[key] == two.attrs[key], key
    for key in ("action", "obs/state", "obs/task", "reward"):
        np.testing.assert_array_equal(one.array(key), two.array(key))
