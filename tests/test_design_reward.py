"""The whole Auto MC-Reward loop over real HTTP (a scripted server), the real sandbox and real PPO.

Two iterations on CollectWood: the first design raises on some views, the Critic
catches it in execution and the Designer's revision is accepted; the second round
gets the Trajectory Analyzer's summary. Then the same run is replayed offline from
the recorded exchanges, with the server stopped, and must leave identical artifacts.
"""

from __future__ import annotations

import json
from pathlib import Path

from embodied.agents.auto_mc_reward.critic import extract_code, extract_json
from helpers import TINY_TRAIN, assert_one_line_error, run_cli
from llm_double import ScriptedChatServer

GOOD = (Path(__file__).parent.parent / "envs" / "minecraft" / "rewards" / "collect_wood.py").read_text()
BAD = """def reward(view, memory):
    # Thoughts: reward wood, but this divides by zero after a few steps.
    wood = view["inventory"]["wood"]
    ratio = 1 / (3 - min(view["step"], 3))
    return float(wood), {"sparse": float(wood), "dense": ratio}
"""

TINY = [
    "train.total_steps=256",
    'train.overrides=["env.num_envs=2","agent.n_steps=64","agent.batch_size=64","agent.n_epochs=1","agent.net_arch=[32]","env.max_episode_steps=60","eval.episodes=3","eval.video=false","log_every=64"]',
    "view_episodes=1",
    "revisions=1",
    "iterations=2",
]
ARTIFACTS = ("reward.py", "critique.json", "analysis.md", "metrics.json")


def scripted_llm(body: dict) -> str:
    """Answers like the three roles would, chosen by their system prompts and content."""
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    if "reviewer" in system:
        return 'Looks consistent.\n```json\n{"verdict": "pass", "problems": [], "suggestions": []}\n```'
    if "analyse" in system:
        return (
            "- The agent often dies at night before reaching a tree.\n- Suggestion: reward approaching trees earlier."
        )
    first_round = "None yet: this is the first design." in body["messages"][1]["content"]
    revising = "The Reward Critic found problems" in user
    return f"```python\n{BAD if first_round and not revising else GOOD}```"


def _design(run_dir: Path, *args: str):
    return run_cli(
        "embodied.agents.auto_mc_reward.loop", "task=CollectWood", *TINY, f"run_dir={run_dir}", *args, timeout=600
    )


def test_full_loop_records_then_replays_identically(tmp_path: Path) -> None:
    first = tmp_path / "first"
    with ScriptedChatServer(default=scripted_llm) as server:
        proc = _design(first, f"llm.base_url={server.base_url}", "llm.api_key_env=", "llm.mode=record")
        bodies = server.chat_bodies
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Round 1: bad design -> execution error -> revision -> review -> train -> analysis; round 2: design -> review -> train -> analysis.
    roles = [b["messages"][0]["content"].split()[3] for b in bodies]
    assert len(bodies) == 7, roles
    critique = json.loads((first / "iterations" / "1" / "critique.json").read_text())
    assert critique["accepted"] and len(critique["attempts"]) == 2
    error = critique["attempts"][0]["errors"][0]
    assert error["kind"] == "exception" and "ZeroDivisionError" in error["message"] and error["line"] == 4
    assert error["view"]["step"] >= 3, "the Critic must see the view that broke the code"
    assert "ZeroDivisionError" in bodies[1]["messages"][-1]["content"], "the error goes back to the Designer"
    round2 = bodies[4]["messages"][1]["content"]
    assert "dies at night" in round2 and '"success_rate"' in round2, (
        "round 2's Designer sees the Analyzer's statistics and summary"
    )
    for k in ("1", "2"):
        it = first / "iterations" / k
        assert all((it / name).exists() for name in ARTIFACTS)
        assert (it / "reward.py").read_text() == GOOD
        metrics = json.loads((it / "metrics.json").read_text())
        assert (
            metrics["status"] == "trained" and metrics["train_steps"] >= 256 and 0.0 <= metrics["success_rate"] <= 1.0
        )
        assert (it / "train" / "summary.json").exists()
    summary = json.loads((first / "summary.json").read_text())
    assert (
        summary["best_iteration"] in (1, 2)
        and (first / "best").resolve() == (first / "iterations" / str(summary["best_iteration"])).resolve()
    )
    assert len(list((first / "llm_store").glob("*.json"))) == 7

    replay = tmp_path / "replay"
    proc = _design(
        replay,
        "llm.base_url=http://127.0.0.1:9/v1",
        "llm.api_key_env=",
        "llm.mode=replay",
        f"llm.store={first / 'llm_store'}",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for k in ("1", "2"):
        for name in ARTIFACTS:
            assert (replay / "iterations" / k / name).read_bytes() == (first / "iterations" / k / name).read_bytes(), (
                f"iteration {k}/{name} differs in replay"
            )


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
