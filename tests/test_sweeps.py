"""Sweeps: launchers (joblib, submitit's local executor, a local Ray cluster), threads per job,
and an interrupted sweep that re-launches only its unfinished jobs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from embodied.errors import ConfigError
from embodied.sweep import job_status, job_threads
from helpers import TINY, assert_one_line_error, run_cli

QUICK = [a for a in TINY if not a.startswith(("eval.", "checkpoint.", "logger"))] + [
    "eval.episodes=1",
    "eval.video=false",
    "checkpoint.every=0",
    "logger=[csv]",
]


def summaries(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(sweep.glob("*/summary.json"))}


def multirun_config(target: str, **launcher) -> object:
    from hydra.types import RunMode

    return OmegaConf.create({"mode": RunMode.MULTIRUN, "launcher": {"_target_": target, **launcher}})


# --- units ----------------------------------------------------------------------------
def test_job_threads_share_the_cores_by_launcher() -> None:
    from hydra.types import RunMode

    joblib = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
    assert job_threads(multirun_config(joblib, n_jobs=2), cores=8) == 4
    assert job_threads(multirun_config(joblib, n_jobs=-1), cores=8) == 1  # joblib's -1: one job per core
    assert job_threads(multirun_config(joblib, n_jobs=-3), cores=8) == 1  # 6 jobs on 8 cores
    assert job_threads(multirun_config(joblib, n_jobs=16), cores=8) == 1
    slurm = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert job_threads(multirun_config(slurm, cpus_per_task=6), cores=64) == 6
    assert job_threads(multirun_config(slurm, cpus_per_task=None), cores=64) == 1
    ray = "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"
    assert job_threads(multirun_config(ray, ray={"remote": {"num_cpus": 3}}), cores=64) == 3
    assert job_threads(multirun_config(ray, ray={"remote": {}}), cores=64) == 1
    assert job_threads(multirun_config("hydra._internal.core_plugins.basic_launcher.BasicLauncher"), cores=8) is None
    single = OmegaConf.create({"mode": RunMode.RUN, "launcher": {"_target_": joblib, "n_jobs": 2}})
    assert job_threads(single, cores=8) is None


def test_job_status(tmp_path: Path) -> None:
    job = tmp_path / "0"
    assert job_status(job, ["seed=0"]) == "new"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- seed=0\n- agent.lr=0.1\n")
    assert job_status(job, ["agent.lr=0.1", "seed=0"]) == "unfinished"  # order does not matter
    (job / "summary.json").write_text(json.dumps({"status": "interrupted"}))
    assert job_status(job, ["seed=0", "agent.lr=0.1"]) == "unfinished"
    (job / "summary.json").write_text("{not json")
    assert job_status(job, ["seed=0", "agent.lr=0.1"]) == "unfinished"
    (job / "summary.json").write_text(json.dumps({"status": "complete"}))
    assert job_status(job, ["seed=0", "agent.lr=0.1"]) == "complete"
    with pytest.raises(ConfigError, match="ran seed=0, this sweep gives that job seed=1"):
        job_status(job, ["seed=1", "agent.lr=0.1"])


# --- an interrupted sweep -----------------------------------------------------------
@pytest.mark.slow  # ~23 s: `make test-all` runs it
def test_interrupted_sweep_relaunches_only_unfinished_jobs(tmp_path: Path) -> None:
    """Kill a 3-job sweep (SIGKILL, as a lost node would) while job 1 trains; the same command
    again skips job 0, resumes job 1 from its last checkpoint and starts job 2."""
    sweep = tmp_path / "sweep"
    args = [a for a in QUICK if not a.startswith(("total_steps", "checkpoint."))]
    argv = [
        sys.executable,
        "-m",
        "embodied.train",
        "-m",
        "seed=0,1,2",
        *args,
        "total_steps=400",
        "checkpoint.every=100",
        f"run_dir={sweep}",
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.time() + 240
    try:
        while not (sweep / "1" / "checkpoints" / "last").exists():
            assert proc.poll() is None, "the sweep ended before job 1 wrote a checkpoint"
            assert time.time() < deadline, "job 1 wrote no checkpoint in time"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = summaries(sweep)
    assert set(before) == {"0"} and before["0"]["status"] == "complete"
    finished_at = (sweep / "0" / "summary.json").stat().st_mtime_ns
    assert not (sweep / "2").exists()

    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "3 jobs, 1 already complete (skipped), 1 to resume, 1 new" in again.stderr + again.stdout
    after = summaries(sweep)
    assert set(after) == {"0", "1", "2"} and all(
        s["status"] == "complete" and s["steps"] == 400 for s in after.values()
    )
    assert (sweep / "0" / "summary.json").stat().st_mtime_ns == finished_at  # not re-run
    assert after["1"]["resumed_from_step"] >= 100
    assert after["2"]["resumed_from_step"] is None

    nothing_left = run_cli("embodied.train", *argv[3:], check=True)
    assert "3 already complete (skipped), 0 to resume, 0 new" in nothing_left.stdout + nothing_left.stderr


def test_a_sweep_directory_holding_another_sweep_is_refused(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    (sweep / "0" / ".hydra").mkdir(parents=True)
    (sweep / "0" / ".hydra" / "overrides.yaml").write_text(
        "- seed=0\n- total_steps=150\n"
    )  # what Hydra records per job
    assert_one_line_error(
        run_cli("embodied.train", "-m", "seed=5", "total_steps=150", f"run_dir={sweep}"),
        "holds another sweep",
        "ran seed=0",
        "seed=5",
    )
    assert sorted(p.name for p in sweep.iterdir()) == ["0"]  # nothing launched, nothing written
    assert_one_line_error(
        run_cli("embodied.train", "-m", "seed=0,1", "resume=true", f"run_dir={sweep}"),
        "re-run its command with run_dir",
    )


# --- launchers ----------------------------------------------------------------------
@pytest.mark.slow  # >25 s: `make test-all` runs it
def test_joblib_jobs_share_the_cores_and_match_the_basic_launcher(tmp_path: Path) -> None:
    common = ["-m", "seed=0,1", *QUICK, "total_steps=200"]
    run_cli("embodied.train", *common, f"run_dir={tmp_path / 'basic'}", check=True)
    run_cli(
        "embodied.train",
        *common,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"run_dir={tmp_path / 'joblib'}",
        check=True,
    )
    basic, joblib = summaries(tmp_path / "basic"), summaries(tmp_path / "joblib")
    cores = len(os.sched_getaffinity(0))
    assert {s["torch_threads"] for s in joblib.values()} == {max(1, cores // 2)}
    for job in ("0", "1"):  # the launcher changes where a job runs, not what it computes
        assert joblib[job]["metrics"] == basic[job]["metrics"]


def test_submitit_local_executor_runs_the_sweep(tmp_path: Path) -> None:
    """hydra/launcher=submitit_slurm shares this code path; the local executor stands in for SLURM."""
    sweep = tmp_path / "sweep"
    run_cli(
        "embodied.train",
        "-m",
        "seed=0,1",
        *QUICK,
        "total_steps=150",
        "hydra/launcher=submitit_local",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.timeout_min=5",
        f"run_dir={sweep}",
        check=True,
    )
    done = summaries(sweep)
    assert set(done) == {"0", "1"} and all(s["status"] == "complete" and s["torch_threads"] == 1 for s in done.values())
    assert any((sweep / ".submitit").rglob("*_result.pkl"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # >25 s: `make test-all` runs it
def test_ray_launcher_on_a_local_ray_cluster(tmp_path: Path) -> None:
    """Start a one-node Ray cluster (`ray start --head`), sweep on it through its address, stop it."""
    ray = Path(sys.executable).with_name("ray")
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "PYTHONWARNINGS": "ignore"}
    started = subprocess.run(
        [str(ray), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        sweep = tmp_path / "sweep"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "embodied.train",
                "-m",
                "seed=0,1",
                *QUICK,
                "total_steps=150",
                "hydra/launcher=ray_cluster",
                f"hydra.launcher.ray.init.address=127.0.0.1:{port}",
                f"run_dir={sweep}",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        done = summaries(sweep)
        assert set(done) == {"0", "1"} and all(
            s["status"] == "complete" and s["torch_threads"] == 1 for s in done.values()
        )
        assert "Started a local Ray instance" not in proc.stderr  # it joined the test's cluster
    finally:
        subprocess.run([str(ray), "stop", "--force"], capture_output=True, env=env, timeout=120)


@pytest.mark.slow
def test_job_directories_named_by_overrides_are_kept_across_relaunches(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "seed=0,1",
        *QUICK,
        "total_steps=100",
        "eval.episodes=0",
        "hydra.sweep.subdir=seed_${seed}",
        f"run_dir={sweep}",
    ]
    run_cli("embodied.train", *args, check=True)
    assert set(summaries(sweep)) == {"seed_0", "seed_1"}
    (sweep / "seed_1" / "summary.json").unlink()  # as if job 1 died after its last checkpoint
    again = run_cli("embodied.train", *args, check=True)
    assert "2 jobs, 1 already complete (skipped), 1 to resume, 0 new" in again.stdout + again.stderr
    done = summaries(sweep)
    assert set(done) == {"seed_0", "seed_1"} and not (sweep / "0").exists()
    assert done["seed_1"]["resumed_from_step"] == 100 and done["seed_1"]["status"] == "complete"
