"""The prompts of Auto MC-Reward's three LLM roles, in the paper's structure.

The Reward Designer's prompt has six parts: process instructions, task description,
game information, statistics of failed trajectories (empty in round one), the input
parameters (every key of the view with its type and range) and the required format,
whose sandbox rules are `embodied.sandbox.checks.RULES`, the rules the checker enforces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from embodied.envs.minecraft.tasks import Task
from embodied.envs.minecraft.view import MC_KEY_DOCS
from embodied.sandbox.checks import RULES

SUCCESS = {
    "collect_wood": "the agent collects wood from a tree (the collect_wood achievement)",
    "eat_cow": "the agent kills a cow by hitting it, which eats it (the eat_cow achievement)",
    "collect_diamond": "the agent mines a diamond (the collect_diamond achievement)",
    None: "the agent is still alive when the episode cap is reached",
}

GAME = """The game is Crafter, a 2-D Minecraft-like world of 64x64 cells seen from above; the agent sees a 9x7 window around itself.
Actions (17): noop, move_left, move_right, move_up, move_down, do (act on the faced cell: collect a material, hit a creature), sleep, place_stone, place_table, place_furnace, place_plant, make_wood_pickaxe, make_stone_pickaxe, make_iron_pickaxe, make_wood_sword, make_stone_sword, make_iron_sword. Moving also turns the agent; `do` acts on the cell it faces.
Materials: grass, sand and path can be walked on; trees give wood; stone, coal and iron need pickaxes (wood, wood, stone); diamond needs an iron pickaxe; water gives drink; walking into lava kills instantly.
Creatures: cows (3 hits to kill without a sword; eating one restores food), zombies (appear on grass, more at night, hit for 2, 7 if the agent sleeps), skeletons (live in dark tunnels and shoot arrows).
Life: health, food, drink and energy go from 0 to 9; food, drink and energy fall over time; at 0 any of them drains health; health 0 is death.
Day and night alternate every 300 steps; nights are dark and dangerous."""

FORMAT = (
    """Write one Python function, exactly:

def reward(view, memory):
    # Thoughts: at most three comment lines on what you reward and why.
    sparse = 0.0  # task progress or failure
    dense = 0.0  # shaping towards success
    ...
    return sparse + 0.1 * dense, {"sparse": sparse, "dense": dense}

Rules:
- `view` is the dictionary described above for the current step; `memory` is a dict that you may read and write and that persists within one episode (it starts empty), e.g. to compare with the previous step.
- Return a tuple: a float total and a dict of named float components. It must contain "sparse" (task progress or failure, e.g. +1 on success, -1 on death) and "dense" (shaping that guides the agent towards success). Training uses only their signs: reward = sign(sparse) * 1 + sign(dense) * 0.1.
- Give every variable a value before any `if` reads it, and read memory with memory.get(name, default): an exception stops training.

The code is untrusted, so it is checked before it runs and then run in a sandbox; code that breaks these rules is rejected:
"""
    + "\n".join(f"- {rule}" for rule in RULES)
    + """

Answer with the function in a single ```python code block."""
)


def _inputs() -> str:
    return "\n".join(f"- view[{key!r}]: {doc}" for key, doc in MC_KEY_DOCS.items())


@dataclass(frozen=True)
class PromptOptions:
    """What the Designer's prompt adds to the paper's six parts (measured in benchmarks/prompt_acceptance.py)."""

    example_view: dict[str, Any] | None = None
    """A real view from a recorded episode, shown as JSON beside the key descriptions."""
    worked_example: tuple[str, str] | None = None
    """(task name, reward source) of a reward for a *different* task, shown as an example of the format."""


def example_view_json(view: dict[str, Any]) -> str:
    return json.dumps(view, sort_keys=False, default=str)


def designer(
    task: Task,
    failure_stats: str = "",
    feedback: str = "",
    previous_code: str = "",
    options: PromptOptions = PromptOptions(),
) -> list[dict[str, str]]:
    """The Reward Designer's messages; `feedback` carries the Critic's errors and review."""
    inputs = _inputs()
    if options.example_view is not None:
        inputs += (
            "\n\nA real view from this game (the keys above always exist; near_blocks and near_entities list only what is in sight):\n"
            + example_view_json(options.example_view)
        )
    fmt = FORMAT
    if options.worked_example is not None:
        other, source = options.worked_example
        fmt += (
            f"\n\nFor example, a reward for a different task ({other}) in this format; do not copy it, design for your task:\n"
            f"```python\n{source.strip()}\n```"
        )
    parts = [
        "## Process\nYou design dense reward functions for reinforcement learning in a Minecraft-like game. Read the task, the game and the statistics of earlier training, think step by step, then write the reward function (do not copy this description into it).",
        f"## Task\n{task.name}: {task.description}. Success: {SUCCESS[task.achievement]}. Episodes end on death{'' if task.achievement is None else ' or success'}, or after {task.max_episode_steps} steps.",
        f"## Game information\n{GAME}",
        "## Statistics of failed trajectories\n" + (failure_stats or "None yet: this is the first design."),
        f"## Input parameters\n{inputs}",
        f"## Required format\n{fmt}",
    ]
    messages = [
        {"role": "system", "content": "You are an expert in reward design for reinforcement learning."},
        {"role": "user", "content": "\n\n".join(parts)},
    ]
    if previous_code and feedback:
        messages += [
            {"role": "assistant", "content": f"```python\n{previous_code}\n```"},
            {
                "role": "user",
                "content": f"The Reward Critic found problems; revise the function and answer with the whole corrected function.\n\n{feedback}",
            },
        ]
    return messages


def critic(task: Task, code: str, execution: dict[str, Any]) -> list[dict[str, str]]:
    """The Reward Critic's review: self-consistency of the code with the task."""
    content = (
        f"Task: {task.name}: {task.description}. Success: {SUCCESS[task.achievement]}.\n\n"
        f"Input parameters:\n{_inputs()}\n\nRequired format:\n{FORMAT}\n\n"
        f"Reward function to review:\n```python\n{code}\n```\n\n"
        f"It was executed on recorded steps of real episodes; summary:\n{json.dumps(execution, indent=1)}\n\n"
        "Check that the code is self-consistent and fits the task: the sparse part fires on success and on death with the right signs, "
        "the dense part leads towards success without rewarding loops that avoid it, keys and value types match the input parameters, memory is used correctly. "
        'Answer with a JSON object in a ```json block: {"checked": ["what you verified, one item each"], "verdict": "pass" or "revise", "problems": ["..."], "suggestions": ["..."]}.'
    )
    return [
        {"role": "system", "content": "You are a careful reviewer of reward functions."},
        {"role": "user", "content": content},
    ]


def analyzer(task: Task, stats: dict[str, Any], code: str) -> list[dict[str, str]]:
    """The Trajectory Analyzer's summary of training statistics into causes and suggestions."""
    content = (
        f"Task: {task.name}: {task.description}.\nThe agent was trained with this reward:\n```python\n{code}\n```\n\n"
        f"Statistics of its trajectories (failed and successful) and of each reward component over training:\n{json.dumps(stats, indent=1)}\n\n"
        "Summarise, in a few bullet points, the likely causes of failure and concrete suggestions for the next reward design."
    )
    return [
        {"role": "system", "content": "You analyse reinforcement-learning trajectories."},
        {"role": "user", "content": content},
    ]
