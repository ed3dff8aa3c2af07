"""Our hand-written dense rewards: they pass the sandbox's checks and pay for progress only."""

from __future__ import annotations

import copy

import pytest

from embodied.envs.minecraft.rewards import HANDWRITTEN, handwritten_path
from embodied.errors import ConfigError
from embodied.sandbox import check_source


def _load(task: str):
    namespace: dict = {}
    exec(compile(handwritten_path(task).read_text(), str(handwritten_path(task)), "exec"), namespace)
    return namespace["reward"]


def _view(**changes):
    view = {
        "inventory": {"wood": 0, "diamond": 0},
        "near_blocks": {"grass": 0.0},
        "near_entities": {},
        "target": {"block": "grass", "entity": None},
        "achievements": {"eat_cow": False},
        "location_stats": {"pos": (10, 10), "facing": (0, 1)},
        "death_cause": None,
        "done": False,
        "step": 1,
    }
    for key, value in changes.items():
        view[key] = value
    return view


@pytest.mark.parametrize("task", list(HANDWRITTEN))
def test_passes_the_sandbox_checks(task):
    assert check_source(handwritten_path(task).read_text()) == []


def test_standing_by_a_tree_pays_nothing_after_the_first_step():
    """The farmable first version paid +dense every step next to a tree (0% success)."""
    reward, memory = _load("CollectWood"), {}
    near = _view(near_blocks={"tree": 1.0}, target={"block": "tree", "entity": None})
    reward(_view(near_blocks={"tree": 2.0}), memory)
    assert reward(copy.deepcopy(near), memory)[1]["dense"] > 0  # got closer and now faces it
    assert all(reward(copy.deepcopy(near), memory)[1]["dense"] == 0 for _ in range(10))


@pytest.mark.parametrize(
    "task, key, near, far",
    [
        ("CollectWood", "near_blocks", {"tree": 1.0}, {"tree": 3.0}),
        ("EatCow", "near_entities", {"cow": 1.0}, {"cow": 3.0}),
    ],
)
def test_approach_and_retreat_cancel(task, key, near, far):
    reward, memory = _load(task), {}
    total = 0.0
    for i in range(20):
        total += reward(_view(**{key: near if i % 2 else far}), memory)[1]["dense"]
    assert abs(total) <= 2.0 + 1e-9, "a loop must not accumulate dense reward"


def test_success_and_death_are_the_sparse_part():
    reward, memory = _load("CollectWood"), {}
    reward(_view(), memory)
    assert reward(_view(inventory={"wood": 1, "diamond": 0}), memory)[1]["sparse"] == 1.0
    assert reward(_view(inventory={"wood": 1, "diamond": 0}, death_cause="zombie"), memory)[1]["sparse"] == -1.0


def test_no_handwritten_reward_for_survival():
    with pytest.raises(ConfigError, match="CollectWood, EatCow, DiamondLava"):
        handwritten_path("Survival")
