"""The reward sandbox's isolation as runs see it, and the Critic's bounds on what goes back to an LLM.

`reward.isolation` (and the design loop's `isolation`) is validated in one line; a run
with reward code logs one warning when isolation is less than the kernel's and records
it in summary.json (`reward_sandbox`); the Critic turns any source, however large or
deep, into error records and keeps everything it sends to the Designer bounded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embodied.agents.auto_mc_reward import critic
from embodied.agents.auto_mc_reward.config import DesignConfig
from embodied.config import RewardConfig
from embodied.errors import ConfigError
from embodied.reward_code import isolation_warning, reward_source
from embodied.sandbox.sandbox import MAX_MESSAGE, MAX_NAMES
from helpers import TINY_TRAIN, assert_one_line_error, run_cli
from llm_double import ScriptedChatServer

DEEP = "f = " + "lambda: " * 3000 + "1"
HUGE = (
    "def reward(view, memory):\n" + "    x = 1\n" * 1_250_000 + "    return 0.0, {'sparse': 0.0, 'dense': 0.0}\n"
)  # 12.5 MB
PYTHON_ONLY = "reward code runs with Python-level isolation only (reward.isolation=python)"


def _view(step: int = 1, done: bool = False) -> dict:
    return {"step": step, "done": done, "death_cause": None, "inventory": {"wood": 0}}


# --- config ---------------------------------------------------------------------------
def test_isolation_must_be_kernel_or_python() -> None:
    assert RewardConfig().isolation == "kernel" and RewardConfig(isolation="python").isolation == "python"
    with pytest.raises(ConfigError, match=r"unknown reward.isolation 'none'; choose from: kernel, python"):
        RewardConfig(isolation="none")
    with pytest.raises(ConfigError, match=r"unknown isolation 'off'; choose from: kernel, python"):
        DesignConfig(isolation="off")


def test_bad_isolation_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    proc = run_cli(
        "embodied.train",
        "experiment=ppo_crafter_collect_wood",
        "reward=handwritten",
        "reward.isolation=none",
        f"run_dir={tmp_path / 'bad'}",
    )
    assert_one_line_error(proc, "reward.isolation", "kernel, python")


# --- the warning line -----------------------------------------------------------------
def test_the_warning_names_what_the_kernel_refused() -> None:
    full = {"mode": "kernel", "seccomp": True, "landlock": 7, "netns": True, "nobody": False, "problems": []}
    assert isolation_warning(full) is None
    partial = {
        **full,
        "landlock": 0,
        "netns": False,
        "problems": ["Landlock unavailable: ENOSYS", "unshare refused: EPERM"],
    }
    line = isolation_warning(partial)
    assert "without Landlock and a network namespace" in line and "ENOSYS" in line and "\n" not in line
    assert isolation_warning({**full, "mode": "python", "seccomp": False}).startswith(PYTHON_ONLY)


def test_python_isolation_run_warns_once_and_records_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "python"
    run_cli(
        "embodied.train",
        "experiment=ppo_crafter_collect_wood",
        "reward=handwritten",
        "reward.isolation=python",
        *TINY_TRAIN,
        f"run_dir={run_dir}",
        check=True,
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete"
    record = summary["reward_sandbox"]
    assert record["mode"] == "python" and record["seccomp"] is False and record["warning"].startswith(PYTHON_ONLY)
    log = (run_dir / "train.log").read_text()
    assert log.count(PYTHON_ONLY) == 1, log


# --- the Critic -----------------------------------------------------------------------
@pytest.mark.parametrize("source", [DEEP, HUGE], ids=["deep", "huge"])
def test_pathological_sources_are_static_errors(source: str) -> None:
    errors = critic.static_errors(source)
    assert len(errors) == 1 and errors[0]["kind"] == "syntax", errors
    summary, errors = critic.execute(source, [[_view(1), _view(2, done=True)]], True, 1.0, 512, "python")
    assert summary == {} and [e["kind"] for e in errors] == ["syntax"]
    assert len(critic.feedback(errors, None)) <= critic.MAX_FEEDBACK


def test_feedback_is_capped() -> None:
    errors = [
        {"kind": "forbidden", "message": "x" * 10_000, "line": i, "view": {"blob": "v" * 10_000}} for i in range(1, 30)
    ]
    review = {"problems": ["p" * 10_000] * 10, "suggestions": "one suggestion, not a list"}
    text = critic.feedback(errors, review)
    assert len(text) <= critic.MAX_FEEDBACK
    assert text.splitlines()[-1].startswith("- ... and ") and "more not shown" in text
    first, view = text.splitlines()[:2]
    assert len(first) <= MAX_MESSAGE + 40 and len(view) <= critic.MAX_VIEW + 20
    assert critic.feedback([], review).count("- problem: ") >= 1
    assert critic.feedback([], {"problems": [], "suggestions": ["short"]}) == "- suggestion: short"


def test_critic_keeps_stats_for_at_most_max_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox refuses more names itself; the Critic's own bound does not rely on it."""
    import embodied.sandbox

    class ManyNames:  # stands in for the sandbox: a new component name every step
        def __init__(self, *args, **kwargs) -> None:
            self.isolation = {"mode": "python"}

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

        def reset(self, slots) -> None:
            pass

        def call(self, views, slots):
            return [(1.0, {"sparse": 0.0, "dense": 1.0, f"c{view['step']}": 1.0}) for view in views]

    monkeypatch.setattr(embodied.sandbox, "RewardSandbox", ManyNames)
    summary, errors = critic.execute("unused", [[_view(i) for i in range(200)]], True, 1.0, 512, "python")
    assert errors == [] and len(summary["components"]) == MAX_NAMES and summary["steps"] == 200


def test_a_refused_seccomp_names_the_design_loops_key(monkeypatch: pytest.MonkeyPatch) -> None:
    import embodied.sandbox
    from embodied.sandbox.sandbox import IsolationError

    def refuse(*args, **kwargs):
        raise IsolationError(
            "the kernel refused the reward sandbox's seccomp filter (EINVAL): rerun with reward.isolation=python"
        )

    monkeypatch.setattr(embodied.sandbox, "RewardSandbox", refuse)
    with pytest.raises(IsolationError, match=r"for embodied-design-reward: isolation=python\)$"):
        critic.sandbox_isolation(1.0, 512, "kernel")


def test_design_loop_records_a_huge_design_as_a_static_error(tmp_path: Path) -> None:
    """No training: the only design is refused, and the run still finishes with its records."""
    run_dir = tmp_path / "design"
    with ScriptedChatServer(default=f"```python\n{HUGE}```") as server:
        proc = run_cli(
            "embodied.agents.auto_mc_reward.loop",
            "task=CollectWood",
            "llm=endpoint",
            "iterations=1",
            "samples=1",
            "revisions=1",
            "view_episodes=1",
            "isolation=python",
            f"run_dir={run_dir}",
            f"llm.base_url={server.base_url}",
            "llm.api_key_env=",
            "llm.mode=live",
            timeout=300,
        )
        bodies = server.chat_bodies
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    critique = json.loads((run_dir / "iterations" / "1" / "candidates" / "0" / "critique.json").read_text())
    assert not critique["accepted"] and [a["errors"][0]["kind"] for a in critique["attempts"]] == ["syntax", "syntax"]
    assert [a["failed_stage"] for a in critique["attempts"]] == ["static", "static"]
    revision = bodies[1]["messages"]
    assert len(revision[-2]["content"]) <= 100_100 and len(revision[-1]["content"]) <= critic.MAX_FEEDBACK + 200, (
        "what goes back to the Designer is bounded"
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["reward_sandbox"]["mode"] == "python" and summary["reward_sandbox"]["warning"].startswith(
        PYTHON_ONLY
    )
    assert json.loads((run_dir / "iterations" / "1" / "metrics.json").read_text())["status"] == "design_failed"
    assert (run_dir / "design_reward.log").read_text().count(PYTHON_ONLY) == 1


@pytest.mark.parametrize(
    "content, needle",
    [(b"def reward(view, memory):\n    return 0.0, {'\xff': 1.0}\n", "not UTF-8"), (b"#" * 200_000, "at most")],
)
def test_a_bad_reward_file_is_one_line(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "reward.py"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=needle):
        reward_source(RewardConfig(kind="designed", path=str(path)), None)
