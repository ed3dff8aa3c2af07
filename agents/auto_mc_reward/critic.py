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
LAVA_NEAR = 1.5  # cells: lava this close can be walked into next step
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
    achievement: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the reward over recorded episodes of views; (the execution record, errors).

    The record holds component statistics (for the first MAX_NAMES names: the sandbox
    refuses more), the training reward's, and the sparse/dense values at success steps
    (the achievement unlocked at the episode's end) and death steps: what
    `semantic_errors` and the LLM review read.
    """
    from embodied.sandbox import RewardError, RewardSandbox

    components: dict[str, list[float]] = {}
    training: list[float] = []
    at: dict[str, dict[str, list[float]]] = {
        name: {"training": [], "sparse": [], "dense": []} for name in ("success", "death", "lava_approach")
    }
    try:
        with RewardSandbox(code, timeout_s=timeout_s, memory_mb=memory_mb, isolation=isolation) as sandbox:
            for views in episodes:
                sandbox.reset([0])
                results, last_lava = [], None
                for start in range(0, len(views), _CHUNK):  # one slot: memory carries through the episode
                    chunk = list(views[start : start + _CHUNK])
                    results += sandbox.call(chunk, [0] * len(chunk))
                for view, (total, parts) in zip(views, results):
                    value = shaped(total, parts, scale_constraint)
                    training.append(value)
                    for name, v in parts.items():
                        if name in components or len(components) < MAX_NAMES:
                            components.setdefault(name, []).append(v)
                    kinds = []
                    lava = (view.get("near_blocks") or {}).get("lava")
                    if view["done"] and view["death_cause"] is not None:
                        kinds = ["death"]
                    elif view["done"] and achievement and view["achievements"].get(achievement):
                        kinds = ["success"]
                    elif lava is not None and lava <= LAVA_NEAR and (last_lava is None or last_lava > LAVA_NEAR):
                        kinds = ["lava_approach"]  # one step from death: what a dense part must not pay for
                    last_lava = lava
                    for kind in kinds:
                        at[kind]["training"].append(value)
                        for part in ("sparse", "dense"):
                            if part in parts:
                                at[kind][part].append(parts[part])
    except RewardError as err:
        return {}, [err.as_dict()]
    stats = lambda xs: {
        "min": float(np.min(xs)),
        "mean": float(np.mean(xs)),
        "max": float(np.max(xs)),
        "nonzero": float(np.mean(np.asarray(xs) != 0)),
        "distinct": int(min(len(set(xs)), 100)),
    }  # noqa: E731
    rounded = lambda xs: [round(v, 3) for v in xs[:20]]  # noqa: E731
    summary = {
        "episodes": len(episodes),
        "steps": len(training),
        "components": {name: stats(xs) for name, xs in components.items()},
        "training_reward": stats(training) if training else {},
        "reward_at_success_steps": rounded(at["success"]["training"]),
        "reward_at_death_steps": rounded(at["death"]["training"]),
        "at_steps": {kind: {part: rounded(v) for part, v in values.items()} for kind, values in at.items()},
    }
    return summary, []


def _quoted(code: str, words: Sequence[str], limit: int = 4) -> list[dict[str, Any]]:
    """Up to `limit` source lines mentioning any of `words`: what a finding quotes back to the Designer."""
    out = []
    for number, line in enumerate(code.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and any(w in line for w in words):
            out.append({"line": number, "source": clip(stripped, 160)})
            if len(out) == limit:
                break
    return out


def _view_vocabulary() -> dict[str, tuple[str, ...]]:
    """The keys each dict of the view can hold (its values, for target's block and entity)."""
    from embodied.envs.minecraft.engine import ACHIEVEMENTS, ENTITY_CLASSES, LIFE_STATS, MATERIALS
    from embodied.envs.minecraft.view import INVENTORY_ITEMS, MC_KEYS

    entities = tuple(sorted(set(ENTITY_CLASSES.values())))
    return {
        "view": MC_KEYS,
        "inventory": INVENTORY_ITEMS,
        "life_stats": LIFE_STATS,
        "achievements": tuple(ACHIEVEMENTS),
        "near_blocks": MATERIALS,
        "near_entities": entities,
        "location_stats": ("pos", "facing"),
        "target": ("block", "entity"),
        "target.block": MATERIALS,
        "target.entity": entities,
    }


def _view_path(node: Any) -> str | None:
    """'view', 'inventory', 'target.block'...: the view dict an expression like view["target"]["block"] reads."""
    import ast

    keys = []
    while isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        keys.append(node.slice.value)
        node = node.value
    if not (isinstance(node, ast.Name) and node.id == "view") or not all(isinstance(k, str) for k in keys):
        return None
    keys.reverse()
    return "view" if not keys else ".".join(keys)


def _where(name: str, vocabulary: dict[str, tuple[str, ...]]) -> str:
    homes = [
        f"view[{table!r}]"
        for table, keys in vocabulary.items()
        if name in keys and "." not in table and table != "view"
    ]
    return f"; {name!r} is a key of {' and '.join(homes)}" if homes else ""


def _parsed(code: str) -> Any:
    """The code's syntax tree, or None where it does not parse (the format and sandbox stages report that)."""
    import ast

    try:
        return ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _impossible_reads(code: str) -> list[dict[str, Any]]:
    """Reads whose answer never changes: a key a view dict never holds, a membership test on a dict
    that holds every key, a comparison of target's block/entity with a name that does not exist."""
    import ast

    vocabulary = _view_vocabulary()
    fixed = {"view", "inventory", "life_stats", "achievements", "location_stats", "target"}
    tree = _parsed(code)
    if tree is None:
        return []
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        table, key = None, None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            table, key = _view_path(node.value), node.slice.value
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            table, key = _view_path(node.func.value), node.args[0].value
        if table in vocabulary and isinstance(key, str) and key not in vocabulary[table]:
            shown = "view" if table == "view" else f"view[{table!r}]"
            found.append(
                (
                    node.lineno,
                    f"{shown} never holds {key!r} (its keys: {', '.join(vocabulary[table])}){_where(key, vocabulary)}",
                )
            )
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.left, ast.Constant):
            table, item = _view_path(node.comparators[0]), node.left.value
            if isinstance(node.ops[0], (ast.In, ast.NotIn)) and table in fixed and item in vocabulary[table]:
                always = "True" if isinstance(node.ops[0], ast.In) else "False"
                found.append(
                    (
                        node.lineno,
                        f"{item!r} in view[{table!r}] is always {always}: that dict holds every key on every step; read its value, e.g. view[{table!r}][{item!r}], and compare it with the previous step's in memory",
                    )
                )
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.Eq, ast.NotEq)):
            sides = [node.left, node.comparators[0]]
            for this, other in (sides, sides[::-1]):
                table = _view_path(this)
                if table in ("target.block", "target.entity") and isinstance(other, ast.Constant):
                    if isinstance(other.value, str) and other.value not in vocabulary[table]:
                        found.append(
                            (
                                node.lineno,
                                f"view['target'][{table.split('.')[1]!r}] is never {other.value!r} (it is one of {', '.join(vocabulary[table])}, or None)",
                            )
                        )
    seen, findings = set(), []
    for line, message in sorted(found):
        if message not in seen:
            seen.add(message)
            findings.append(
                {"kind": "semantic", "check": "impossible_read", "message": message, "line": line, "view": None}
            )
    return findings[:4]


_MEMORY_READS = {"get", "pop", "keys", "items", "values"}


def _unwritten_memory_reads(code: str) -> list[dict[str, Any]]:
    """Memory keys the reward reads but never stores: memory starts empty in every episode, so such a
    read always gives its default (or raises). Says nothing when memory is written in a way it cannot follow
    (a computed key, update() with a non-literal, memory passed to a function or rebound)."""
    import ast

    tree = _parsed(code)
    if tree is None:
        return []
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    reads: dict[str, int] = {}
    written: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id == "memory"):
            continue
        parent = parents.get(id(node))
        if isinstance(node.ctx, ast.Store):
            return []  # memory rebound
        if isinstance(parent, ast.Subscript) and parent.value is node:
            if not (isinstance(parent.slice, ast.Constant) and isinstance(parent.slice.value, str)):
                return []  # a computed key: cannot follow
            if isinstance(parent.ctx, (ast.Store, ast.Del)) or isinstance(parents.get(id(parent)), ast.AugAssign):
                written.add(parent.slice.value)
            else:
                reads.setdefault(parent.slice.value, parent.lineno)
        elif isinstance(parent, ast.Attribute) and parent.value is node:
            call = parents.get(id(parent))
            args = call.args if isinstance(call, ast.Call) and call.func is parent else None
            if parent.attr == "setdefault" and args and isinstance(args[0], ast.Constant):
                written.add(args[0].value)
            elif parent.attr == "update" and args is not None:
                literal = all(isinstance(a, ast.Dict) for a in args)
                keys = [k for a in args if isinstance(a, ast.Dict) for k in a.keys]
                if not literal or not all(isinstance(k, ast.Constant) for k in keys):
                    return []
                if any(kw.arg is None for kw in call.keywords):
                    return []  # update(**other)
                written.update(k.value for k in keys)
                written.update(kw.arg for kw in call.keywords)
            elif parent.attr in _MEMORY_READS:
                if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str):
                    reads.setdefault(args[0].value, parent.lineno)
            else:
                return []  # clear(), copy() or an attribute it cannot follow
        elif isinstance(parent, ast.Compare) and node in parent.comparators:
            if isinstance(parent.left, ast.Constant) and isinstance(parent.left.value, str):
                reads.setdefault(parent.left.value, parent.lineno)
        else:
            return []  # passed to a function, returned, aliased: it may be written elsewhere
    return [
        {
            "kind": "semantic",
            "check": "unwritten_memory",
            "message": f"memory[{key!r}] is read but never stored: memory starts empty in every episode and holds only "
            f"what the reward stores, so this read never changes; store it first, e.g. memory[{key!r}] = <this step's value> "
            "before returning",
            "line": line,
            "view": None,
        }
        for key, line in sorted(reads.items(), key=lambda kv: kv[1])
        if key not in written
    ][:4]


def semantic_errors(code: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Broken logic the execution record shows, with the offending lines quoted; no LLM needed.

    Constant training reward, a dense part that never changes, sparse non-zero on most steps, sparse not positive at the
    success steps or not negative at the death steps, dense positive when lava comes within reach, and
    reads whose answer never changes (_impossible_reads, _unwritten_memory_reads).
    """
    findings = _impossible_reads(code) + _unwritten_memory_reads(code)
    training = record.get("training_reward") or {}
    dense = (record.get("components") or {}).get("dense", {})
    at = record.get("at_steps") or {}

    def finding(check: str, message: str, words: Sequence[str]) -> None:
        findings.append(
            {
                "kind": "semantic",
                "check": check,
                "message": message,
                "line": None,
                "view": None,
                "lines": _quoted(code, words),
            }
        )

    if training.get("distinct") == 1:
        finding(
            "constant",
            f"the training reward is {training['min']:g} on all {record.get('steps', 0)} recorded steps: its conditions never change, so it teaches nothing",
            ("if ", "sparse", "dense"),
        )
    elif dense.get("distinct") == 1:
        finding(
            "dense_constant",
            f"dense is {dense['min']:g} on every recorded step: it shapes nothing; make it change with progress towards the goal",
            ("dense",),
        )
    sparse = (record.get("components") or {}).get("sparse", {})
    if training.get("distinct", 0) > 1 and sparse.get("nonzero", 0.0) > 0.5:
        finding(
            "sparse_every_step",
            f"sparse is non-zero on {sparse['nonzero']:.0%} of the recorded steps: it must mark only success (> 0) and death (< 0); "
            "put per-step shaping in dense",
            ("sparse",),
        )
    success = at.get("success", {}).get("sparse", [])
    if success and any(v <= 0 for v in success):
        finding(
            "sparse_at_success",
            f"sparse is not positive at the recorded success steps (values {success[:6]}): it must be > 0 when the goal is reached",
            ("sparse",),
        )
    death = at.get("death", {}).get("sparse", [])
    if death and any(v >= 0 for v in death):
        finding(
            "sparse_at_death",
            f"sparse is not negative at the recorded death steps (values {death[:6]}): it must be < 0 when the agent dies (view['death_cause'] is not None)",
            ("sparse", "death_cause"),
        )
    lava = at.get("lava_approach", {}).get("dense", [])
    varies = training.get("distinct", 0) > 1 and dense.get("distinct", 0) > 1
    if varies and len(lava) >= 3 and sum(v > 0 for v in lava) > len(lava) / 2:
        finding(
            "dense_at_lava",
            f"dense is positive on most steps that bring the agent next to lava (values {lava[:6]}): it rewards walking towards what kills it",
            ("dense", "lava"),
        )
    return findings


def feedback(errors: Sequence[dict[str, Any]], review: dict[str, Any] | None, code: str = "") -> str:
    """What goes back to the Designer: the errors with the offending source lines and views, or the review's points.

    At most MAX_FEEDBACK characters.
    """
    lines = code.splitlines()
    items = []
    for err in errors:
        where = f" at line {err['line']}" if err.get("line") else ""
        item = f"- {err['kind']}{where}: {clip(str(err['message']), MAX_MESSAGE)}"
        line = err.get("line")
        if isinstance(line, int) and 0 < line <= len(lines) and lines[line - 1].strip():
            item += f"\n  line {line}: {clip(lines[line - 1].strip(), 160)}"
            item += _hint(str(err["message"]), lines[line - 1])
        for quote in err.get("lines") or ():
            item += f"\n  line {quote['line']}: {quote['source']}"
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


def _hint(message: str, source: str) -> str:
    """A one-line fix for the Python errors small models make most often in reward code ("" if none applies)."""
    if "KeyError" in message and "memory[" in source:
        return "\n  memory starts empty in every episode: read it with memory.get(name, default)"
    if "UnboundLocalError" in message or ("NameError" in message and "is not defined" in message):
        return (
            "\n  give the variable a value at the top of the function (e.g. sparse = 0.0 and dense = 0.0) before any if"
        )
    return ""


def _points(value: Any) -> list[Any]:
    """A review's problems or suggestions as a list (an LLM may give one string, or nothing)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
