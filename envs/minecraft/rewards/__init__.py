"""Hand-written dense rewards, one file per task: the reference LLM designs are measured against.

Each file follows the reward contract (`reward(view, memory) -> (total, components)`)
and the sandbox's rules, and runs through the same sandbox as designed rewards.
"""
from __future__ import annotations

from pathlib import Path

HANDWRITTEN = {"CollectWood": "collect_wood.py", "EatCow": "eat_cow.py", "DiamondLava": "diamond_lava.py"}


def handwritten_path(task: str) -> Path:
    """The hand-written reward for `task`."""
    from embodied.errors import ConfigError

    if task not in HANDWRITTEN:
        raise ConfigError(f"no hand-written reward for task '{task}'; there are: {', '.join(HANDWRITTEN)}")
    return Path(__file__).parent / HANDWRITTEN[task]
