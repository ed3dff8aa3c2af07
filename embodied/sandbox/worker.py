"""The reward worker: one process that runs one designed reward (started by `sandbox.py`).

Run as `python -I worker.py REQ_FD RESP_FD PROGRESS_FD`; it imports nothing from
`embodied` (only `guards.py`, by path). Beneath the parent's static checks it runs the
reward with the runtime guards of `guards.py` and two resource limits: RLIMIT_AS =
address space after start-up + memory_mb, and RLIMIT_CPU re-armed before each batch to
CPU time used + cpu_s (so a worker stuck in C code after its parent died still stops).

Protocol: requests are pickles from the trusted parent: ("call", resets, views, slots) or
("close",). Replies never contain pickles: a 4-byte length, a JSON header and, for
results, raw float64s (per item: total, then the components in the header's name order).
The shared PROGRESS_FD page holds the start time and index of the item being run, so
the parent can enforce the per-call timeout and name the view that hung.
"""
from __future__ import annotations

import importlib
import json
import math
import mmap
import os
import pickle
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

if __package__:  # imported as embodied.sandbox.worker (tests)
    from embodied.sandbox.guards import BadReturn, Violation, install_audit_guard, restricted_builtins, reward_line, validate
else:  # run by the sandbox as `python -I worker.py`: its own directory is not on sys.path
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from guards import BadReturn, Violation, install_audit_guard, restricted_builtins, reward_line, validate

# Imported before reward code runs: numpy loads these lazily (np.median imports numpy.ma),
# and an import while reward code runs is refused by the audit hook.
PRELOAD = ("numpy", "numpy.linalg", "numpy.random", "numpy.fft", "numpy.polynomial", "numpy.ma", "numpy.char",
           "numpy.strings", "numpy.rec")
PAGE = 24  # shared progress page: start time (float64), item index (int64), line where a timeout hit (int64)
EXIT_MEMORY = 3  # the worker ran out of memory outside reward code (parent reports "memory")


def _report_line(frame: Any, namespace: dict, progress: mmap.mmap) -> None:
    """On SIGUSR1, sent before the parent kills a call that timed out: note the reward line being run."""
    struct.pack_into("<q", progress, 16, reward_line(frame, namespace) or 0)


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
    namespace = {"__builtins__": restricted_builtins(modules), "__name__": "reward"}
    code = compile(init["source"], "<reward>", "exec", dont_inherit=True)
    state = install_audit_guard(blocked, namespace)
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
