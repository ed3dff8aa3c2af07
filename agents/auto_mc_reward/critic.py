"""The Reward Critic: static checks, execution on recorded views, then an LLM review.

The first two need no LLM and catch what must never reach training (code that does
not parse, breaks the sandbox's rules, raises, hangs or returns non-finite or
wrongly typed values); the LLM review checks that the code means what the task needs.
Everything they send towards an LLM is bounded: component statistics for at most
MAX_NAMES names, each error message MAX_MESSAGE characters, each view MAX_VIEW and
the whole feedback MAX_FEEDBACK; any source, however large or deep, gives error
records, never an exception.
"""

from __future__ import annotations

import json
import re
from typing import Any, Sequence

import numpy as np

from embodied.reward_code import shaped
from embodied.sandbox.sandbox import MAX_MESSAGE, MAX_NAMES

_CODE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)
_JSON = re.compile(r"```(?:json)?\s*\n(\{.*?\})\s*```", re.DOTALL)
_CHUNK = 64
MAX_VIEW = 1_500  # characters of one view's JSON in the feedback
MAX_FEEDBACK = 4_000  # characters of the whole feedback to the Designer
_CUT, _MORE_ROOM = " [...]", 40  # the mark of a cut text; room kept for "... and N more not shown"
PROBE = "def reward(view, memory):\n    return 0.0, {}\n"  # what sandbox_isolation runs: no untrusted code


def extract_code(text: str) -> str | None:
    """The reward function in an LLM answer: the code block defining `reward`, else None."""
    for block in _CODE.findall(text):
        if "def reward" in block:
            return block.strip() + "\n"
    return (
        text.strip() + "\n"
        if text.lstrip().startswith(("def reward", "import", "#")) and "def reward" in text
        else None
    )


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


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marked where it was cut."""
    return text if len(text) <= limit else text[: limit - len(_CUT)] + _CUT


def static_errors(code: str) -> list[dict[str, Any]]:
    """The sandbox's static check as error records (any input, however large or deep: records, never an exception)."""
    from embodied.sandbox import check_source

    return [err.as_dict() for err in check_source(code)]


def sandbox_isolation(timeout_s: float, memory_mb: int, isolation: str) -> dict[str, Any]:
    """The isolation the Critic's sandbox gets on this machine, found before any untrusted code runs.

    Raises IsolationError (one line) under isolation=kernel when the kernel refuses seccomp.
    """
    from embodied.sandbox import RewardSandbox
    from embodied.sandbox.sandbox import IsolationError

    try:
        with RewardSandbox(PROBE, timeout_s=timeout_s, memory_mb=memory_mb, isolation=isolation) as sandbox:
            return dict(sandbox.isolation)
    except IsolationError as err:
        raise IsolationError(f"{err} (for embodied-design-reward: isolation=python)") from None


def execute(
    code: str,
    episodes: Sequence[Sequence[dict]],
    scale_constraint: bool,
    timeout_s: float,
    memory_mb: int,
    isolation: str = "kernel",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the reward over recorded episodes of views; (summary for the LLM, errors).

    Component statistics are kept for the first MAX_NAMES names (the sandbox refuses more).
    """
    from embodied.sandbox import RewardError, RewardSandbox

    components: dict[str, list[float]] = {}
    training: list[float] = []
    on_success, on_death = [], []
    try:
        with RewardSandbox(code, timeout_s=timeout_s, memory_mb=memory_mb, isolation=isolation) as sandbox:
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
                        if name in components or len(components) < MAX_NAMES:
                            components.setdefault(name, []).append(v)
                    if view["done"] and view["death_cause"] is not None:
                        on_death.append(value)
                    elif view["done"]:
                        on_success.append(value)
    except RewardError as err:
        return {}, [err.as_dict()]
    stats = lambda xs: {
        "min": float(np.min(xs)),
        "mean": float(np.mean(xs)),
        "max": float(np.max(xs)),
        "nonzero": float(np.mean(np.asarray(xs) != 0)),
    }  # noqa: E731
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
    """What goes back to the Designer: the errors with their views, or the review's points (at most MAX_FEEDBACK characters)."""
    items = []
    for err in errors:
        where = f" at line {err['line']}" if err.get("line") else ""
        item = f"- {err['kind']}{where}: {clip(str(err['message']), MAX_MESSAGE)}"
        if err.get("view") is not None:
            item += f"\n  on this view: {clip(json.dumps(err['view'], default=str), MAX_VIEW)}"
        items.append(item)
    if review:
        items += [
            f"- {label}: {clip(str(point), MAX_MESSAGE)}"
            for label, key in (("problem", "problems"), ("suggestion", "suggestions"))
            for point in _points(review.get(key))
        ]
    kept: list[str] = []
    size = 0
    for i, item in enumerate(items):
        left = len(items) - i
        if size + len(item) > MAX_FEEDBACK - (0 if left == 1 else _MORE_ROOM):  # keep room to say what was left out
            kept.append(f"- ... and {left} more not shown")
            break
        kept.append(item)
        size += len(item) + 1
    return "\n".join(kept)


def _points(value: Any) -> list[Any]:
    """A review's problems or suggestions as a list (an LLM may give one string, or nothing)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
