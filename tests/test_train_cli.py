"""Smoke tests of embodied-train: the run directory it leaves, determinism, resume, signals."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio

from embodied.checkpoint import verify_checkpoint
from embodied.metrics import read_metrics
from helpers import TINY, assert_one_line_error, run_cli


def test_run_directory_layout(tiny_run: Path) -> None:
    assert (tiny_run / ".hydra" / "config.yaml").read_text().count("${") == 0, "config must be resolved"
    rows = read_metrics(tiny_run / "metrics.csv")
    assert [r["step"] for r in rows if "charts/SPS" in r][:3] == [100, 200, 300]
    assert all(r["charts/SPS"] > 0 for r in rows if "charts/SPS" in r)
    assert any("losses/critic_loss" in r for r in rows)
    assert any(name.startswith("events.out.tfevents") for name in os.listdir(tiny_run / "tb"))
    last = (tiny_run / "checkpoints" / "last").resolve()
    assert last.name == "00000300"
    state = verify_checkpoint(last, "sac")
    assert state["step"] == 300
    assert {
        "model.safetensors",
        "config.json",
        "algo_state.safetensors",
        "replay_buffer.safetensors",
        "rng.safetensors",
    } <= set(state["files"])
    assert not list((tiny_run / "checkpoints").glob(".tmp-*"))
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["steps"] == 300 and summary["seed"] == 0
    assert summary["versions"]["torch"] and summary["device"] == "cpu"
    assert 0.0 <= summary["metrics"]["eval/success_rate"] <= 1.0
    videos = sorted((tiny_run / "videos").glob("*.mp4"))
    assert len(videos) == 1 and summary["videos"] == [f"videos/{videos[0].name}"]
    frames = iio.imread(videos[0])
    assert frames.shape == (51, 64, 64, 3)  # reset frame + 50 steps
    assert frames.std() > 1.0, "video frames should not be blank"


def _train_metrics(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as f:
        return [{k: v for k, v in row.items() if k not in ("wall_time", "charts/SPS")} for row in csv.DictReader(f)]


def test_default_run_dir_is_dated_and_named(tmp_path: Path) -> None:
    proc = run_cli("embodied.train", *TINY, "total_steps=100", "eval.episodes=0", cwd=tmp_path, check=True)
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    if not run_dir.is_absolute():
        run_dir = tmp_path / run_dir
    assert run_dir.parent.parent == tmp_path / "runs" and run_dir.name.endswith("_sac_metaworld_reach")
    assert (run_dir / "summary.json").exists() and (run_dir / "checkpoints" / "last").exists()


def test_same_seed_same_metrics(tmp_path: Path, tiny_run: Path) -> None:
    again = tmp_path / "again"
    run_cli("embodied.train", *TINY, f"run_dir={again}", check=True)
    assert _train_metrics(again) == _train_metrics(tiny_run)


def test_resume_continues_from_last(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    short = [a for a in TINY if not a.startswith("total_steps")] + ["total_steps=200", "eval.episodes=0"]
    run_cli("embodied.train", *short, f"run_dir={run_dir}", check=True)
    saved = (run_dir / ".hydra" / "overrides.yaml").read_text()
    proc = run_cli("embodied.train", f"run_dir={run_dir}", "resume=true", "total_steps=300", check=True)
    assert proc.stdout.strip().splitlines()[-1] == str(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from_step"] == 200 and summary["steps"] == 300
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.csv") if "charts/SPS" in r]
    assert steps[:2] == [100, 200] and steps[-1] == 300, steps
    assert "agent.net_arch=[32,32]" in saved  # the original overrides were replayed
    assert verify_checkpoint(run_dir / "checkpoints" / "last")["step"] == 300


def test_sigterm_writes_final_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [a for a in TINY if not a.startswith(("total_steps", "checkpoint.every"))]
    cmd = [
        sys.executable,
        "-m",
        "embodied.train",
        *args,
        "total_steps=100000",
        "checkpoint.every=0",
        f"run_dir={run_dir}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "metrics.csv").exists():
        time.sleep(0.5)
    assert (run_dir / "metrics.csv").exists(), "training never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["steps"] < 100000
    assert verify_checkpoint(run_dir / "checkpoints" / "last", "sac")["step"] == summary["steps"]


def test_misspelt_key_fails_before_writing(tmp_path: Path) -> None:
    run_dir = tmp_path / "never"
    proc = run_cli("embodied.train", "agent.learning_rat=0.1", f"run_dir={run_dir}")
    assert_one_line_error(proc, "agent.learning_rat", "agent.learning_rate", "allowed keys")
    assert not run_dir.exists()


def test_unknown_group_option_lists_choices(tmp_path: Path) -> None:
    proc = run_cli("embodied.train", "agent=sacc", f"run_dir={tmp_path / 'x'}")
    assert_one_line_error(proc, "unknown agent 'sacc'", "choose one of: ", "ppo, ptp, sac, slim")
    proc = run_cli("embodied.train", "experiment=nope", f"run_dir={tmp_path / 'x'}")
    assert_one_line_error(proc, "unknown experiment 'nope'", "sac_metaworld_reach")


def test_bad_values_fail_with_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("embodied.train", "device=gpu"), "device", "auto, cpu, cuda")
    assert_one_line_error(
        run_cli("embodied.train", "env.task=reech", "total_steps=10", f"run_dir={tmp_path / 'r'}"), "reach"
    )


def test_the_budget_key_of_the_other_unit_is_refused_naming_the_right_one(tmp_path: Path) -> None:
    proc = run_cli("embodied.train", "experiment=sac_metaworld_reach", "total_updates=5", f"run_dir={tmp_path / 'a'}")
    assert_one_line_error(proc, "agent sac counts env steps", "set total_steps=N instead of total_updates=5")
    proc = run_cli(
        "embodied.train", "experiment=ptp_memory", "agent.dataset=/none", "total_steps=5", f"run_dir={tmp_path / 'b'}"
    )
    assert_one_line_error(proc, "agent ptp counts gradient updates", "set total_updates=N instead of total_steps=5")
    assert not (tmp_path / "a" / "checkpoints").exists() and not (tmp_path / "b" / "checkpoints").exists()


def test_existing_run_is_not_overwritten(tiny_run: Path) -> None:
    before = (tiny_run / ".hydra" / "config.yaml").read_text()
    proc = run_cli("embodied.train", f"run_dir={tiny_run}")
    assert_one_line_error(proc, "already holds a run", "resume=true")
    assert (tiny_run / ".hydra" / "config.yaml").read_text() == before


def test_resume_needs_a_checkpoint(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("embodied.train", f"run_dir={tmp_path / 'none'}", "resume=true"), "does not exist")
    assert_one_line_error(run_cli("embodied.train", "resume=true"), "run_dir")


def test_unwritable_video_dir_fails_early(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "videos").write_text("a file where the video folder should be")
    proc = run_cli("embodied.train", *TINY, f"run_dir={run_dir}")
    assert_one_line_error(proc, "videos")
    assert not (run_dir / "checkpoints").exists()
    shutil.rmtree(run_dir)


def test_sigkill_between_checkpoints_then_resume_leaves_one_row_per_step(tmp_path: Path) -> None:
    """A run killed after logging past its last checkpoint: the resumed run's metrics.csv has each step once."""
    run_dir = tmp_path / "run"
    args = [
        a for a in TINY if not a.startswith(("total_steps", "checkpoint.every", "log_every", "agent.learning_starts"))
    ]
    cmd = [
        sys.executable,
        "-m",
        "embodied.train",
        *args,
        "total_steps=100000",
        "checkpoint.every=100",
        "log_every=50",
        "agent.learning_starts=50",
        "eval.episodes=0",
        f"run_dir={run_dir}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        last = run_dir / "checkpoints" / "last"
        try:
            logged = [r["step"] for r in read_metrics(run_dir / "metrics.csv")]
        except (OSError, ValueError, KeyError):  # not written yet, or a row half-written
            logged = []
        if last.exists() and logged and logged[-1] >= verify_checkpoint(last)["step"] + 50:
            proc.send_signal(signal.SIGKILL)
            killed_at = int(logged[-1])
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert killed_at is not None, "never caught the run between two checkpoints"
    checkpoint = verify_checkpoint(run_dir / "checkpoints" / "last")["step"]
    assert checkpoint < killed_at  # the dead run logged rows after its last checkpoint
    run_cli("embodied.train", f"run_dir={run_dir}", "resume=true", f"total_steps={killed_at + 50}", check=True)
    steps = [int(r["step"]) for r in read_metrics(run_dir / "metrics.csv")]
    assert steps == sorted(set(steps)) and steps[-1] == killed_at + 50, steps
    discarded = [int(r["step"]) for r in read_metrics(run_dir / "metrics.discarded.csv")]
    assert discarded and min(discarded) > checkpoint
