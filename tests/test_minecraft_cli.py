"""Every Crafter experiment trains for a few steps and evaluates with Minecraft metrics and video."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import pytest

from embodied.metrics import read_metrics
from helpers import assert_one_line_error, run_cli

TINY_PPO = [
    "total_steps=256",
    "env.num_envs=2",
    "agent.n_steps=64",
    "agent.batch_size=64",
    "agent.n_epochs=1",
    "agent.net_arch=[32]",
    "env.max_episode_steps=60",
    "env.render_size=[64,64]",
    "eval.episodes=2",
    "eval.video_episodes=1",
    "log_every=128",
    "checkpoint.every=128",
]


@pytest.mark.parametrize(
    "experiment",
    ["ppo_crafter_collect_wood", "ppo_crafter_eat_cow", "ppo_crafter_diamond_lava", "ppo_crafter_survival"],
)
def test_crafter_experiment_trains_and_reports_minecraft_metrics(tmp_path: Path, experiment: str) -> None:
    run_dir = tmp_path / "run"
    run_cli("embodied.train", f"experiment={experiment}", *TINY_PPO, f"run_dir={run_dir}", check=True)
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = summary["metrics"]
    for key in (
        "eval/success_rate",
        "eval/death_rate",
        "eval/death_rate/lava",
        "eval/death_rate/zombie",
        "eval/crafter_score",
        "eval/achievement/collect_wood",
    ):
        assert key in metrics, key
    assert 0.0 <= metrics["eval/death_rate/lava"] <= metrics["eval/death_rate"] <= 1.0
    causes = [e["death_cause"] for e in summary["eval_episodes"]]
    assert metrics["eval/death_rate"] == sum(c is not None for c in causes) / len(causes)
    assert all(len(e["achievements"]) == 22 for e in summary["eval_episodes"])
    rows = read_metrics(run_dir / "metrics.csv")
    assert any("charts/death_rate" in r for r in rows), "training episodes must log death rates"
    video = next((run_dir / "videos").glob("*.mp4"))
    frames = iio.imread(video)
    assert frames.shape[1:] == (64, 64, 3) and frames.std() > 1.0


def test_crafter_rgb_trains_a_cnn_on_worker_processes(tmp_path: Path) -> None:
    run_dir = tmp_path / "rgb"
    run_cli(
        "embodied.train",
        "experiment=ppo_crafter_eat_cow",
        *TINY_PPO,
        "env.obs_mode=rgb",
        "env.vectorization=async",
        "env.workers=2",
        "eval.episodes=1",
        f"run_dir={run_dir}",
        check=True,
    )
    assert "features_extractor.extractors.rgb.cnn.0.weight" in _weight_names(
        run_dir / "checkpoints" / "last" / "model.safetensors"
    )
    config = json.loads((run_dir / "checkpoints" / "last" / "config.json").read_text())
    assert config["agent"] == "ppo"
    proc = run_cli("embodied.rollout", f"run={run_dir}", "episodes=2", "video=false", check=True)
    folder = Path(proc.stdout.strip().splitlines()[-1])
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["episodes"] == 2 and "death_rate/lava" in metrics and "crafter_score" in metrics


def _weight_names(path: Path) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return set(f.keys())


def test_bad_crafter_task_is_one_line(tmp_path: Path) -> None:
    proc = run_cli(
        "embodied.train", "experiment=ppo_crafter_eat_cow", "env.task=MineDiamonds", f"run_dir={tmp_path / 'bad'}"
    )
    assert_one_line_error(proc, "MineDiamonds", "CollectWood, EatCow, DiamondLava, Survival")
    assert not (tmp_path / "bad" / "checkpoints").exists()


def test_throughput_benchmark_runs(tmp_path: Path) -> None:
    """The benchmark's code path (numbers come from the full run, not from here)."""
    import subprocess
    import sys

    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/minecraft_throughput.py",
            "--workers",
            "1",
            "--seconds",
            "0.5",
            "--variants",
            "raw+numba,ours symbolic",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent.parent,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| ours symbolic |" in proc.stdout and proc.stdout.strip().splitlines()[-1].startswith(
        "command: python benchmarks/minecraft_throughput.py"
    )
    results = json.loads(out.read_text())["results"]
    assert results["ours symbolic"]["steps_per_s"] > 0 and results["raw+numba"]["steps_per_s"] > 0
