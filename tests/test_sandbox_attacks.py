"""Attacks on the reward sandbox, each asserting that its effect did not happen.

Most attacks run twice: with every layer (`RewardSandbox`, or `_unchecked` where the
static check would stop the source first) and with the kernel layer alone
(`_unchecked(guards=False)`: real builtins, no audit hook), so the kernel is tested on
its own. Marker files live in pytest's tmp_path, which the worker could reach if any
filesystem access were left to it.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from embodied.sandbox import RewardError, RewardSandbox, check_source
from embodied.sandbox.sandbox import STDERR_CAP

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the kernel layer is Linux-only")
VIEW = {"step": 0, "inventory": {"wood": 1}}


def reward(*lines: str, head: str = "import numpy as np") -> str:
    """A reward module: `head`, then `lines` as the body of reward(view, memory) returning (0.0, {})."""
    code = "\n".join(f"    {line}" for line in lines)
    return f"{head}\ndef reward(view, memory):\n{code}\n    return 0.0, {{}}\n"


def kernel_only(source: str, **limits: object) -> RewardSandbox:
    sandbox = RewardSandbox._unchecked(source, guards=False, **limits)
    assert sandbox.isolation["seccomp"], sandbox.isolation
    return sandbox


def both(source: str, **limits: object) -> list[RewardSandbox]:
    """The same reward with every runtime layer and with the kernel layer alone (static checks skipped)."""
    return [RewardSandbox._unchecked(source, **limits), kernel_only(source, **limits)]


def fails(sandbox: RewardSandbox, view: dict = VIEW) -> RewardError:
    with sandbox, pytest.raises(RewardError) as err:
        sandbox.call([view], [0])
    return err.value


def test_the_kernel_layer_is_on() -> None:
    """getcwd is harmless but not on the allow-list: EPERM can only come from the seccomp filter."""
    source = reward(
        "try:",
        "    os.getcwd()",
        "    errno = 0",
        "except OSError as e:",
        "    errno = e.errno",
        "return 0.0, {'errno': float(errno)}",
        head="import os",
    )
    with kernel_only(source) as sandbox:
        assert sandbox.call([VIEW], [0]) == [(0.0, {"errno": 1.0})]
        assert sandbox.isolation["landlock"] >= 1 and sandbox.isolation["netns"]


# --- the escapes of the issue: real builtins, then os, open, setattr ------------------------------

ESCAPE = "b = np.random.default_rng.func_globals['__builtins__']"


@pytest.mark.parametrize(
    "action",
    [
        "b.__import__('os').open({marker!r}, 0o101)",
        "b.open({marker!r}, 'w').write('x')",
        "b.__import__('os').system('touch {marker}')",
        "b.__import__('os').execv('/bin/touch', ['touch', {marker!r}])",
        "b.__import__('os').posix_spawn('/bin/touch', ['touch', {marker!r}], {{}})",
    ],
)
def test_escape_through_func_globals_creates_no_file(tmp_path: Path, action: str) -> None:
    marker = str(tmp_path / "escaped")
    source = reward(ESCAPE, action.format(marker=marker))
    assert any(p.kind == "forbidden" for p in check_source(source))  # the static layer names it
    for sandbox in both(source):
        assert fails(sandbox).kind in ("forbidden", "exception")
    assert not os.path.exists(marker)


@pytest.mark.parametrize(
    "route",
    [
        "__import__('os').open({marker!r}, os.O_CREAT | os.O_WRONLY)",
        "__import__('io').open({marker!r}, 'w')",
        "sys.modules['ctypes'].CDLL(None).creat({marker!r}.encode(), 0o644)",
        "sys.modules['ctypes'].CDLL(None).syscall(257, -100, {marker!r}.encode(), 0o101, 0o644)",
    ],
)
def test_every_python_route_to_open_meets_the_kernel(tmp_path: Path, route: str) -> None:
    marker = str(tmp_path / "opened")
    err = fails(kernel_only(reward(route.format(marker=marker), head="import os, sys")))
    assert err.kind == "forbidden" and "kernel" in err.message
    assert not os.path.exists(marker)


@pytest.mark.parametrize(
    "route",
    [
        "sys.modules['ctypes'].CDLL(None).socket(2, 1, 0)",
        "sys.modules['ctypes'].CDLL(None).socket(1, 1, 0)",
        "sys.modules['ctypes'].CDLL(None).syscall(41, 2, 2, 0)",
        "__import__('socket').create_connection(('127.0.0.1', 9))",
    ],
)
def test_every_route_to_a_socket_meets_the_kernel(route: str) -> None:
    err = fails(kernel_only(reward(route, head="import sys")))
    assert err.kind == "forbidden" and "kernel" in err.message


@pytest.mark.parametrize(
    "call",
    [
        "os.fork()",
        "os.kill(os.getppid(), signal.SIGKILL)",
        "os.kill(0, signal.SIGKILL)",
        "sys.modules['ctypes'].CDLL(None).ptrace(16, os.getppid(), 0, 0)",
        "resource.setrlimit(resource.RLIMIT_CPU, (10**6, 10**6))",
    ],
)
def test_processes_signals_and_limits_are_refused_and_the_parent_lives(call: str) -> None:
    source = reward(call, head="import os, sys, signal, resource")
    err = fails(kernel_only(source))
    assert err.kind == "forbidden" and "kernel" in err.message
    assert os.getpid() > 0  # still here: the SIGKILL did not reach the parent (or its process group)


def test_reading_the_parents_environment_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-0123")
    source = reward(
        "text = open(f'/proc/{os.getppid()}/environ').read()", "return 0.0, {text[:90]: 1.0}", head="import os"
    )
    err = fails(kernel_only(source))
    assert err.kind == "forbidden" and "sk-test" not in str(err)


def test_the_worker_inherits_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-0123")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-test-secret")
    source = reward("return 0.0, {k + '=' + v: 1.0 for k, v in os.environ.items()}", head="import os")
    with kernel_only(source) as sandbox:
        ((_, names),) = sandbox.call([VIEW], [0])
    assert not any("secret" in name for name in names)
    assert {name.split("=")[0] for name in names} <= {
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_CORETYPE",
        "OPENBLAS_L2_SIZE",
        "LD_LIBRARY_PATH",
        "LC_CTYPE",
    }  # set by Python's own C-locale coercion (PEP 538)


def test_no_descriptor_but_the_pipes_is_inherited(tmp_path: Path) -> None:
    leaked = open(tmp_path / "parent-file", "w")  # noqa: SIM115 - kept open while the worker starts
    os.set_inheritable(leaked.fileno(), True)
    try:
        source = reward(f"os.fstat({leaked.fileno()})", head="import os")
        err = fails(kernel_only(source))
        assert err.kind == "exception" and "Bad file descriptor" in err.message
    finally:
        leaked.close()
    assert (tmp_path / "parent-file").read_text() == ""


# --- error reports never run reward code -------------------------------------------------------------


def test_error_formatting_runs_no_reward_code(tmp_path: Path) -> None:
    """A numpy print formatter plus an exception holding an array: the formatter never runs."""
    marker = tmp_path / "formatter-ran"
    head = f"import numpy as np\n{ESCAPE}\nos = b.__import__('os')"
    source = reward(
        f"np.set_printoptions(formatter={{'all': lambda x: os.open({str(marker)!r}, 0o101) and 'x'}})",
        "raise KeyError(np.array([1.0, 2.0]))",
        head=head,
    )
    for sandbox in both(source):
        err = fails(sandbox)
        assert err.kind == "exception" and "<ndarray>" in err.message, err
    assert not marker.exists()


def test_an_exception_with_a_hostile_str_is_reported_without_calling_it(tmp_path: Path) -> None:
    marker = tmp_path / "str-ran"
    source = f"""
import numpy as np
{ESCAPE}
os = b.__import__('os')
def hostile(self, *args):
    os.open({str(marker)!r}, 0o101)
    return "boom"
Boom = b.type("Boom", (Exception,), {{"__str__": hostile, "__repr__": hostile, "args": b.property(hostile)}})
def reward(view, memory):
    raise Boom("plain")
"""
    for sandbox in both(source):
        err = fails(sandbox)
        assert err.kind == "exception" and err.message == "Boom: plain" and err.line == 10
    assert not marker.exists()


# --- the parent trusts nothing it reads -----------------------------------------------------------


def test_a_half_written_reply_times_out_instead_of_hanging() -> None:
    source = reward("os.write(int(sys.argv[2]), b'\\x10\\x00')", "while True: pass", head="import os, sys")
    started = time.monotonic()
    err = fails(kernel_only(source, timeout_s=0.5))
    assert err.kind == "timeout" and time.monotonic() - started < 1.5


def test_a_reply_claiming_a_gigabyte_is_refused_without_allocating_it() -> None:
    source = reward(
        "os.write(int(sys.argv[2]), struct.pack('<I', 2**30) + b'x' * 1000)",
        "while True: pass",
        head="import os, sys, struct",
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err = fails(kernel_only(source, timeout_s=2.0))
    assert err.kind == "protocol" and "1073741824-byte reply" in err.message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: no 1 GiB buffer


@pytest.mark.parametrize(
    "header",
    [
        '{"schemas": [["a"]], "ids": null}',  # one value promised, none sent
        '{"schemas": [[1]], "ids": null}',
        '{"schemas": "x", "ids": 5}',
        "[1, 2]",
        '{"error": {"kind": "rm -rf", "message": 5}}',
    ],
)
def test_a_forged_reply_is_a_protocol_error(header: str) -> None:
    source = reward(
        f"h = {header!r}.encode()",
        "body = struct.pack('<I', len(h)) + h",
        "os.write(int(sys.argv[2]), struct.pack('<I', len(body)) + body)",
        "while True: pass",
        head="import os, sys, struct",
    )
    err = fails(kernel_only(source, timeout_s=2.0))
    assert err.kind == "protocol"


def test_patched_reply_encoder_cannot_smuggle_non_finite_values() -> None:
    """The reward replaces the worker's own json/math: the parent validates with its own modules."""
    patched = "math.isfinite = lambda x: True", "return float('nan'), {'a': float('inf')}"
    everything = "sys.modules['math'].isfinite = sys.modules['json'].dumps = lambda *a, **k: 'x'", *patched
    for sandbox in (
        RewardSandbox._unchecked(reward(*patched, head="import math")),
        kernel_only(reward(*patched, head="import math")),
    ):
        err = fails(sandbox)
        assert err.kind == "bad_return" and "finite" in err.message
    err = fails(kernel_only(reward(*everything, head="import math, sys")))
    assert err.kind == "protocol"


def test_patched_math_ceil_cannot_lift_the_cpu_limit() -> None:
    source = reward("sys.modules['math'].ceil = lambda x: 2**40", "sum(range(10**12))", head="import sys")
    started = time.monotonic()
    err = fails(kernel_only(source, timeout_s=60, cpu_s=1))
    assert err.kind == "cpu" and time.monotonic() - started < 10


def test_timeout_is_for_the_whole_batch() -> None:
    """32 views at 0.25 s each: the 1 s limit is for the call, not per view."""
    source = reward("t = time.monotonic()", "while time.monotonic() - t < 0.25: pass", head="import time")
    with kernel_only(source, timeout_s=1.0) as sandbox:
        started = time.monotonic()
        with pytest.raises(RewardError) as err:
            sandbox.call([VIEW] * 32, list(range(32)))
        assert err.value.kind == "timeout" and time.monotonic() - started < 2.0


def test_stderr_is_capped() -> None:
    source = reward("for _ in range(200): os.write(2, b'x' * 65536)", head="import os")
    with kernel_only(source, timeout_s=10) as sandbox:
        sandbox.call([VIEW], [0])
        assert len(sandbox.stderr) <= STDERR_CAP + 16


def test_new_component_names_every_step_are_capped() -> None:
    source = reward("memory['n'] = memory.get('n', 0) + 1", "return 0.0, {'c' + str(memory['n']): 1.0}")
    with RewardSandbox(source) as sandbox:
        with pytest.raises(RewardError) as err:
            for _ in range(100):
                sandbox.call([VIEW], [0])
        assert err.value.kind == "bad_return" and "distinct component names" in err.value.message


# --- state does not leak between slots or episodes -------------------------------------------------

LEAKY = """
SEEN = []
COUNT = {"calls": 0}
def reward(view, memory):
    COUNT["calls"] += 1
    memory["mine"] = view["step"]
    SEEN.append(memory)
    others = [m.get("mine") for m in SEEN if m is not memory]
    return 0.0, {"calls": float(COUNT["calls"]), "others": float(len(others))}
"""


def test_module_level_state_is_fresh_per_slot_and_per_episode() -> None:
    with RewardSandbox(LEAKY) as sandbox:
        first = sandbox.call([{"step": 1}, {"step": 2}], [0, 1])
        assert first == [(0.0, {"calls": 1.0, "others": 0.0})] * 2  # slot 1 does not see slot 0's memory
        assert sandbox.call([{"step": 3}], [0]) == [(0.0, {"calls": 2.0, "others": 0.0})]
        sandbox.reset([0])
        assert sandbox.call([{"step": 4}, {"step": 5}], [0, 1]) == [
            (0.0, {"calls": 1.0, "others": 0.0}),
            (0.0, {"calls": 2.0, "others": 0.0}),
        ]


def test_reassigning_a_module_attribute_stays_in_its_slot() -> None:
    source = reward("if view['step'] == 0:", "    np.sum = lambda x: -1.0", "return float(np.sum([1.0, 2.0])), {}")
    with RewardSandbox(source) as sandbox:
        assert sandbox.call([{"step": 0}, {"step": 1}], [0, 1]) == [(-1.0, {}), (3.0, {})]
        sandbox.reset([0])
        assert sandbox.call([{"step": 1}], [0]) == [(3.0, {})]


# --- the checker never crashes its caller -----------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "f = " + "lambda: " * 3000 + "1",
        "x = " + "(" * 5000 + ")" * 5000,
        "x = " + "[" * 100 + "]" * 100 + "\n" + "def reward(view, memory):\n    return " + "-" * 100000 + "1, {}\n",
        b"def reward(view, memory):\n    return 0.0, {'\xff': 1.0}\n",
        "# " + "x" * 10_000_000 + "\ndef reward(view, memory):\n    return 0.0, {}\n",
        "def reward(view, memory):\n    return 0.0, {}\n\x00",
        "def reward(view, memory):\n    return '\ud800', {}\n",
    ],
)
def test_bad_input_to_the_checker_is_a_reward_error(source: str | bytes) -> None:
    problems = check_source(source)
    assert problems and all(isinstance(p, RewardError) for p in problems)
    with pytest.raises(RewardError):
        RewardSandbox(source)


# --- and it runs ordinary rewards -----------------------------------------------------------------

ORDINARY = """
from __future__ import annotations
import math
from math import sqrt
from typing import Any, Optional
from collections import defaultdict, deque
import numpy as np


def closeness(d: Optional[float], scale: float = 3.0) -> float:
    return 0.0 if d is None else math.exp(-d / scale)


def reward(view: dict[str, Any], memory: dict[str, Any]) -> tuple[float, dict[str, float]]:
    inv = view["inventory"]
    stats = np.array([v for v in view["life_stats"].values()], dtype=float)
    dir = float(stats.min() + stats.max() + stats.sum() + stats.mean() + stats.std())
    sum_ = float(np.clip(stats, 0, 5).sum()) + float(stats.any()) + float(stats.all())
    text = f"{stats} {stats!r} {str(stats)} {stats.mean():.2f}" + "got_{}".format(inv["wood"])
    counts = memory.setdefault("counts", defaultdict(int))
    counts[view["target"]["block"]] += 1
    recent = memory.setdefault("recent", deque(maxlen=3))
    recent.append(inv["wood"])
    match view["target"]["block"]:
        case "tree":
            facing = 0.1
        case "water" | "lava":
            facing = -0.1
        case _:
            facing = 0.0
    squares = [x * x for x in range(3)]
    max = sqrt(sum(squares))
    near = closeness(view["near_blocks"].get("tree"))
    total = 0.001 * dir + 0.001 * sum_ + facing + near + 0.0 * max + 0.0 * len(text)
    return total, {"sparse": 0.0, "dense": total, "counts": float(len(counts)), "recent": float(len(recent))}
"""


def test_ordinary_llm_style_rewards_run(tmp_path: Path) -> None:
    assert check_source(ORDINARY) == []
    view = {
        "inventory": {"wood": 2},
        "life_stats": {"health": 9, "food": 8, "drink": 7, "energy": 6},
        "target": {"block": "tree", "entity": None},
        "near_blocks": {"tree": 2.0},
    }
    namespace: dict = {}
    exec(compile(ORDINARY, "<reward>", "exec"), namespace)
    expected = namespace["reward"](view, {})
    with RewardSandbox(ORDINARY) as sandbox:
        assert sandbox.call([view, view], [0, 1]) == [expected, expected]


# --- where the kernel refuses -------------------------------------------------------------------------

DENY_SECCOMP = textwrap.dedent("""
    import ctypes, platform, sys
    from embodied.sandbox import kernel
    column, arch = kernel.ARCHES[platform.machine()]
    nr = kernel.SYSCALLS["seccomp"][column]
    prog = [(0x20, 0, 0, 0), (0x15, 0, 1, nr), (0x06, 0, 0, kernel.RET_ERRNO | 1), (0x06, 0, 0, kernel.RET_ALLOW)]
    libc = ctypes.CDLL(None, use_errno=True)
    filters = (kernel._SockFilter * len(prog))(*(kernel._SockFilter(*i) for i in prog))
    assert libc.prctl(kernel.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    assert libc.prctl(22, 2, ctypes.byref(kernel._SockFprog(len(prog), filters)), 0, 0) == 0  # PR_SET_SECCOMP
    from embodied.sandbox import RewardSandbox
    from embodied.sandbox.sandbox import IsolationError
    source = "def reward(view, memory):\\n    return 1.0, {}\\n"
    try:
        RewardSandbox(source)
    except IsolationError as err:
        print("refused:", err)
    with RewardSandbox(source, isolation="python") as sandbox:
        print("python:", sandbox.call([{}], [0]), sandbox.isolation["seccomp"])
""")


def test_a_kernel_that_refuses_seccomp_stops_untrusted_code_unless_isolation_python() -> None:
    """A parent whose own filter makes seccomp() fail: the refusal is real, not simulated."""
    out = subprocess.run([sys.executable, "-c", DENY_SECCOMP], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    refused, python = out.stdout.strip().splitlines()
    assert refused.startswith("refused:") and "reward.isolation=python" in refused and "\n" not in refused
    assert python == "python: [(1.0, {})] False"


def test_a_parent_killed_mid_call_leaves_no_worker_behind() -> None:
    script = textwrap.dedent("""
        import os, sys
        from embodied.sandbox import RewardSandbox
        import threading, time
        s = RewardSandbox._unchecked("def reward(view, memory):\\n    while True: pass\\n", timeout_s=60, cpu_s=2)
        print(s._proc.pid, flush=True)
        threading.Thread(target=lambda: s.call([{}], [0]), daemon=True).start()
        time.sleep(0.5)
        os.kill(os.getpid(), 9)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    pytest.fail("the worker outlived its parent by 15 s")


# --- the filter itself --------------------------------------------------------------------------------


def test_the_syscall_table_matches_libseccomp() -> None:
    """Our numbers for both architectures against libseccomp's resolver (Debian's libseccomp2), where installed."""
    import ctypes
    import ctypes.util

    from embodied.sandbox import kernel

    name = ctypes.util.find_library("seccomp")
    if name is None:
        pytest.skip("libseccomp is not installed")
    lib = ctypes.CDLL(name)
    resolve = lib.seccomp_syscall_resolve_name_arch
    resolve.restype = ctypes.c_int
    for syscall, numbers in kernel.SYSCALLS.items():
        for column, audit_arch in kernel.ARCHES.values():
            expected = resolve(ctypes.c_uint32(audit_arch), syscall.encode())
            assert numbers[column] == (expected if expected >= 0 else None), (syscall, column, expected)


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
def test_the_filter_program_is_well_formed(arch: str) -> None:
    from embodied.sandbox import kernel

    prog = kernel.seccomp_program(arch, (5,), (6, 2), 1234)
    assert len(prog) < 256 and prog[-2][3] == kernel.RET_ALLOW and prog[-1][3] == kernel.RET_KILL_PROCESS
    for i, (code, jt, jf, _) in enumerate(prog):
        if code in (0x15, 0x35):
            assert i + 1 + jt < len(prog) and i + 1 + jf < len(prog)
