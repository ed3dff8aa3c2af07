"""The Reward Critic's checks that need no LLM: broken logic found from the code and the execution record."""

from __future__ import annotations

import pytest

from embodied.agents.auto_mc_reward import critic
from embodied.agents.auto_mc_reward.candidate import review_outcome
from embodied.agents.auto_mc_reward.loop import record_views
from embodied.envs.minecraft.rewards import handwritten_path
from embodied.envs.minecraft.view import goal_view

HEADER = "def reward(view, memory):\n"


@pytest.fixture(scope="module")
def episodes():
    return record_views("DiamondLava", 2, 0)


def run(code: str, episodes, achievement: str = "collect_diamond"):
    record, errors = critic.execute(code, episodes, True, 5.0, 512, "kernel", achievement)
    assert errors == []
    return critic.semantic_errors(code, record)


def checks(findings) -> set[str]:
    return {f["check"] for f in findings}


def test_the_handwritten_rewards_pass_every_check(episodes):
    for task, achievement in (("CollectWood", "collect_wood"), ("DiamondLava", "collect_diamond")):
        assert run(handwritten_path(task).read_text(), episodes, achievement) == [], task


def test_the_probe_episode_ends_in_a_success_step(episodes):
    probe = episodes[-1]
    assert probe[-1]["done"] and probe[-1]["death_cause"] is None and probe[-1]["achievements"]["collect_diamond"]
    assert probe[-1]["inventory"]["diamond"] == probe[-2]["inventory"]["diamond"] + 1
    view = goal_view(probe[0], "eat_cow")
    assert (
        view["life_stats"]["food"] == min(9, probe[0]["life_stats"]["food"] + 6) and view["target"]["entity"] == "cow"
    )


def test_a_constant_reward_is_found_and_its_lines_quoted(episodes):
    code = (
        HEADER
        + '    sparse = 1.0 if view["achievements"]["collect_diamond"] is not None else 0.0\n    return sparse, {"sparse": sparse, "dense": 0.0}\n'
    )
    findings = run(code, episodes)
    assert "constant" in checks(findings)
    constant = next(f for f in findings if f["check"] == "constant")
    assert constant["lines"][0]["line"] == 2 and "collect_diamond" in constant["lines"][0]["source"]
    assert "sparse_at_death" in checks(findings), "a reward of +1 on every step is positive at death too"


def test_sparse_wrong_at_success_and_death_and_dense_that_loves_lava(episodes):
    code = HEADER + (
        '    lava = view["near_blocks"].get("lava")\n'
        "    dense = 0.5 if lava is not None and lava <= 1.5 else 0.0\n"
        '    sparse = 1.0 if view["death_cause"] is not None else 0.0\n'
        '    return sparse + dense, {"sparse": sparse, "dense": dense}\n'
    )
    found = checks(run(code, episodes))
    assert {"sparse_at_success", "sparse_at_death", "dense_at_lava"} <= found, found


def test_a_sparse_part_paid_on_every_step(episodes):
    code = HEADER + (
        '    sparse = 1.0 if view["life_stats"]["health"] > 0 else -1.0\n'
        '    dense = float(view["near_blocks"].get("diamond") is not None) + 0.1 * view["step"]\n'
        '    return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}\n'
    )
    assert "sparse_every_step" in checks(run(code, episodes))


def test_a_dense_part_that_never_changes(episodes):
    code = HEADER + (
        '    sparse = 1.0 if view["achievements"]["collect_diamond"] else 0.0\n'
        '    if view["death_cause"] is not None:\n        sparse = -1.0\n'
        '    return sparse, {"sparse": sparse, "dense": 0.2}\n'
    )
    assert checks(run(code, episodes)) == {"dense_constant"}


@pytest.mark.parametrize(
    "line, words",
    [
        ('x = "collect_wood" in view["achievements"]', "is always True"),
        ('x = "wood" not in view["inventory"]', "is always False"),
        ('x = view["near_entities"].get("tree")', "'tree' is a key of view['near_blocks']"),
        ('x = view["target"]["entity"] == "tree"', "is never 'tree'"),
        ('x = view["near_blocks"]["cow"]', "view['near_entities']"),
        ('x = view["health"]', "view never holds 'health'"),
    ],
)
def test_reads_that_never_change_are_named_with_their_fix(line, words):
    code = HEADER + f"    {line}\n    return 0.0, {{'sparse': 0.0, 'dense': 0.0}}\n"
    (finding,) = critic._impossible_reads(code)
    assert finding["line"] == 2 and words in finding["message"]


@pytest.mark.parametrize(
    "body, unwritten",
    [
        ('    if "lava" in memory and memory["lava"] < 2:\n        x = 1\n', ["lava"]),
        ('    x = memory.get("wood", 0)\n    memory["food"] = 1\n', ["wood"]),
        ('    x = memory.get("wood", 0)\n    memory["wood"] = view["inventory"]["wood"]\n', []),
        ('    memory["n"] += 1\n    x = memory["n"]\n', []),
        ('    x = memory.setdefault("n", 0)\n    y = memory.get("n")\n', []),
        ('    x = memory.get("n")\n    memory.update({"n": 1}, m=2)\n    y = memory["m"]\n', []),
        ('    x = memory.get("n")\n    key = "n"\n    memory[key] = 1\n', []),  # a computed key: says nothing
        ('    x = memory.get("n")\n    helper(memory)\n', []),  # passed on: may be written there
    ],
)
def test_memory_read_but_never_stored(body, unwritten):
    code = HEADER + body + "    return 0.0, {'sparse': 0.0, 'dense': 0.0}\n"
    findings = critic._unwritten_memory_reads(code)
    assert [f["message"].split("'")[1] for f in findings] == unwritten
    assert all(f["line"] == 2 for f in findings)


def test_the_committed_diamondlava_design_reads_memory_it_never_stores(episodes):
    """The design the benchmark trained passed the Critic of its day; this check now names its dead branches."""
    from pathlib import Path

    code = (Path(__file__).parents[1] / "benchmarks/designed/DiamondLava/reward.py").read_text()
    found = [f for f in run(code, episodes) if f["check"] == "unwritten_memory"]
    assert {f["message"].split("'")[1] for f in found} == {"near_blocks", "target"}
    assert "memory starts empty" in critic.feedback(found, None, code)


def test_feedback_quotes_the_offending_source_line():
    code = HEADER + "    a = 1\n    return 1 / 0, {}\n    b = memory['facing']\n"
    text = critic.feedback([{"kind": "exception", "message": "ZeroDivisionError", "line": 3, "view": None}], None, code)
    assert "line 3: return 1 / 0, {}" in text and "memory starts empty" not in text
    text = critic.feedback(
        [{"kind": "exception", "message": "KeyError: 'facing'", "line": 4, "view": None}], None, code
    )
    assert "line 4: b = memory['facing']" in text and "memory.get(name, default)" in text


def test_the_worked_example_loses_its_header():
    from embodied.agents.auto_mc_reward.loop import without_header

    source = handwritten_path("EatCow").read_text()
    assert source.startswith("# Hand-written") and without_header(source).startswith("def reward(view, memory):")


@pytest.mark.parametrize(
    "review, outcome",
    [
        ({"verdict": "pass"}, "empty"),
        ({"verdict": "pass", "checked": []}, "empty"),
        ({"verdict": "pass", "checked": ["sparse is +1 at success"]}, "pass"),
        ({"verdict": "revise", "problems": []}, "empty"),
        ({"verdict": "revise", "problems": ["dense rewards standing still"]}, "revise"),
        (None, "empty"),
    ],
)
def test_an_empty_pass_is_not_a_review(review, outcome):
    assert review_outcome(review) == outcome
