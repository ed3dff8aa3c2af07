"""Hydra's own flags work on our Hydra apps as on any Hydra app, next to our one-line override errors.

Each case runs the real console script (no training: every flag here prints and exits, or fails
before a run starts), so each costs the interpreter and Hydra start-up. The cases marked slow
cover the remaining flags and forms.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import assert_one_line_error

BIN = Path(sys.executable).parent
TRAIN, DESIGN = "embodied-train", "embodied-design-reward"
slow = pytest.mark.slow


def run_script(script: str, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a console script of this venv like a user would (in `cwd`, so nothing lands in the repo)."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [str(BIN / script), *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=full_env, check=False
    )


@pytest.fixture
def extra_config_dir(tmp_path: Path) -> Path:
    """A --config-dir with an experiment only it has."""
    (tmp_path / "extra" / "experiment").mkdir(parents=True)
    (tmp_path / "extra" / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /agent: ppo\ntotal_steps: 77\n"
    )
    return tmp_path / "extra"


CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

# (script, args, fragments stdout must contain)
CASES = [
    (TRAIN, ["--cfg", "job"], ["seed: 0", "total_steps:"]),
    (TRAIN, ["-c", "job", "experiment=ppo_metaworld_reach"], ["seed:", "name: ppo"]),
    (TRAIN, ["-m", "--cfg", "job", "seed=1,2"], ["# job 0: seed=1", "seed: 1", "# job 1: seed=2", "seed: 2"]),
    (TRAIN, ["--info"], ["Config search path", "Defaults Tree"]),
    (TRAIN, ["--shell-completion", "install=bash"], ["hydra_bash_completion", "embodied-train"]),
    (DESIGN, ["--cfg", "job", "task=CollectWood"], ["task: CollectWood", "iterations:"]),
    pytest.param(TRAIN, ["--cfg", "hydra"], ["run:", "sweep:"], marks=slow),
    pytest.param(TRAIN, ["--version"], ["Hydra 1.3"], marks=slow),
    pytest.param(TRAIN, ["--cfg=job", "seed=3"], ["seed: 3"], marks=slow),
    pytest.param(TRAIN, ["seed=3", "--cfg", "job", "total_steps=5"], ["seed: 3", "total_steps: 5"], marks=slow),
    pytest.param(TRAIN, ["--resolve", "--cfg", "job"], ["id: embodied/MetaWorld-reach-v0"], marks=slow),
    pytest.param(
        TRAIN, ["-m", "--resolve", "--cfg", "hydra", "seed=1,2"], ["mode: MULTIRUN", "# job 1: seed=2"], marks=slow
    ),
    pytest.param(
        TRAIN,
        ["-m", "--cfg", "all", "experiment=sac_metaworld_reach,ppo_metaworld_reach"],
        ["# job 1: experiment=ppo_metaworld_reach", "name: ppo", "hydra:"],
        marks=slow,
    ),
    pytest.param(TRAIN, ["--cfg", "job", "--package", "agent"], ["# @package agent", "name: sac"], marks=slow),
    pytest.param(TRAIN, ["--cfg=job", "-p=agent"], ["# @package agent"], marks=slow),
    pytest.param(
        TRAIN, ["--info", "defaults", "seed=3"], ["Defaults List", "experiment/sac_metaworld_reach"], marks=slow
    ),
    pytest.param(
        TRAIN,
        ["--info", "experiment=ppo_metaworld_reach"],
        ["Defaults Tree", "experiment/ppo_metaworld_reach"],
        marks=slow,
    ),
    pytest.param(TRAIN, ["-i=searchpath"], ["pkg://embodied.conf"], marks=slow),
    pytest.param(TRAIN, ["-m", "--info", "config", "seed=1,2"], ["# job 1: seed=2", "seed: 2"], marks=slow),
    pytest.param(TRAIN, ["-m", "-sc", "install=bash"], ["hydra_bash_completion"], marks=slow),
    pytest.param(TRAIN, ["--hydra-help"], ["--cfg,-c :", "hydra/launcher:"], marks=slow),
    pytest.param(
        TRAIN, ["-h", "-m"], ["== Configuration groups ==", "reward: designed, handwritten, sparse"], marks=slow
    ),
    pytest.param(TRAIN, ["--cfg", "job", "--config-name", "design_reward"], ["task: CollectWood"], marks=slow),
    pytest.param(TRAIN, ["-cn=concept_shift", "-c", "job"], ["rule:"], marks=slow),
    pytest.param(TRAIN, ["--cfg", "job", "--config-path", CONF_DIR, "seed=4"], ["seed: 4"], marks=slow),
    pytest.param(TRAIN, ["-cp=pkg://embodied.conf", "--cfg", "job"], ["seed: 0"], marks=slow),
    pytest.param(
        DESIGN, ["-m", "--cfg", "job", "iterations=1,2"], ["# job 1: iterations=2", "iterations: 2"], marks=slow
    ),
    pytest.param(DESIGN, ["--shell-completion", "install=bash"], ["embodied-design-reward"], marks=slow),
]


@pytest.mark.parametrize(("script", "args", "expected"), CASES)
def test_hydra_flag(script: str, args: list[str], expected: list[str], tmp_path: Path) -> None:
    proc = run_script(script, *args, cwd=tmp_path)
    assert proc.returncode == 0, f"{script} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}"
    for fragment in expected:
        assert fragment in proc.stdout, (
            f"{fragment!r} not in the output of {script} {' '.join(args)}:\n{proc.stdout[:2000]}"
        )


@pytest.mark.parametrize("script", [TRAIN, pytest.param(DESIGN, marks=slow)])
def test_help_lists_only_options_a_user_can_pick(script: str, tmp_path: Path) -> None:
    proc = run_script(script, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "_schema" not in proc.stdout
    assert "== Configuration groups ==" in proc.stdout and "== Config ==" in proc.stdout
    if script == TRAIN:
        assert "agent: act, act_jepa, homeostatic_ppo, ppo, ptp, sac, slim\n" in proc.stdout
    else:  # design_reward composes no groups: neither the train groups nor their schemas
        assert "agent:" not in proc.stdout and "task: CollectWood" in proc.stdout


@pytest.mark.parametrize("multirun", [[], ["-m"]], ids=["run", "multirun"])
def test_misspelt_key_is_one_line_error(multirun: list[str], tmp_path: Path) -> None:
    proc = run_script(TRAIN, *multirun, "sed=1,2" if multirun else "sed=1", cwd=tmp_path)
    assert_one_line_error(proc, "unknown config key 'sed'", "did you mean 'seed'?")


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--cgf", "job"], ["unknown option '--cgf'", "did you mean '--cfg'?"]),
        pytest.param(["--cfg", "job", "-m", "sed=1,2"], ["unknown config key 'sed'"], marks=slow),
        pytest.param(["--cfg", "jobs"], ["invalid choice: 'jobs'"], marks=slow),
        pytest.param(
            ["--config-name=nonexistent", "--cfg=job"], ["Cannot find primary config 'nonexistent'"], marks=slow
        ),
        pytest.param(
            ["-cd", "missing_dir", "--cfg", "job"], ["--config-dir 'missing_dir' is not a directory"], marks=slow
        ),
    ],
)
def test_bad_flags_and_keys_are_one_line_errors(args: list[str], needles: list[str], tmp_path: Path) -> None:
    assert_one_line_error(run_script(TRAIN, *args, cwd=tmp_path), *needles)


@slow
@pytest.mark.parametrize("flag", [["--config-dir"], ["-cd"]])
def test_config_dir_options_validate_and_compose(flag: list[str], extra_config_dir: Path, tmp_path: Path) -> None:
    proc = run_script(TRAIN, *flag, str(extra_config_dir), "--cfg", "job", "experiment=mine", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "total_steps: 77" in proc.stdout and "name: ppo" in proc.stdout
    proc = run_script(TRAIN, f"{flag[0]}={extra_config_dir}", "-m", "experiment=mine", "sed=1", cwd=tmp_path)
    assert_one_line_error(proc, "unknown config key 'sed'")


@slow
def test_shell_completion_query(tmp_path: Path) -> None:
    proc = run_script(TRAIN, "-sc", "query=bash", cwd=tmp_path, env={"COMP_LINE": "embodied-train se"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "seed=" in proc.stdout.split()


@slow
def test_experimental_rerun_runs_the_pickled_job_ignoring_overrides(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from embodied.config import register_configs

    register_configs()
    with initialize_config_module("embodied.conf", version_base="1.3"):
        cfg = compose("config", ["total_steps=-1"], return_hydra_config=True)
    OmegaConf.update(cfg, "hydra.runtime.output_dir", str(tmp_path / "rerun"), force_add=True)
    (tmp_path / "rerun").mkdir()
    (tmp_path / "config.pickle").write_bytes(pickle.dumps(cfg))
    # `sed=1` is ignored by Hydra (a warning), not validated; the pickled job runs and its own check fails.
    proc = run_script(TRAIN, "--experimental-rerun", str(tmp_path / "config.pickle"), "sed=1", cwd=tmp_path)
    assert_one_line_error(proc, "total_steps must be >= 0, got -1")
