"""The reward worker: one process that runs one designed reward (started by `sandbox.py`).

Run as `python -I worker.py REQ_FD RESP_FD PROGRESS_FD`. It imports nothing from
`embodied`. Under the parent's static checks it adds runtime layers:

* builtins: a small allowlist; `__import__` hands out only math and numpy, `print` is a
  no-op; both live in a namespace of their own, so their globals lead nowhere;
* an audit hook that, while reward code runs, refuses every audited action (opening
  files, sockets, processes, imports, frame and code-object access, ...) and records it
  even if the reward swallows the exception;
* RLIMIT_AS = address space after start-up + memory_mb; RLIMIT_CPU re-armed before each
  batch to CPU time used + cpu_s (a hung worker whose parent died still stops).

Protocol: requests are pickles from the trusted parent: ("call", resets, views, slots) or
("close",). Replies never contain pickles: a 4-byte length, a JSON header and, for
results, raw float64s (per item: total, then the components in the header's name order).
The shared PROGRESS_FD page holds (start time, index) of the item being run, so the
parent can enforce the per-call timeout and name the view that hung.
"""
from __future__ import annotations

import builtins
import importlib
import json
import math
import mmap
import numbers
import os
import pickle
import reprlib
import resource
import signal
import struct
import sys
import time
import warnings
from array import array
from collections import defaultdict
from multiprocessing.connection import Connection
from typing import Any, Callable

SAFE_BUILTINS = (
    "abs", "all", "any", "bool", "callable", "chr", "complex", "dict", "divmod", "enumerate", "filter",
    "float", "frozenset", "hash", "int", "isinstance", "iter", "len", "list", "map", "max", "min",
    "next", "ord", "pow", "range", "repr", "reversed", "round", "set", "slice", "sorted", "str", "sum",
    "tuple", "zip", "ArithmeticError", "AssertionError", "AttributeError", "Exception", "IndexError",
    "KeyError", "LookupError", "NotImplementedError", "OverflowError", "RuntimeError",
    "StopIteration", "TypeError", "ValueError", "ZeroDivisionError",
)
# Imported before reward code runs: numpy loads these lazily (np.median imports numpy.ma),
# and an import while reward code runs is refused by the audit hook.
PRELOAD = ("numpy", "numpy.linalg", "numpy.random", "numpy.fft", "numpy.polynomial", "numpy.ma", "numpy.char",
           "numpy.strings", "numpy.rec")
HARMLESS_EVENTS = frozenset({"builtins.id"})  # numpy's repr calls id()
PAGE = 24  # shared progress page: start time (float64), item index (int64), line where a timeout hit (int64)
EXIT_MEMORY = 3  # the worker ran out of memory outside reward code (parent reports "memory")
MAX_COMPONENTS, MAX_NAME = 64, 100  # keep a reply small whatever the reward returns
_NUMBERS, _STR, _PAIR = frozenset({float, int}), frozenset({str}), (tuple, list)
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60


class Violation(Exception):
    """Reward code tried something the runtime layer blocks."""


class BadReturn(Exception):
    """The reward returned something other than (finite number, {str: finite number})."""


_HELPERS = '''
def __import__(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name in modules:
        return modules[name] if fromlist else modules[name.partition(".")[0]]
    audit("sandbox.import", name)  # the worker's audit hook records the attempt, with its line, and raises
    raise Violation("import of " + repr(name) + " is blocked")
def print(*args, **kwargs):
    return None
'''


def _builtins(modules: dict[str, Any]) -> dict[str, Any]:
    """The reward's `__builtins__`; the two helpers are compiled in a namespace holding only what they need."""
    scope = {"__builtins__": {"repr": repr}, "modules": modules, "audit": sys.audit, "Violation": Violation}
    exec(compile(_HELPERS, "<sandbox>", "exec"), scope)
    safe = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    return {**safe, "True": True, "False": False, "None": None, "__import__": scope["__import__"], "print": scope["print"]}


def _reward_line(frame: Any, namespace: dict) -> int | None:
    """Line of the innermost frame of reward code at or above `frame` (f_globals raises no audit event)."""
    while frame is not None and frame.f_globals is not namespace:
        frame = frame.f_back
    return None if frame is None else frame.f_lineno


def _install_guard(blocked: list, namespace: dict) -> list[bool]:
    """Audit hook refusing every audited event while armed; returns its [armed, allow_one_exec] switches.

    The switches live only in this closure and the caller's locals, never in module
    globals, so reward code that reached this module's namespace still could not disarm it.
    """
    state = [False, False]

    def hook(event: str, args: tuple) -> None:
        if not state[0] or event in HARMLESS_EVENTS:
            return
        if event == "exec" and state[1]:  # the one exec() that loads the reward module
            state[1] = False
            return
        state[0] = False  # frame access below raises audit events of its own
        try:
            line = _reward_line(sys._getframe(1), namespace)
        finally:
            state[0] = True
        what = f"import of {args[0]!r} is blocked" if event == "sandbox.import" else f"{event} is blocked in reward code"
        blocked.append((what, line))
        raise Violation(what)

    sys.addaudithook(hook)
    return state


def _report_line(frame: Any, namespace: dict, progress: mmap.mmap) -> None:
    """On SIGUSR1, sent before the parent kills a call that timed out: note the reward line being run."""
    struct.pack_into("<q", progress, 16, _reward_line(frame, namespace) or 0)


def _number(value: Any, what: str) -> float:
    """`value` as a finite float; bool, complex, arrays and non-numbers are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BadReturn(f"{what} must be a real number, got {type(value).__name__} {_short.repr(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise BadReturn(f"{what} is too large for a float") from None
    if not math.isfinite(number):
        raise BadReturn(f"{what} is {number} (must be finite)")
    return number


def validate(out: Any, schemas: dict[tuple[str, ...], int]) -> tuple[int, list[float]]:
    """The index in `schemas` of the component names (added if new) and [total, *components] as floats.

    Raises BadReturn saying what is wrong. Names are checked once per new schema.
    """
    if type(out) in _PAIR and len(out) == 2 and type(out[1]) is dict:  # fast path: plain floats and ints
        names, values = tuple(out[1]), [out[0], *out[1].values()]
        if names in schemas and _NUMBERS.issuperset(map(type, values)):
            try:
                values = list(map(float, values))
            except OverflowError:
                values = [math.inf]
            if math.isfinite(sum(values)):  # a NaN or inf anywhere makes the sum non-finite
                return schemas[names], values
    names, values = _explain(out)
    return schemas.setdefault(names, len(schemas)), values


def _explain(out: Any) -> tuple[tuple[str, ...], list[float]]:
    """The slow path of `validate`: numpy scalars and large values pass, anything else raises with a reason."""
    if type(out) not in _PAIR or len(out) != 2:
        raise BadReturn(f"reward must return (total, components), got {type(out).__name__} {_short.repr(out)}")
    total, comps = out
    if type(comps) is not dict:
        raise BadReturn(f"components must be a dict of name -> number, got {type(comps).__name__} {_short.repr(comps)}")
    if len(comps) > MAX_COMPONENTS:
        raise BadReturn(f"{len(comps)} components; at most {MAX_COMPONENTS} are allowed")
    for name in comps:
        if type(name) is not str or len(name) > MAX_NAME:
            raise BadReturn(f"component names must be str of at most {MAX_NAME} characters, got {type(name).__name__} {_short.repr(name)}")
    values = [_number(total, "total"), *(_number(v, f"component {n!r}") for n, v in comps.items())]
    return tuple(comps), values


def _failure(exc: BaseException, index: int | None, blocked: list) -> dict[str, Any]:
    """The error record for the parent: kind, message, line, index of the failing item."""
    line = None
    if blocked:
        kind, (message, line) = "forbidden", blocked[0]
    elif isinstance(exc, BadReturn):
        kind, message = "bad_return", str(exc)
    else:
        kind = "forbidden" if isinstance(exc, Violation) else "memory" if isinstance(exc, MemoryError) else "exception"
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<reward>":
                line = tb.tb_lineno
            tb = tb.tb_next
        try:
            message = f"{type(exc).__name__}: {exc}"[:300].rstrip(": ")
        except Exception:
            message = type(exc).__name__
    blocked.clear()
    return {"kind": kind, "message": message, "line": line, "index": index}


def _send(resp: Connection, header: dict[str, Any], floats: array | None = None) -> None:
    head = json.dumps(header).encode()
    resp.send_bytes(struct.pack("<I", len(head)) + head + (floats.tobytes() if floats is not None else b""))


def _run_batch(reward: Callable, memories: dict, views: list, slots: list, state: list[bool],
               blocked: list, progress: mmap.mmap) -> tuple[dict[str, Any], array | None]:
    """Run the reward on each view in order; stop at the first failure and name its index."""
    floats, schemas, ids = array("d"), {}, []
    pack, now, i = struct.pack_into, time.monotonic, -1
    state[0] = True
    try:
        for i, view in enumerate(views):
            pack("<dq", progress, 0, now(), i)
            out = reward(view, memories[slots[i]])
            if blocked:
                raise Violation("blocked action")
            sid, values = validate(out, schemas)
            ids.append(sid)
            floats.extend(values)
    except Exception as exc:
        state[0] = False
        if isinstance(exc, MemoryError):
            memories.clear()  # free what the reward hoarded so the report can be sent
        return {"error": _failure(exc, i, blocked)}, None
    state[0] = False
    return {"schemas": list(schemas), "ids": ids if len(schemas) > 1 else None}, floats


def _load(init: dict[str, Any], progress: mmap.mmap) -> tuple[Any, list[bool], list]:
    """Import numpy, set the memory limit, arm the guards and run the reward module: (reward or error, state, blocked)."""
    sys.path[:] = init["path"]
    modules: dict[str, Any] = {"math": math, **{name: importlib.import_module(name) for name in PRELOAD}}
    try:
        with open("/proc/self/statm") as f:
            base = int(f.read().split()[0]) * resource.getpagesize()
    except OSError:  # not Linux: the limit is memory_mb of address space in all
        base = 0
    resource.setrlimit(resource.RLIMIT_AS, (base + int(init["memory_mb"] * 2**20),) * 2)
    blocked: list[tuple[str, int | None]] = []
    namespace = {"__builtins__": _builtins(modules), "__name__": "reward"}
    code = compile(init["source"], "<reward>", "exec", dont_inherit=True)
    state = _install_guard(blocked, namespace)
    signal.signal(signal.SIGUSR1, lambda signum, frame: _report_line(frame, namespace, progress))
    struct.pack_into("<dq", progress, 0, time.monotonic(), -1)
    state[:] = [True, True]
    try:
        exec(code, namespace)
        if blocked:
            raise Violation("blocked action")
    except Exception as exc:
        state[0] = False
        return {"error": _failure(exc, None, blocked)}, state, blocked
    state[:] = [False, False]
    if not callable(namespace.get("reward")):
        return {"error": {"kind": "signature", "message": "the code defines no function `reward`", "line": None, "index": None}}, state, blocked
    return namespace["reward"], state, blocked


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    warnings.simplefilter("ignore")  # numpy's RuntimeWarnings would only fill stderr; NaN/inf are caught on return
    req, resp = Connection(int(argv[1]), writable=False), Connection(int(argv[2]), readable=False)
    progress = mmap.mmap(int(argv[3]), PAGE)
    os.close(int(argv[3]))
    init = pickle.loads(req.recv_bytes())
    reward, state, blocked = _load(init, progress)
    if isinstance(reward, dict):
        return _send(resp, reward)
    _send(resp, {"ready": True})
    memories: dict[int, dict] = defaultdict(dict)
    cpu_limit = 0
    while True:
        try:
            request = pickle.loads(req.recv_bytes())
        except EOFError:  # the parent is gone
            return
        if request[0] == "close":
            return
        _, resets, views, slots = request
        for slot in resets:
            memories[slot] = {}
        used = time.process_time()
        if cpu_limit < used + init["cpu_s"]:  # each batch gets cpu_s to cpu_s + 1 s; re-armed about once a CPU second
            cpu_limit = math.ceil(used + init["cpu_s"])
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_limit, resource.RLIM_INFINITY))
        _send(resp, *_run_batch(reward, memories, views, slots, state, blocked, progress))


if __name__ == "__main__":
    try:
        main(sys.argv)
    except MemoryError:
        os._exit(EXIT_MEMORY)
