"""ShardedVecEnv: the same transitions as SB3's DummyVecEnv, with envs split over workers."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

import embodied.envs as envs
from embodied.vec_env import ShardedVecEnv
from embodied.wrappers import EpisodeStatistics


def _fns(n: int):
    return [
        lambda: EpisodeStatistics(envs.make("embodied/Crafter-Survival-v0", obs_mode="symbolic", max_episode_steps=40))
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def pair():
    sharded, dummy = ShardedVecEnv(_fns(5), workers=2), DummyVecEnv(_fns(5))
    yield sharded, dummy
    sharded.close()


def test_shards_split_evenly(pair):
    sharded, _ = pair
    assert sharded.shards == [[0, 1], [2, 3, 4]] and sharded.num_envs == 5


def test_same_transitions_as_dummy_vec_env(pair):
    sharded, dummy = pair
    for vec in pair:
        vec.seed(3)
    a, b = sharded.reset(), dummy.reset()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(90):  # past two 40-step caps: autoreset and terminal observations
        actions = rng.integers(17, size=5)
        (oa, ra, da, ia), (ob, rb, db, ib) = sharded.step(actions), dummy.step(actions)
        for key in oa:
            np.testing.assert_array_equal(oa[key], ob[key])
        np.testing.assert_array_equal(ra, rb)
        np.testing.assert_array_equal(da, db)
        for x, y in zip(ia, ib):
            assert (
                x.keys() == y.keys()
                and x["success"] == y["success"]
                and x.get("TimeLimit.truncated") == y.get("TimeLimit.truncated")
            )
            if "terminal_observation" in x:
                np.testing.assert_array_equal(x["terminal_observation"]["grid"], y["terminal_observation"]["grid"])
                assert x["episode"] == y["episode"]
                finished += 1
    assert finished >= 10


def test_attributes_and_methods_reach_the_right_env(pair):
    sharded, _ = pair
    assert sharded.get_attr("grid_shape") == [(7, 9)] * 5
    sharded.set_attr("episode_cap", 77, indices=[1, 3])
    assert sharded.get_attr("episode_cap", indices=[0, 1, 3, 4]) == [40, 77, 77, 40]
    assert sharded.env_method("render", indices=[4]) == [None]
    assert sharded.env_is_wrapped(EpisodeStatistics) == [True] * 5
