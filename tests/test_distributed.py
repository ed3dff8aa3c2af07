"""Multi-process (torchrun, gloo on CPU) training of the imitation policies equals one process on the same global batch.

Every rank draws the same global batch indices and keeps its slice; ptp's diffusion noise and
timesteps and ACT's CVAE noise are drawn for the global batch and sliced; masked means divide by
the global count. What is still drawn per rank is switched off here: dropout (agent.dropout=0,
agent.attn_dropout=0) and random crops (state observations only, no cameras).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from embodied import distributed
from embodied.errors import ConfigError
from embodied.metrics import read_metrics
from helpers import run_cli

STEPS = 4
COMMON = [
    "experiment=ptp_memory",
    "agent.batch_size=8",
    "eval.episodes=0",
    "log_every=1",
    "torch_threads=1",
    "logger=[csv]",
]
TINY_ACT = [
    "agent=act_jepa",
    "agent.dim=32",
    "agent.heads=4",
    "agent.ffn=64",
    "agent.encoder_layers=1",
    "agent.predictor_dim=16",
    "agent.predictor_heads=2",
    "agent.predictor_ffn=32",
    "agent.predictor_layers=1",
    "agent.chunk=8",
    "agent.dropout=0",
    "agent.cvae=true",
    "agent.latent_dim=4",
    "agent.cvae_layers=1",
]
TINY_PTP = [
    "agent.dim=32",
    "agent.heads=4",
    "agent.layers=1",
    "agent.embed_dim=32",
    "agent.n_obs_steps=4",
    "agent.horizon=10",
    "agent.n_action_steps=4",
    "agent.attn_dropout=0",
    "agent.val_every=2",
    "agent.val_batches=1",
]


def torchrun(*args: str, cwd: Path, nproc: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc-per-node=N -m embodied.train args` (a free local port, no network)."""
    tmp = cwd / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "embodied.train",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def check(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


def losses(run_dir: Path) -> dict[str, np.ndarray]:
    """losses/* columns of metrics.csv (validation ones too, NaN where not logged), one row per logged step."""
    rows = [r for r in read_metrics(run_dir / "metrics.csv") if any(k.startswith("losses/") for k in r)]
    keys = sorted({k for r in rows for k in r if k.startswith("losses/")})
    return {k: np.array([r.get(k, np.nan) for r in rows]) for k in keys} | {"step": np.array([r["step"] for r in rows])}


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoints" / "last" / "model.safetensors"))


def without_key_biases(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights with attention key biases zeroed: softmax ignores them, so their gradient is
    zero in exact arithmetic and AdamW turns its float noise into steps of up to the learning rate."""
    out = {}
    for key, value in tensors.items():
        value = value.float().clone()
        if key.endswith("in_proj_bias"):
            value[len(value) // 3 : 2 * len(value) // 3] = 0
        out[key] = value
    return out


def assert_same_training(one: Path, two: Path) -> float:
    """Same per-step losses (rtol 1e-4) and final weights (atol 1e-5, key biases aside); returns the largest weight difference."""
    a, b = losses(one), losses(two)
    assert a.keys() == b.keys() and list(a["step"]) == list(range(1, STEPS + 1)) == list(b["step"])
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-4, err_msg=key)
    wa, wb = without_key_biases(weights(one)), without_key_biases(weights(two))
    assert wa.keys() == wb.keys()
    worst = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert worst < 1e-5, f"final weights differ by up to {worst}"
    loss_rel = max(float(np.nanmax(np.abs(b[k] - a[k]) / np.abs(a[k]))) for k in a if k != "step")
    print(f"{two.name}: max relative loss difference {loss_rel:.1e}, max weight difference {worst:.1e}")
    return worst


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demos") / "memory"
    run_cli("embodied.collect", "env=embodied/MemoryPickPlace-v0", "episodes=2", f"out={out}", check=True)
    return out


@pytest.mark.slow  # ~33 s: `make test-all` runs it
def test_act_jepa_two_processes_train_like_one_and_resume(demos: Path, tmp_path: Path) -> None:
    """ACT-JEPA with the CVAE (its noise drawn for the global batch): 1 process vs 2 gloo processes, then
    a 2-process resume from the step-2 checkpoint of the 2-process run reaches the same final weights."""
    args = [*COMMON, *TINY_ACT, f"agent.dataset={demos}", f"total_updates={STEPS}", "checkpoint.every=2"]
    one, two = tmp_path / "one", tmp_path / "two"
    run_cli("embodied.train", *args, f"run_dir={one}", check=True)
    proc = check(torchrun(*args, f"run_dir={two}", cwd=tmp_path))
    assert (
        proc.stdout.strip().splitlines()[-1] == str(two) and proc.stdout.count(str(two)) == 1
    )  # rank 0 prints the run dir
    assert_same_training(one, two)
    # rank 0 alone wrote: one row per step, no stray output of rank 1 (its Hydra folder is gone, no runs/ here)
    assert [r["step"] for r in read_metrics(two / "metrics.csv")] == [1.0, 2.0, 3.0, 4.0]
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == ["00000002", "00000004", "last"]
    assert json.loads((two / "summary.json").read_text())["processes"] == 2
    assert not (tmp_path / "runs").exists() and not list((tmp_path / "tmp").glob(f"{distributed.WORKER_DIR_PREFIX}*"))

    # resume under torchrun: every rank loads the step-2 checkpoint
    resumed = tmp_path / "resumed"
    shutil.copytree(two, resumed, symlinks=True)
    shutil.rmtree(resumed / "checkpoints" / "00000004")
    (resumed / "checkpoints" / "last").unlink()
    (resumed / "checkpoints" / "last").symlink_to("00000002")
    check(torchrun(*args, f"run_dir={resumed}", "resume=true", cwd=tmp_path))
    after_resume = weights(resumed)
    for key, value in weights(two).items():
        assert torch.equal(after_resume[key], value), key  # resume is exact


@pytest.mark.slow  # >25 s: `make test-all` runs it
def test_ptp_two_processes_train_like_one(demos: Path, tmp_path: Path) -> None:
    """The diffusion policy (noise and timesteps drawn for the global batch, masked loss over the global count)."""
    args = [*COMMON, *TINY_PTP, f"agent.dataset={demos}", f"total_updates={STEPS}"]
    one, two = tmp_path / "one", tmp_path / "two"
    run_cli("embodied.train", *args, f"run_dir={one}", check=True)
    check(torchrun(*args, f"run_dir={two}", cwd=tmp_path))
    assert_same_training(one, two)
    val = [r for r in read_metrics(two / "metrics.csv") if "losses/val_loss" in r]
    assert [r["step"] for r in val] == [2.0, 4.0]


def test_rl_agent_is_refused_under_torchrun(tmp_path: Path) -> None:
    proc = torchrun("total_steps=10", "torch_threads=1", f"run_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode != 0
    assert "error: agent 'sac' does not support multi-process training; run it without torchrun" in proc.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()


# --- the helpers, in one process and with torchrun's variables faked ----------------------
def test_helpers_do_nothing_in_one_process(monkeypatch) -> None:
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)
    assert distributed.local_rows(8) == slice(0, 8)
    assert distributed.mean_metrics({"losses/loss": 1.5}) == {"losses/loss": 1.5}
    assert distributed.any_rank(True) and not distributed.any_rank(False)
    assert distributed.broadcast_object("x") == "x" and distributed.worker_argv(["a=1"]) == ["a=1"]
    assert distributed.setup(torch.device("cpu")) == torch.device("cpu")
    distributed.require_single_process("sac")


def test_ranks_split_the_global_batch_and_refuse_an_uneven_one(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    assert distributed.local_rows(8) == slice(4, 6) and not distributed.is_main()
    with pytest.raises(
        ConfigError,
        match=r"agent.batch_size \(10\) is the global batch and must be divisible by the number of processes \(4\)",
    ):
        distributed.local_rows(10)
    with pytest.raises(
        ConfigError, match="agent 'ppo' does not support multi-process training; run it without torchrun"
    ):
        distributed.require_single_process("ppo")


def test_ranks_above_zero_write_hydra_output_to_a_throwaway_folder(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    argv = distributed.worker_argv(["seed=1", "run_dir=/x/run", "hydra.run.dir=/x/run"])
    scratch = next(tmp_path.glob(f"{distributed.WORKER_DIR_PREFIX}1-*"))
    assert argv == [
        "seed=1",
        "run_dir=/x/run",
        f"hydra.run.dir={scratch}",
        f"hydra.sweep.dir={scratch}",
        "hydra.output_subdir=null",
        "hydra.job_logging.root.level=WARNING",
    ]
    monkeypatch.setenv("RANK", "0")
    assert distributed.worker_argv(["hydra.run.dir=/x/run"]) == ["hydra.run.dir=/x/run"]


@pytest.mark.slow
def test_compiled_training_step_keeps_checkpoint_names(demos: Path, tmp_path: Path) -> None:
    """agent.compile=true: the compiled step trains like the eager one, and its checkpoint loads into an uncompiled agent."""
    from embodied.agents.ptp.agent import PTPAgent
    from embodied.agents.ptp.config import PTPConfig
    from embodied.envs.factory import EnvFactory
    from embodied.envs.manipulation.configs import MemoryPickPlaceConfig

    class Hooks:
        def on_step(self, step: int, metrics=None) -> bool:
            return True

        def log(self, step: int, metrics: dict) -> None:
            pass

    sizes = dict(
        dim=32,
        heads=4,
        layers=1,
        embed_dim=32,
        n_obs_steps=4,
        horizon=10,
        n_action_steps=4,
        batch_size=8,
        attn_dropout=0.0,
        val_every=0,
    )
    factory = EnvFactory(MemoryPickPlaceConfig())
    env = factory.make()
    agents = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        agent = PTPAgent(
            PTPConfig(dataset=str(demos), compile=compiled, **sizes),
            env.observation_space,
            env.action_space,
            torch.device("cpu"),
            0,
        )
        agent.learn(factory, 2, Hooks())
        agent.save(tmp_path)
        agents[compiled] = (agent.metrics["losses/loss"], load_file(str(tmp_path / "model.safetensors")))
    assert agents[True][1].keys() == agents[False][1].keys() and not any("_orig_mod" in k for k in agents[True][1])
    assert agents[True][0] == pytest.approx(agents[False][0], rel=1e-4)
    fresh = PTPAgent(
        PTPConfig(dataset=str(demos), **sizes), env.observation_space, env.action_space, torch.device("cpu"), 0
    )
    fresh.load(tmp_path)
