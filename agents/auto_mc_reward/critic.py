"""The Reward Critic: static checks, execution on recorded views, then an LLM review.

The first two need no LLM and catch what must never reach training (code that does
not parse, breaks the sandbox's rules, raises, hangs or returns non-finite or
wrongly typed values); the LLM review checks that the code means what the task needs.
"""
from __future__ import annotations

import json
import re
from typing import Any, Sequence

import numpy as np

from embodied.reward_code import shaped

_CODE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)
_CHUNK = 64
_JSON = re.compile(r"```(?:json)?\s*\n(\{.*?\})\s*```", re.DOTALL)


def extract_code(text: str) -> str | None:
    """The reward function in an LLM answer: the code block defining `reward`, else None."""
    for block in _CODE.findall(text):
        if "def reward" in block:
            return block.strip() + "\n"
    return text.strip() + "\n" if text.lstrip().startswith(("def reward", "import", "#")) and "def reward" in text else None


def extract_json(text: str) -> dict[str, Any] | None:
    """The JSON object in an LLM answer (a ```json block, else the outermost braces)."""
    candidates = _JSON.findall(text)
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def static_errors(code: str) -> list[dict[str, Any]]:
    from embodied.sandbox import check_source

    return [err.as_dict() for err in check_source(code)]


def execute(code: str, episodes: Sequence[Sequence[dict]], scale_constraint: bool, timeout_s: float, memory_mb: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the reward over recorded episodes of views; (summary for the LLM, errors)."""
    from embodied.sandbox import RewardError, RewardSandbox

    components: dict[str, list[float]] = {}
    training: list[float] = []
    on_success, on_death = [], []
    try:
        with RewardSandbox(code, timeout_s=timeout_s, memory_mb=memory_mb) as sandbox:
            for views in episodes:
                sandbox.reset([0])
                results = []
                for start in range(0, len(views), _CHUNK):  # one slot: memory carries through the episode
                    chunk = list(views[start : start + _CHUNK])
                    results += sandbox.call(chunk, [0] * len(chunk))
                for view, (total, parts) in zip(views, results):
                    value = shaped(total, parts, scale_constraint)
                    training.append(value)
                    for name, v in parts.items():
                        components.setdefault(name, []).append(v)
                    if view["done"] and view["death_cause"] is not None:
                        on_death.append(value)
                    elif view["done"]:
                        on_success.append(value)
    except RewardError as err:
        return {}, [err.as_dict()]
    stats = lambda xs: {"min": float(np.min(xs)), "mean": float(np.mean(xs)), "max": float(np.max(xs)), "nonzero": float(np.mean(np.asarray(xs) != 0))}  # noqa: E731
    summary = {
        "episodes": len(episodes),
        "steps": len(training),
        "components": {name: stats(xs) for name, xs in components.items()},
        "training_reward": stats(training) if training else {},
        "reward_at_success_steps": [round(v, 3) for v in on_success],
        "reward_at_death_steps": [round(v, 3) for v in on_death],
    }
    return summary, []


def feedback(errors: Sequence[dict[str, Any]], review: dict[str, Any] | None) -> str:
    """What goes back to the Designer: the errors with their views, or the review's points."""
    lines = []
    for err in errors:
        where = f" at line {err['line']}" if err.get("line") else ""
        lines.append(f"- {err['kind']}{where}: {err['message']}")
        if err.get("view") is not None:
            lines.append(f"  on this view: {json.dumps(err['view'], default=str)[:1500]}")
    if review:
        lines += [f"- problem: {p}" for p in review.get("problems", [])]
        lines += [f"- suggestion: {s}" for s in review.get("suggestions", [])]
    return "\n".join(lines)
