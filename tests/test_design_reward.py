"""The whole Auto MC-Reward loop over real HTTP (a scripted server), the real sandbox and real PPO.

Two iterations on CollectWood: the first design raises on some views, the Critic
catches it in execution and the Designer's revision is accepted; the second round
gets the Trajectory Analyzer's summary. Then the same run is replayed offline from
the recorded exchanges, with the server stopped, and must leave identical artifacts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embodied.agents.auto_mc_reward.critic import extract_code, extract_json
from helpers import TINY_TRAIN, assert_one_line_error, run_cli
from llm_double import ErrorReply, ScriptedChatServer

GOOD = (Path(__file__).parent.parent / "envs" / "minecraft" / "rewards" / "collect_wood.py").read_text()
BAD = """def reward(view, memory):
    # Thoughts: reward wood, but this divides by zero after a few steps.
    wood = view["inventory"]["wood"]
    ratio = 1 / (3 - min(view["step"], 3))
    return float(wood), {"sparse": float(wood), "dense": ratio}
"""

CONSTANT = """def reward(view, memory):
    # Thoughts: reward having wood (but the key always exists, so this is always true).
    sparse = 1.0 if "wood" in view["inventory"] else 0.0
    return sparse, {"sparse": sparse, "dense": 0.0}
"""

TINY = [
    "train.total_steps=256",
    'train.overrides=["env.num_envs=2","agent.n_steps=64","agent.batch_size=64","agent.n_epochs=1","agent.net_arch=[32]","env.max_episode_steps=60","eval.episodes=3","eval.video=false","log_every=64"]',
    "view_episodes=1",
    "revisions=1",
    "iterations=2",
    "samples=1",
]
ITERATION = ("reward.py", "analysis.md", "metrics.json", "next_prompt.md")
CANDIDATE = ("reward.py", "critique.json", "metrics.json")
REVIEW = 'Looks consistent.\n```json\n{"checked": ["sparse fires on wood and death"], "verdict": "pass", "problems": [], "suggestions": []}\n```'


def role(body: dict) -> str:
    system = body["messages"][0]["content"]
    return "critic" if "reviewer" in system else "analyzer" if "analyse" in system else "designer"


def scripted_llm(body: dict) -> str:
    """Answers like the three roles would, chosen by their system prompts and content."""
    user = body["messages"][-1]["content"]
    if role(body) == "critic":
        return REVIEW
    if role(body) == "analyzer":
        return (
            "- The agent often dies at night before reaching a tree.\n- Suggestion: reward approaching trees earlier."
        )
    first_round = "None yet: this is the first design." in body["messages"][1]["content"]
    revising = "The Reward Critic found problems" in user
    return f"```python\n{BAD if first_round and not revising else GOOD}```"


def _design(run_dir: Path, *args: str):
    return run_cli(
        "embodied.agents.auto_mc_reward.loop",
        "task=CollectWood",
        "llm=endpoint",
        *TINY,
        f"run_dir={run_dir}",
        *args,
        timeout=600,
    )


@pytest.mark.slow  # ~33 s; make test-llm replays a real recording byte for byte too: `make test-all` runs it
def test_full_loop_records_then_replays_identically(tmp_path: Path) -> None:
    first = tmp_path / "first"
    with ScriptedChatServer(default=scripted_llm) as server:
        proc = _design(first, f"llm.base_url={server.base_url}", "llm.api_key_env=", "llm.mode=record")
        bodies = server.chat_bodies
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Round 1: bad design -> execution error -> revision -> review -> train -> analysis; round 2: design -> review -> train -> analysis.
    assert [role(b) for b in bodies] == ["designer", "designer", "critic", "analyzer", "designer", "critic", "analyzer"]
    assert len({b["seed"] for b in bodies}) == len(bodies), "every request carries its own sampling seed"
    assert all(b["max_tokens"] == 1024 for b in bodies)
    critique = json.loads((first / "iterations" / "1" / "candidates" / "0" / "critique.json").read_text())
    assert critique["accepted"] and len(critique["attempts"]) == 2
    assert [a["failed_stage"] for a in critique["attempts"]] == ["sandbox", None]
    assert critique["attempts"][1]["review_outcome"] == "pass"
    error = critique["attempts"][0]["errors"][0]
    assert error["kind"] == "exception" and "ZeroDivisionError" in error["message"] and error["line"] == 4
    assert error["view"]["step"] >= 3, "the Critic must see the view that broke the code"
    revision = bodies[1]["messages"][-1]["content"]
    assert "ZeroDivisionError" in revision and "line 4: ratio = 1 / (3 - min(view[" in revision, (
        "the error goes back to the Designer with the offending source line"
    )
    round2 = bodies[4]["messages"][1]["content"]
    assert "dies at night" in round2 and '"success_rate"' in round2, (
        "round 2's Designer sees the Analyzer's statistics and summary"
    )
    assert '"inventory": {"sapling"' in round2, "the Designer sees a real view"
    assert "a reward for a different task (EatCow)" in round2, "and a worked example for another task"
    for k in ("1", "2"):
        it = first / "iterations" / k
        assert all((it / name).exists() for name in ITERATION)
        assert all((it / "candidates" / "0" / name).exists() for name in CANDIDATE)
        assert (it / "reward.py").read_text() == GOOD
        metrics = json.loads((it / "metrics.json").read_text())
        assert metrics["status"] == "trained" and metrics["best_candidate"] == 0
        assert metrics["train_steps"] >= 256 and 0.0 <= metrics["success_rate"] <= 1.0
        assert (it / "candidates" / "0" / "train" / "summary.json").exists()
    assert json.loads((first / "iterations" / "1" / "metrics.json").read_text())["stages"] == {
        "format": 0,
        "static": 0,
        "sandbox": 1,
        "semantic": 0,
        "llm_review": 0,
        "accepted": 1,
    }
    summary = json.loads((first / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["llm"]["seed"] is not None
    assert (
        summary["best_iteration"] in (1, 2)
        and (first / "best").resolve() == (first / "iterations" / str(summary["best_iteration"])).resolve()
    )
    assert len(list((first / "llm_store").glob("*-*.json"))) == 7

    replay = tmp_path / "replay"
    proc = _design(
        replay,
        "llm.base_url=http://127.0.0.1:9/v1",
        "llm.api_key_env=",
        "llm.mode=replay",
        f"llm.store={first / 'llm_store'}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = [*ITERATION, *(f"candidates/0/{name}" for name in CANDIDATE)]
    for k in ("1", "2"):
        for name in names:
            assert (replay / "iterations" / k / name).read_bytes() == (first / "iterations" / k / name).read_bytes(), (
                f"iteration {k}/{name} differs in replay"
            )
    recorded, replayed = (json.loads((d / "summary.json").read_text()) for d in (first, replay))
    assert (recorded["llm"].pop("mode"), replayed["llm"].pop("mode")) == ("record", "replay")
    assert replayed == recorded


def test_k_candidates_keep_the_fittest_and_say_where_the_others_failed(tmp_path: Path) -> None:
    fresh = []

    def llm(body: dict) -> str:
        if role(body) != "designer":
            return scripted_llm(body)
        if "The Reward Critic found problems" not in body["messages"][-1]["content"]:
            fresh.append(body["seed"])
        return f"```python\n{CONSTANT if len(fresh) == 1 else GOOD}```"

    run_dir = tmp_path / "k2"
    with ScriptedChatServer(default=llm) as server:
        proc = _design(run_dir, f"llm.base_url={server.base_url}", "llm.api_key_env=", "samples=2", "iterations=1")
        bodies = server.chat_bodies
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(set(fresh)) == 2, "the two candidates are separate requests with different seeds"
    first = json.loads((run_dir / "iterations" / "1" / "candidates" / "0" / "critique.json").read_text())
    assert not first["accepted"] and [a["failed_stage"] for a in first["attempts"]] == ["semantic", "semantic"]
    checks = {e["check"] for e in first["attempts"][0]["errors"]}
    assert {"impossible_read", "constant"} <= checks, checks
    revision = next(b for b in bodies if "The Reward Critic found problems" in b["messages"][-1]["content"])
    feedback = revision["messages"][-1]["content"]
    assert "'wood' in view['inventory'] is always True" in feedback
    assert 'line 3: sparse = 1.0 if "wood" in view["inventory"] else 0.0' in feedback, "the offending line is quoted"
    metrics = json.loads((run_dir / "iterations" / "1" / "metrics.json").read_text())
    assert metrics["best_candidate"] == 1 and metrics["stages"]["semantic"] == 2 and metrics["stages"]["accepted"] == 1
    loser = metrics["candidates"][0]
    assert loser["status"] == "design_failed" and loser["failed_stage"] == "semantic"
    assert "semantic stage" in loser["error"] and "Critic rejected" not in loser["error"]
    assert (run_dir / "iterations" / "1" / "reward.py").read_text() == GOOD


def test_an_llm_failure_mid_iteration_keeps_the_artifacts_and_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "stopped"
    with ScriptedChatServer(
        [f"```python\n{GOOD}```", ErrorReply(400, "the model crashed")], default=scripted_llm
    ) as server:
        proc = _design(run_dir, f"llm.base_url={server.base_url}", "llm.api_key_env=", "iterations=1")
        asked = len(server.chat_bodies)
    line = assert_one_line_error(proc, "iteration 1 stopped at the critic", "the model crashed", "resume=true")
    assert asked == 2 and str(run_dir) in line
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["stopped_at"]["role"] == "critic"
    critique = json.loads((run_dir / "iterations" / "1" / "candidates" / "0" / "critique.json").read_text())
    assert "the model crashed" in critique["stopped"]["error"] and critique["attempts"][0]["answer"].startswith(
        "```python"
    )

    with ScriptedChatServer(default=scripted_llm) as server:
        proc = _design(run_dir, f"llm.base_url={server.base_url}", "llm.api_key_env=", "iterations=1", "resume=true")
        roles = [role(b) for b in server.chat_bodies]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert roles == ["critic", "analyzer"], "the Designer's answer comes from the store, not from the server again"
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "complete"
    assert (run_dir / "iterations" / "1.stopped-1" / "candidates" / "0" / "critique.json").exists()


def test_unreachable_endpoint_fails_before_training(tmp_path: Path) -> None:
    run_dir = tmp_path / "down"
    proc = _design(
        run_dir, "llm.base_url=http://127.0.0.1:9/v1", "llm.api_key_env=", "llm.retries=0", "llm.timeout_s=2"
    )
    assert_one_line_error(proc, "127.0.0.1:9")
    assert not (run_dir / "iterations").exists()


def test_extracting_code_and_reviews() -> None:
    assert (
        extract_code("Here:\n```python\ndef reward(view, memory):\n    return 0.0, {}\n```\nDone")
        == "def reward(view, memory):\n    return 0.0, {}\n"
    )
    assert extract_code("no code here") is None
    assert extract_json('sure ```json\n{"verdict": "pass"}\n```') == {"verdict": "pass"}
    assert extract_json("not json {") is None


def test_handwritten_reward_trains_and_logs_its_components(tmp_path: Path) -> None:
    from embodied.metrics import read_metrics

    run_dir = tmp_path / "hand"
    run_cli(
        "embodied.train",
        "experiment=ppo_crafter_collect_wood",
        "reward=handwritten",
        *TINY_TRAIN,
        f"run_dir={run_dir}",
        check=True,
    )
    rows = read_metrics(run_dir / "metrics.csv")
    assert any("charts/reward/dense" in r and "charts/reward/sparse" in r for r in rows)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "complete"


def test_a_reward_that_fails_in_training_stops_the_run(tmp_path: Path) -> None:
    reward = tmp_path / "reward.py"
    reward.write_text(BAD)
    run_dir = tmp_path / "bad"
    proc = run_cli(
        "embodied.train",
        "experiment=ppo_crafter_collect_wood",
        "reward=designed",
        f"reward.path={reward}",
        *TINY_TRAIN,
        f"run_dir={run_dir}",
    )
    assert_one_line_error(proc, "exception at line 4", "ZeroDivisionError")
    assert not (run_dir / "summary.json").exists(), "a run whose reward failed must not look complete"
