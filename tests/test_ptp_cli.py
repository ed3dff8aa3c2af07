"""The `ptp` policy through the commands a user runs: collect, the three-stage multistage run,
resume (stage 3 reuses the cache; resuming inside stage 1 is tested in test_ptp.py), rollout with video; a missing dataset names the collect command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embodied.agents.registry import PTP_SIZES
from helpers import assert_one_line_error, run_cli

TINY_PTP = [
    *PTP_SIZES,
    "agent.val_every=2",
    "agent.val_batches=1",
    "env.image_size=[32,32]",
    "env.max_episode_steps=20",
    "env.render_size=[64,64]",
    "eval.episodes=2",
    "eval.video_episodes=1",
    "checkpoint.every=2",
    "log_every=1",
]


@pytest.fixture(scope="module")
def pixel_demos(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demos") / "memory_pixels"
    run_cli(
        "embodied.collect",
        "env=embodied/MemoryPickPlace-v0",
        "episodes=2",
        "obs_mode=state+pixels",
        "image_size=[32,32]",
        f"out={out}",
        check=True,
    )
    return out


def test_multistage_run_resumes_across_stages_and_rolls_out(pixel_demos: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    common = [
        "experiment=ptp_memory_multistage",
        f"agent.dataset={pixel_demos}",
        "agent.stage1_steps=4",
        *TINY_PTP,
        f"run_dir={run_dir}",
    ]
    run_cli("embodied.train", *common, "total_updates=6", check=True)  # stages 1, 2 and 3
    caches = list((pixel_demos / "embeddings").iterdir())
    assert len(caches) == 1 and (caches[0] / "meta.json").exists()
    written = (caches[0] / "embeddings.npy").stat().st_mtime_ns
    run_cli(
        "embodied.train", *common, "total_updates=8", "resume=true", check=True
    )  # stage 3 goes on, the cache is reused
    assert (
        list((pixel_demos / "embeddings").iterdir()) == caches
        and (caches[0] / "embeddings.npy").stat().st_mtime_ns == written
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["steps"] == 8 and summary["agent"] == "ptp"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())[-1] == "00000008"
    assert [Path(v).suffix for v in summary["videos"]] == [".mp4"] and (
        run_dir / summary["videos"][0]
    ).stat().st_size > 0
    assert "eval/success_rate" in summary["metrics"]
    rollout = run_cli("embodied.rollout", f"run={run_dir}", "episodes=1", "video=true", check=True)
    assert list(Path(rollout.stdout.strip().splitlines()[-1]).glob("*.mp4"))


def test_missing_dataset_names_the_collect_command(tmp_path: Path) -> None:
    proc = run_cli(
        "embodied.train",
        "experiment=ptp_memory_multistage",
        f"agent.dataset={tmp_path / 'none'}",
        "agent.stage1_steps=1",
        "total_updates=2",
        *TINY_PTP,
        f"run_dir={tmp_path / 'run'}",
    )
    assert_one_line_error(
        proc,
        "no dataset at",
        "embodied-collect env=embodied/MemoryPickPlace-v0 episodes=40 obs_mode=state+pixels image_size=[32,32]",
    )
    assert not (tmp_path / "run" / "summary.json").exists()
