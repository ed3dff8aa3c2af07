"""The reward worker: one process that runs one designed reward (started by `sandbox.py`).

Run as `python -I worker.py REQ_FD RESP_FD PROGRESS_FD` with an empty environment and
a working directory of its own; it imports nothing from `embodied` (only `guards.py`
and `kernel.py`, by path). Start-up, before any reward code runs:

1. read the init message, import numpy and everything reward code may import, and
   run a numpy warm-up so that nothing is imported lazily later;
2. compile the reward module, set RLIMIT_AS (start-up size + memory_mb);
3. `kernel.lock_down` (isolation=kernel): network namespace, rlimits, nobody,
   no-new-privs, Landlock, seccomp; report what took effect ("locked");
4. run the module's top level once (errors are reported at start-up), say "ready".

Every slot (one per env of a vector env) gets its own namespace: the module is run
again for a slot's first call and after each reset, so no module-level state passes
between slots or episodes, and `math`/`numpy` are per-slot copies, so reassigning
`np.sum` or `math.isfinite` changes nothing outside that slot.

Protocol (frames of a 4-byte little-endian length and a payload): requests are
pickles from the trusted parent: ("call", resets, views, slots) or ("close",).
Replies never contain pickles: a 4-byte header length, a JSON header and, for
results, raw float64s (per item: total, then the components in the header's name
order). Nothing in a reply is trusted by the parent. The shared PROGRESS_FD page
holds the index of the item being run and, on SIGUSR1, the reward line being run.
"""

from __future__ import annotations

import importlib
import json
import mmap
import os
import pickle
import resource
import signal
import struct
import sys
import types
import warnings
from array import array
from typing import Any, Callable

if __package__:  # imported as embodied.sandbox.worker (tests)
    from embodied.sandbox import kernel
    from embodied.sandbox.guards import (
        BadReturn,
        Violation,
        install_audit_guard,
        plain_message,
        restricted_builtins,
        reward_line,
        validate,
    )
else:  # run by the sandbox as `python -I worker.py`: its own directory is not on sys.path
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import kernel
    from guards import (
        BadReturn,
        Violation,
        install_audit_guard,
        plain_message,
        restricted_builtins,
        reward_line,
        validate,
    )

IMPORTABLE = ("math", "numpy", "typing", "collections", "itertools", "functools", "__future__")
NUMPY_PARTS = (
    "numpy.linalg",
    "numpy.random",
    "numpy.fft",
    "numpy.polynomial",
    "numpy.ma",
    "numpy.char",
    "numpy.strings",
    "numpy.rec",
    "numpy.lib",
    "numpy.exceptions",
    "numpy.dtypes",
)
PAGE = 24  # shared progress page: (unused float64), item index (int64), line where a timeout hit (int64)
EXIT_MEMORY = 3  # the worker ran out of memory outside reward code (parent reports "memory")
MAX_FRAME = 1 << 30


def _read_exact(fd: int, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = os.read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv(fd: int) -> bytes:
    (size,) = struct.unpack("<I", _read_exact(fd, 4))
    return _read_exact(fd, size)


def send(fd: int, header: dict[str, Any], floats: array | None = None) -> None:
    head = json.dumps(header).encode()
    body = struct.pack("<I", len(head)) + head + (floats.tobytes() if floats is not None else b"")
    data = memoryview(struct.pack("<I", len(body)) + body)
    while data:
        data = data[os.write(fd, data) :]


def _warm_up(np: Any) -> None:
    """Run what ordinary reward code runs, so numpy's lazily imported internals are loaded now."""
    a = np.arange(6.0).reshape(2, 3)
    for method in (
        "min",
        "max",
        "sum",
        "mean",
        "std",
        "var",
        "any",
        "all",
        "prod",
        "argmax",
        "argmin",
        "cumsum",
        "round",
        "tolist",
        "copy",
    ):
        getattr(a, method)()
    a.clip(0, 1)
    for value in (
        a,
        a[0, 0],
        np.int64(3),
        np.float32(1.5),
        np.array([True]),
        np.array(["a"]),
        np.array([1 + 2j]),
        np.zeros(2, dtype=[("x", float)]),
        np.dtype(float),
    ):
        str(value), repr(value), f"{value}"
    f"{a[0, 0]:.3f}"
    np.median(a), np.percentile(a, 50), np.linalg.norm(a), np.random.default_rng(0).random(), np.unique(a)
    np.histogram(a), np.interp(1, [0, 2], [0, 1]), np.isclose(1, 1), np.allclose(a, a), np.nanmean(a)
    np.polyfit([0, 1, 2], [0, 1, 2], 1), np.gradient(a[0]), np.pad(a, 1), np.array2string(a)
    for bad in (lambda: a[5], lambda: a + np.ones(4), lambda: np.linalg.inv(np.zeros((2, 2)))):
        try:
            bad()
        except Exception as exc:  # noqa: BLE001 - the message formatting is what is being loaded
            str(exc)
    with np.errstate(all="ignore"):
        np.log(np.zeros(1)), np.ones(1) / 0


def _snapshot(module: types.ModuleType, parts: dict[str, types.ModuleType]) -> types.ModuleType:
    """A copy of `module` (and of its preloaded numpy submodules) whose attributes can be reassigned harmlessly."""
    copy = types.ModuleType(module.__name__)
    copy.__dict__.update(module.__dict__)
    for name, value in module.__dict__.items():
        if type(value) is types.ModuleType and value.__name__ in parts:
            setattr(copy, name, _snapshot(value, {}))
    return copy


class Slots:
    """Per-slot namespaces and memories: the module is run afresh for a slot's first call and after reset."""

    def __init__(
        self, code: Any, modules: dict[str, types.ModuleType], guards: bool, state: list[bool], namespaces: set[int]
    ) -> None:
        self.code, self.modules, self.guards, self.state, self.namespaces = code, modules, guards, state, namespaces
        self.parts = {name: sys.modules[name] for name in NUMPY_PARTS if name in sys.modules}
        self.slots: dict[int, tuple[Callable, dict, int]] = {}

    def fresh(self) -> dict:
        """A namespace for running the module: restricted builtins over per-namespace module copies."""
        if not self.guards:
            return {"__name__": "reward"}
        copies: dict[str, types.ModuleType] = {}

        def module(name: str) -> types.ModuleType | None:
            if name not in copies and name in self.modules:
                copies[name] = (
                    _snapshot(self.modules[name], self.parts) if name in ("math", "numpy") else self.modules[name]
                )
            return copies.get(name) or (sys.modules.get(name) if name.startswith("numpy.") else None)

        self.state[1] = True  # lets the helpers' exec() past the audit hook
        return {"__builtins__": restricted_builtins(module), "__name__": "reward"}

    def run_module(self) -> dict:
        namespace = self.fresh()
        self.namespaces.add(id(namespace))
        self.state[1] = True  # lets this one exec() past the audit hook
        exec(self.code, namespace)
        return namespace

    def get(self, slot: int) -> tuple[Callable, dict, int]:
        if slot not in self.slots:
            namespace = self.run_module()
            reward = namespace.get("reward")
            if not callable(reward):
                raise Violation("the module no longer defines a callable `reward`")
            self.slots[slot] = (reward, {}, id(namespace))
        return self.slots[slot]

    def drop(self, slot: int) -> None:
        old = self.slots.pop(slot, None)
        if old is not None:
            self.namespaces.discard(old[2])


def _failure(exc: BaseException, index: int | None, blocked: list) -> dict[str, Any]:
    """The error record for the parent, built from plain data only (no reward-defined __str__/__repr__ runs)."""
    line = None
    if blocked:
        kind, (message, line) = "forbidden", blocked[0]
    elif isinstance(exc, BadReturn):
        kind, message = "bad_return", plain_message(exc, with_type=False)
    else:
        kind = "forbidden" if isinstance(exc, Violation) else "memory" if isinstance(exc, MemoryError) else "exception"
        tb = BaseException.__traceback__.__get__(exc)
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<reward>":
                line = tb.tb_lineno
            tb = tb.tb_next
        message = plain_message(exc)
    blocked.clear()
    return {"kind": kind, "message": message, "line": line, "index": index}


def _run_batch(
    slots: Slots, resets: list, views: list, ids: list, state: list[bool], blocked: list, progress: mmap.mmap
) -> tuple[dict[str, Any], array | None]:
    """Run the reward on each view in order; stop at the first failure and name its index."""
    floats, schemas, out_ids = array("d"), {}, []
    pack, i = struct.pack_into, -1
    state[0] = True
    try:
        for slot in resets:
            slots.drop(slot)
        for i, view in enumerate(views):
            pack("<q", progress, 8, i)
            reward, memory, _ = slots.get(ids[i])
            out = reward(view, memory)
            if blocked:
                raise Violation("blocked action")
            sid, values = validate(out, schemas)
            out_ids.append(sid)
            floats.extend(values)
    except BaseException as exc:  # noqa: BLE001 - SystemExit or KeyboardInterrupt from reward code is its failure too
        state[0] = False
        if isinstance(exc, MemoryError):
            slots.slots.clear()  # free what the reward hoarded so the report can be sent
        return {"error": _failure(exc, i, blocked)}, None
    state[0] = False
    return {"schemas": list(schemas), "ids": out_ids if len(schemas) > 1 else None}, floats


def _start(init: dict[str, Any], req: int, resp: int, progress: mmap.mmap) -> tuple[Slots, list[bool], list, dict]:
    """Import, compile, limit and lock down (everything before reward code runs)."""
    sys.path[:] = init["path"]
    modules = {name: importlib.import_module(name) for name in IMPORTABLE}
    for name in NUMPY_PARTS:
        importlib.import_module(name)
    _warm_up(modules["numpy"])
    code = compile(init["source"], "<reward>", "exec", dont_inherit=True)
    try:
        with open("/proc/self/statm") as f:
            base = int(f.read().split()[0]) * resource.getpagesize()
    except OSError:  # not Linux: the limit is memory_mb of address space in all
        base = 0
    resource.setrlimit(resource.RLIMIT_AS, (base + int(init["memory_mb"] * 2**20),) * 2)
    blocked: list[tuple[str, int | None]] = []
    namespaces: set[int] = set()
    state = install_audit_guard(blocked, namespaces) if init["guards"] else [False, False]
    slots = Slots(code, modules, init["guards"], state, namespaces)
    signal.signal(
        signal.SIGUSR1, lambda signum, frame: struct.pack_into("<q", progress, 16, reward_line(frame, namespaces) or 0)
    )
    report: dict[str, Any] = {"isolation": init["isolation"]}
    if init["isolation"] == "kernel":
        report.update(kernel.lock_down((req,), (resp, 2), open_fds=max(req, resp, 2) + 1))
    return slots, state, blocked, report


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    warnings.simplefilter("ignore")  # numpy's RuntimeWarnings would only fill stderr; NaN/inf are caught on return
    sys.stdout = None  # print() anywhere writes nothing
    req, resp = int(argv[1]), int(argv[2])
    progress = mmap.mmap(int(argv[3]), PAGE)
    os.close(int(argv[3]))
    init = pickle.loads(recv(req))
    slots, state, blocked, report = _start(init, req, resp, progress)
    send(resp, {"locked": report})
    if init["isolation"] == "kernel" and not report.get("seccomp"):
        return  # the parent refuses to go on without seccomp
    state[0] = True
    try:
        namespace = slots.run_module()
        if blocked:
            raise Violation("blocked action")
    except BaseException as exc:  # noqa: BLE001
        state[0] = False
        return send(resp, {"error": _failure(exc, None, blocked)})
    state[0] = False
    if not callable(namespace.get("reward")):
        return send(
            resp,
            {
                "error": {
                    "kind": "signature",
                    "message": "the code defines no function `reward`",
                    "line": None,
                    "index": None,
                }
            },
        )
    slots.slots[0] = (namespace["reward"], {}, id(namespace))
    send(resp, {"ready": True})
    while True:
        try:
            request = pickle.loads(recv(req))
        except EOFError:  # the parent is gone
            return
        if request[0] == "close":
            return
        _, resets, views, ids = request
        send(resp, *_run_batch(slots, resets, views, ids, state, blocked, progress))


if __name__ == "__main__":
    try:
        main(sys.argv)
    except MemoryError:
        os._exit(EXIT_MEMORY)
