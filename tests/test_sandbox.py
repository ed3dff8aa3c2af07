"""Reward sandbox: static checks, runtime layers, limits, return validation and batching."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

import embodied.envs as envs
from embodied.errors import EmbodiedError
from embodied.sandbox import RewardError, RewardSandbox, check_source

ROOT = Path(__file__).resolve().parents[1]

TYPICAL = """
import math
from math import sqrt


def reward(view, memory):
    inv, near = view["inventory"], view["near_blocks"]
    wood = inv["wood"]
    collect = 1.0 * max(0, wood - memory.get("wood", wood))
    memory["wood"] = wood
    dist = near.get("tree")
    if dist is None:
        approach = -0.01
    else:
        approach = 0.1 * (memory.get("tree", dist) - dist)
        memory["tree"] = dist
    seen = memory.setdefault("seen", set())
    pos = view["location_stats"]["pos"]
    explore = 0.0 if pos in seen else 0.01 * sqrt(len(seen) + 1) / math.pi
    seen.add(pos)
    danger = -0.02 * max(0, 5 - view["life_stats"]["health"])
    return collect + approach + explore + danger, {"collect": collect, "approach": approach, "explore": explore, "danger": danger}
"""


def body(*lines: str) -> str:
    """A reward whose line 3 onwards is `lines` (one indentation level)."""
    code = "\n".join(f"    {line}" for line in lines)
    return f"import numpy as np\ndef reward(view, memory):\n{code}\n    return 0.0, {{}}\n"


def in_process(source: str) -> types.FunctionType:
    namespace: dict = {}
    exec(compile(source, "<reward>", "exec"), namespace)
    return namespace["reward"]


@pytest.fixture(scope="module")
def views() -> list[dict]:
    """Real info["mc"] views from a random-policy Crafter run."""
    env = envs.make("embodied/Crafter-CollectWood-v0", obs_mode="symbolic")
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    out = [info["mc"]]
    while len(out) < 40:
        _, _, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
        out.append(info["mc"])
        if terminated or truncated:
            _, info = env.reset(seed=len(out))
    env.close()
    return out


def test_template_and_typical_reward_pass_the_checks() -> None:
    assert check_source(body("pass")) == []
    assert check_source(TYPICAL) == []


ALLOWED = """
import math
import numpy as np
import numpy.linalg
from math import sqrt as root
from numpy import linalg

SCALE = 2.0


def helper(x, *rest, scale=SCALE, **options):
    return x * scale


def reward(view, memory, /):
    total = 0
    def bump(k):
        nonlocal total
        total += k
    for _ in range(3):
        bump(1)
    try:
        missing = view["nope"]
    except KeyError:
        missing = 0
    match view["target"]:
        case {"block": "tree"}:
            bump(10)
        case _:
            pass
    print(f"{total} {missing}")
    ranked = sorted({k: v for k, v in view["near"].items()}, key=lambda k: -view["near"][k])
    norm = float(linalg.norm(np.array([3.0, 4.0]))) + float(numpy.linalg.norm([0.0, 1.0]))
    return helper(total) + root(norm) + math.floor(1.5), {"n": float(len(ranked)), "norm": norm}
"""


def test_allowed_constructs_pass_and_run_like_in_process() -> None:
    assert check_source(ALLOWED) == []
    view = {"target": {"block": "tree"}, "near": {"tree": 2.0, "water": 5.0}}
    with RewardSandbox(ALLOWED) as sandbox:
        assert sandbox.call([view], [0]) == [in_process(ALLOWED)(view, {})]


FORBIDDEN = [
    ("import os", 3),
    ("import subprocess", 3),
    ("from os import system", 3),
    ("import socket", 3),
    ("import numpy.lib", 3),
    ("from numpy import load", 3),
    ("from numpy.lib import stride_tricks", 3),
    ("__import__('os')", 3),
    ("open('/etc/passwd')", 3),
    ("().__class__.__bases__[0].__subclasses__()", 3),
    ("getattr(np, 'load')", 3),
    ("np.load('x.npy')", 3),
    ("m = np; m.save('x', 1)", 3),
    ("np.zeros(3).tofile('x')", 3),
    ("np.zeros(3).ctypes", 3),
    ("np.ctypeslib", 3),
    ("np.lib.stride_tricks.as_strided(np.zeros(1), (9,), (8,))", 3),
    ("np.frombuffer(b'x', np.uint8)", 3),
    ("eval('1')", 3),
    ("exec('x = 1')", 3),
    ("compile('1', 'f', 'eval')", 3),
    ("globals()", 3),
    ("vars()", 3),
    ("type('A', (), {})", 3),
    ("breakpoint()", 3),
    ("g = (i for i in [1]).gi_frame", 3),
    ("global g", 3),
    ("yield 1", 3),
    ("class A: pass", 3),
    ("_secret = 1", 3),
    ("match view:", "    case dict(__class__=c): pass", 4),
]


@pytest.mark.parametrize("case", FORBIDDEN, ids=lambda c: c[0])
def test_forbidden_code_is_rejected_with_its_line(case: tuple) -> None:
    *lines, line = case
    source = body(*lines)
    problems = check_source(source)
    assert ("forbidden", line) in {(p.kind, p.line) for p in problems}, problems
    with pytest.raises(RewardError) as err:
        RewardSandbox(source)
    assert err.value.kind == "forbidden" and err.value.view is None


def test_star_import_is_forbidden() -> None:
    assert [(p.kind, p.line) for p in check_source("from numpy import *\n" + body("pass"))] == [("forbidden", 1)]


SIGNATURE = [
    ("def reward(view):\n    return 0.0, {}\n", 1),
    ("def reward(view, memory, extra):\n    return 0.0, {}\n", 1),
    ("def reward(*args):\n    return 0.0, {}\n", 1),
    ("def reward(view, **kwargs):\n    return 0.0, {}\n", 1),
    ("def reward(view, *, memory):\n    return 0.0, {}\n", 1),
    ("def score(view, memory):\n    return 0.0, {}\n", None),
    ("reward = lambda view, memory: (0.0, {})\n", None),
    ("def reward(view, memory):\n    return 0.0, {}\ndef reward(view, memory):\n    return 1.0, {}\n", 3),
    ("def reward(view, memory):\n    return 0.0, {}\nreward = 3\n", 3),
]


@pytest.mark.parametrize("source, line", SIGNATURE)
def test_wrong_signature_is_rejected(source: str, line: int | None) -> None:
    assert ("signature", line) in {(p.kind, p.line) for p in check_source(source)}
    with pytest.raises(RewardError, match="signature"):
        RewardSandbox(source)


@pytest.mark.parametrize(
    "source, line",
    [
        ("def reward(view, memory)\n    return 0.0, {}\n", 1),
        ("return 1\ndef reward(view, memory):\n    import os\n    return 0.0, {}\n", 1),
        ("def reward(view, memory):\n    return " + "+".join(["1"] * 20000) + ", {}\n", None),  # too deep to parse
    ],
)
def test_syntax_errors_are_reported_with_their_line(source: str, line: int) -> None:
    assert [(p.kind, p.line) for p in check_source(source)] == [("syntax", line)]


def test_memory_persists_per_slot_until_reset() -> None:
    counter = 'def reward(view, memory):\n    memory["n"] = memory.get("n", 0) + 1\n    return memory["n"], {"n": memory["n"], "step": view["step"]}\n'
    v = [{"step": i} for i in range(3)]
    with RewardSandbox(counter) as sandbox:
        out = sandbox.call(v, [0, 1, 0])
        assert out == [(1.0, {"n": 1.0, "step": 0.0}), (1.0, {"n": 1.0, "step": 1.0}), (2.0, {"n": 2.0, "step": 2.0})]
        assert all(type(t) is float and all(type(c) is float for c in comps.values()) for t, comps in out)
        assert [t for t, _ in sandbox.call(v[:2], [0, 1])] == [3.0, 2.0]
        sandbox.reset([0])
        assert [t for t, _ in sandbox.call(v[:2], [0, 1])] == [1.0, 3.0]
        assert sandbox.call([], []) == []
        assert sandbox.stats["calls"] == 7 and sandbox.stats["batches"] == 3


def test_components_may_differ_from_call_to_call() -> None:
    source = 'def reward(view, memory):\n    s = view["step"]\n    return s, ({"even": s} if s % 2 == 0 else {"odd": s, "one": 1} if s % 3 else {})\n'
    batch = [{"step": i} for i in range(7)]
    with RewardSandbox(source) as sandbox:
        assert sandbox.call(batch, [0] * 7) == [in_process(source)(view, {}) for view in batch]


def test_batched_results_equal_in_process_on_crafter_views(views: list[dict]) -> None:
    fn, memories = in_process(TYPICAL), [{} for _ in range(4)]
    expected = [fn(view, memories[i % 4]) for i, view in enumerate(views)]
    got = []
    with RewardSandbox(TYPICAL) as sandbox:
        for start in range(0, len(views), 16):
            got += sandbox.call(views[start : start + 16], [i % 4 for i in range(start, min(start + 16, len(views)))])
    assert got == expected and len(got) == len(views)


def test_exception_reports_the_innermost_line_and_the_offending_view(views: list[dict]) -> None:
    source = 'def helper(x):\n    return 1 / x\n\ndef reward(view, memory):\n    return helper(0 if view["step"] == 5 else 1), {}\n'
    batch = [dict(views[0], step=i) for i in range(8)]
    with RewardSandbox(source) as sandbox:
        with pytest.raises(RewardError) as err:
            sandbox.call(batch, list(range(8)))
        assert (err.value.kind, err.value.line, err.value.message) == (
            "exception",
            2,
            "ZeroDivisionError: division by zero",
        )
        assert (
            err.value.view == batch[5] and str(err.value) == "exception at line 2: ZeroDivisionError: division by zero"
        )
        assert sandbox.call(batch[:1], [0]) == [(1.0, {})]  # not fatal: the worker lives on


@pytest.mark.parametrize(
    "hang, line", [("while True: pass", 4), ("sum(range(10**12))", None)], ids=["python loop", "C loop"]
)
def test_timeout_kills_the_worker_and_reset_restarts_it(hang: str, line: int | None) -> None:
    """A Python loop reports its line before the worker is killed; a call stuck in C cannot."""
    source = body('if view["step"] == 2:', f"    {hang}")
    batch = [{"step": i} for i in range(4)]
    with RewardSandbox(source, timeout_s=0.3) as sandbox:
        started = time.monotonic()
        with pytest.raises(RewardError) as err:
            sandbox.call(batch, [0, 1, 2, 3])
        assert (err.value.kind, err.value.line, err.value.view) == ("timeout", line, batch[2])
        assert time.monotonic() - started < 5
        with pytest.raises(RewardError, match="call reset"):
            sandbox.call(batch[:1], [0])
        sandbox.reset([0])
        assert sandbox.call(batch[:2], [0, 1]) == [(0.0, {}), (0.0, {})]
        assert sandbox.stats["starts"] == 2


def test_a_pause_in_the_parent_is_not_a_reward_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent stalls (as in a long GC) after sending a fast call: the waiting reply counts."""
    with RewardSandbox(body(), timeout_s=0.2) as sandbox:
        write = sandbox._write

        def write_then_stall(*args: object) -> None:
            write(*args)
            time.sleep(0.5)

        monkeypatch.setattr(sandbox, "_write", write_then_stall)
        assert sandbox.call([{"step": 0}], [0]) == [(0.0, {})]


def test_the_shared_page_cannot_move_the_deadline() -> None:
    """The worker can write anything to the progress page: the deadline is the parent's own clock."""
    source = body("sum(range(10**12))")
    with RewardSandbox._unchecked(source, timeout_s=0.5) as sandbox:
        sandbox._progress[:] = b"\xff" * len(sandbox._progress)
        started = time.monotonic()
        with pytest.raises(RewardError) as err:
            sandbox.call([{"step": 0}], [0])
        assert err.value.kind == "timeout" and time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "hog",
    [
        "x = [0] * 10**10",
        "for _ in range(100): memory.setdefault('hoard', []).append([0] * 10**7)",
    ],
    ids=["one huge list", "growing memory"],
)
def test_unbounded_allocation_is_stopped_as_memory(hog: str) -> None:
    source = body('if view["step"] == 1:', f"    {hog}")
    batch = [{"step": i} for i in range(3)]
    with RewardSandbox(source, memory_mb=256, timeout_s=10) as sandbox:
        with pytest.raises(RewardError) as err:
            sandbox.call(batch, [0, 1, 2])
        assert err.value.kind == "memory" and err.value.view == batch[1]
        sandbox.reset([0])
        assert sandbox.call(batch[:1], [0]) == [(0.0, {})]


def test_cpu_limit_stops_a_batch_that_burns_cpu() -> None:
    with RewardSandbox(body("sum(range(10**12))"), timeout_s=60, cpu_s=1) as sandbox:
        started = time.monotonic()
        with pytest.raises(RewardError) as err:
            sandbox.call([{"step": 0}], [0])
        assert err.value.kind == "cpu" and err.value.view == {"step": 0}
        assert time.monotonic() - started < 10


BAD = """
import numpy as np
def reward(view, memory):
    case = view["case"]
    if case == "nan total": return float("nan"), {}
    if case == "inf component": return 1.0, {"a": -float("inf")}
    if case == "numpy nan": return 1.0, {"a": np.float64("nan")}
    if case == "string total": return "1.0", {}
    if case == "bare number": return 1.0
    if case == "three items": return 1.0, {}, {}
    if case == "one item": return (1.0,)
    if case == "bool total": return True, {}
    if case == "bool component": return 1.0, {"a": np.True_}
    if case == "int name": return 1.0, {1: 1.0}
    if case == "list components": return 1.0, [1.0]
    if case == "none": return None
    if case == "array total": return np.array(1.0), {}
    if case == "huge int": return 10 ** 400, {}
    if case == "nan, known names": return float("nan"), {"b": 2}
    if case == "inf, known names": return 1, {"b": float("inf")}
    if case == "bool, known names": return 1, {"b": True}
    if case == "huge, known names": return 10 ** 400, {"b": 2}
    if case == "too many components": return 1.0, {str(i): 0.0 for i in range(65)}
    if case == "long name": return 1.0, {"x" * 101: 0.0}
    if case == "numpy scalars": return np.float32(0.5), {"a": np.int64(2)}
    return 1, {"b": 2}
"""
BAD_CASES = [
    "nan total",
    "inf component",
    "numpy nan",
    "string total",
    "bare number",
    "three items",
    "one item",
    "bool total",
    "bool component",
    "int name",
    "list components",
    "none",
    "array total",
    "huge int",
    "too many components",
    "long name",
    "nan, known names",
    "inf, known names",
    "bool, known names",
    "huge, known names",
]  # the last four after a good item: the fast path


@pytest.fixture(scope="module")
def bad_sandbox():
    with RewardSandbox(BAD) as sandbox:
        yield sandbox


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_returns_are_reported_not_replaced(bad_sandbox: RewardSandbox, case: str) -> None:
    batch = [{"case": "ok"}, {"case": case}, {"case": "ok"}]
    with pytest.raises(RewardError) as err:
        bad_sandbox.call(batch, [0, 1, 2])
    assert err.value.kind == "bad_return" and err.value.view == {"case": case}
    assert bad_sandbox.call([{"case": "numpy scalars"}, {"case": "ok"}], [0, 1]) == [
        (0.5, {"a": 2.0}),
        (1.0, {"b": 2.0}),
    ]


RUNTIME = [
    (["__import__('os')"], "forbidden", "import of 'os'", 3),
    (["import socket"], "forbidden", "import of 'socket'", 3),
    (
        ["try:", "    __import__('subprocess')", "except Exception:", "    pass"],
        "forbidden",
        "import of 'subprocess'",
        4,
    ),
    (
        ["[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'socket'][0]()"],
        "exception",
        "IndexError",
        3,
    ),
    (
        [
            "w = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]",
            "w.__init__.__globals__['__builtins__']['open']('/etc/hostname')",
        ],
        "forbidden",
        "open",
        4,
    ),
    (["(i for i in [1]).gi_frame"], "forbidden", "object.__getattr__", 3),
    (["open('/etc/passwd')"], "exception", "NameError", 3),
    (["getattr(np, 'load')"], "exception", "NameError", 3),
]


@pytest.mark.parametrize("lines, kind, needle, line", RUNTIME, ids=lambda x: x[0] if isinstance(x, list) else None)
def test_runtime_layers_stop_code_that_skipped_the_static_checks(
    lines: list[str], kind: str, needle: str, line: int
) -> None:
    source = body(*lines)
    assert check_source(source)  # the static layer alone would have caught it
    with RewardSandbox._unchecked(source) as sandbox:
        with pytest.raises(RewardError) as err:
            sandbox.call([{"step": 7}], [0])
        assert (err.value.kind, err.value.line, err.value.view) == (
            kind,
            line,
            {"step": 7},
        ) and needle in err.value.message
        if kind == "forbidden":  # fatal: the worker is gone until reset
            with pytest.raises(RewardError, match="call reset"):
                sandbox.call([{"step": 7}], [0])


def test_escape_to_os_system_is_blocked(tmp_path: Path) -> None:
    marker = tmp_path / "escaped"
    source = body(
        "w = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == '_wrap_close'][0]",
        f"w.__init__.__globals__['system']('touch {marker}')",
    )
    with RewardSandbox._unchecked(source) as sandbox:
        with pytest.raises(RewardError, match="os.system is blocked"):
            sandbox.call([{}], [0])
    assert not marker.exists()


def test_module_level_failures_surface_at_construction() -> None:
    with pytest.raises(RewardError) as err:
        RewardSandbox("x = 1 / 0\n" + body("pass"))
    assert (err.value.kind, err.value.line, err.value.view) == ("exception", 1, None)
    with pytest.raises(RewardError, match="^timeout at line [12]: running the module's top level"):  # the loop's lines
        RewardSandbox("while True:\n    pass\n" + body("pass"), timeout_s=0.3)


def test_reward_error_is_a_one_line_json_ready_picklable_record(views: list[dict]) -> None:
    err = RewardError("exception", "ValueError:\n  bad\tthing", 4, views[3])
    assert isinstance(err, EmbodiedError) and str(err) == "exception at line 4: ValueError: bad thing"
    record = json.loads(json.dumps(err.as_dict()))
    assert (
        record["kind"] == "exception"
        and record["line"] == 4
        and record["view"]["location_stats"]["pos"] == list(views[3]["location_stats"]["pos"])
    )
    again = pickle.loads(pickle.dumps(err))
    assert (again.kind, again.message, again.line, again.view, str(again)) == (
        err.kind,
        err.message,
        err.line,
        err.view,
        str(err),
    )
    assert str(RewardError("signature", "no reward")) == "signature: no reward"
    with pytest.raises(ValueError):
        RewardError("oops", "unknown kind")


def test_close_stops_the_worker() -> None:
    sandbox = RewardSandbox(body("pass"))
    pid = sandbox._proc.pid
    sandbox.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="closed"):
        sandbox.call([{}], [0])


def test_overhead_benchmark_runs() -> None:
    """The benchmark's code path (its numbers come from a full run, not from here)."""
    proc = subprocess.run(
        [sys.executable, "benchmarks/sandbox_overhead.py", "--seconds", "0.05", "--repeats", "1", "--views", "64"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        "| typical | kernel, batch 16 |" in proc.stdout
        and "| typical | python, batch 16 |" in proc.stdout
        and "| numpy | in-process |" in proc.stdout
    )
    assert proc.stdout.strip().splitlines()[-1].startswith("command: python benchmarks/sandbox_overhead.py")
