"""RewardSandbox: run a designed reward in a worker process, in batches, reporting every failure.

One worker process per sandbox runs the reward (see `worker.py` for its runtime layers).
`call` sends a whole batch of views in one round trip; each view is run with the
`memory` dict of its slot, which lives in the worker and persists until `reset`.
The worker is a fresh `python -I worker.py` (never a fork: the parent may have threads),
not a multiprocessing spawn/forkserver child, which would re-import the parent's
`__main__` (the training CLI, torch included) inside the memory-limited worker.

Failures raise `RewardError` with the exact view that caused them; no call ever returns a
default. The batch stops at the first failing item (earlier items have already updated
their slots' memory). After "exception" or "bad_return" the worker keeps running with
every memory intact. After "timeout", "memory", "cpu", "crashed" or a runtime
"forbidden" the worker is killed, and `call` raises "crashed" until `reset()` starts a
fresh worker; every slot's memory then starts empty, not only the slots passed to reset.
"""
from __future__ import annotations

import json
import mmap
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from array import array
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NoReturn

from embodied.sandbox.checks import KINDS, RewardError, check_source

WORKER = Path(__file__).with_name("worker.py")
STARTUP_S = 30.0  # interpreter start and numpy import, before the reward's own timeout applies
EXIT_MEMORY, PAGE = 3, 24  # worker.EXIT_MEMORY, worker.PAGE
LINE_WAIT_S = 0.2  # how long a timed-out call may take to report its line before the worker is killed
FATAL = frozenset({"timeout", "memory", "cpu", "crashed", "forbidden"})
_ONE_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def _stop(proc: subprocess.Popen, req: Connection, resp: Connection, progress: mmap.mmap) -> None:
    """Ask the worker to exit (killing it after 1 s), reap it and close its pipes."""
    try:
        req.send_bytes(pickle.dumps(("close",)))
        proc.wait(timeout=1.0)
    except (OSError, subprocess.TimeoutExpired):
        pass
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for handle in (req, resp, progress):
        handle.close()


class RewardSandbox:
    """A designed reward, statically checked, then run in its own limited worker process.

    timeout_s: wall-clock limit for each reward call (and for running the module's top level).
    memory_mb: address space the reward may add to the worker's after start-up (RLIMIT_AS).
    cpu_s: CPU seconds one batch may use (RLIMIT_CPU, re-armed before every batch).
    Start-up takes about 0.1-0.2 s (a fresh interpreter importing numpy). Not thread-safe.
    """

    def __init__(self, source: str, *, timeout_s: float = 1.0, memory_mb: int = 512, cpu_s: float = 60.0) -> None:
        problems = check_source(source)
        if problems:
            raise problems[0]
        self._setup(source, timeout_s, memory_mb, cpu_s)

    @classmethod
    def _unchecked(cls, source: str, **limits: Any) -> RewardSandbox:
        """A sandbox without the static checks: only for testing the worker's runtime layers."""
        self = cls.__new__(cls)
        self._setup(source, **limits)
        return self

    def _setup(self, source: str, timeout_s: float = 1.0, memory_mb: int = 512, cpu_s: float = 60.0) -> None:
        self._source, self._timeout, self._memory_mb, self._cpu_s = source, float(timeout_s), memory_mb, float(cpu_s)
        self._stopped_by: str | None = None
        self._pending: set[int] = set()
        self._proc: subprocess.Popen | None = None
        self._stats = {"calls": 0, "batches": 0, "starts": 0, "start_s": 0.0}
        self._start()

    @property
    def stats(self) -> dict[str, float]:
        """Reward calls and batches served, worker starts, and the last start-up time in seconds."""
        return dict(self._stats)

    def __enter__(self) -> RewardSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker; the sandbox cannot be used afterwards."""
        if self._proc is not None:
            self._finalizer()
            self._proc, self._stopped_by = None, None

    def reset(self, slots: Sequence[int]) -> None:
        """Give these slots a fresh empty `memory` (applied with the next batch, no round trip).

        After a fatal error this starts a new worker first, so every slot starts empty.
        """
        if self._stopped_by is not None:
            self._stopped_by = None
            self._pending.clear()
            self._start()
        self._pending.update(slots)

    def call(self, views: Sequence[dict], slots: Sequence[int]) -> list[tuple[float, dict[str, float]]]:
        """(total, components) for each view, view i using the memory of slots[i]: one round trip.

        A slot's memory starts empty the first time it is used and after `reset`.
        """
        if len(views) != len(slots):
            raise ValueError(f"{len(views)} views but {len(slots)} slots")
        if self._proc is None:
            raise RuntimeError("this RewardSandbox is closed")
        if self._stopped_by is not None:
            raise RewardError("crashed", f"the reward worker was stopped by an earlier {self._stopped_by} error; "
                              "call reset() to start a fresh one (every slot's memory starts empty)")
        if not views:
            return []
        views = list(views)
        payload = pickle.dumps(("call", sorted(self._pending), views, list(slots)), protocol=pickle.HIGHEST_PROTOCOL)
        self._pending.clear()
        header, floats = self._exchange(payload, views)
        if "error" in header:
            self._fail(views, **header["error"])
        try:
            results = _decode(header, floats, len(views))
        except (KeyError, IndexError, TypeError, ValueError):
            self._fail(views, "crashed", "malformed reply from the reward worker")
        self._stats["calls"] += len(views)
        self._stats["batches"] += 1
        return results

    def _start(self) -> None:
        if self._proc is not None:
            self._finalizer()
        began = time.perf_counter()
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        with tempfile.TemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as page:  # memory, not disk
            page.truncate(PAGE)
            self._progress = mmap.mmap(page.fileno(), PAGE)
            self._stderr = tempfile.TemporaryFile()
            fds = (req_r, resp_w, page.fileno())
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", str(WORKER), *map(str, fds)], pass_fds=fds, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=self._stderr, env={**os.environ, **_ONE_THREAD})
            finally:
                os.close(req_r)
                os.close(resp_w)
        self._req, self._resp = Connection(req_w, readable=False), Connection(resp_r, writable=False)
        self._poller = select.poll()
        self._poller.register(resp_r, select.POLLIN)
        self._finalizer = weakref.finalize(self, _stop, self._proc, self._req, self._resp, self._progress)
        init = {"source": self._source, "path": [p for p in sys.path if p], "memory_mb": self._memory_mb, "cpu_s": self._cpu_s}
        header, _ = self._exchange(pickle.dumps(init), None, first_deadline=time.monotonic() + STARTUP_S)
        if "error" in header:
            self._fail(None, **header["error"])
        self._stats["starts"] += 1
        self._stats["start_s"] = time.perf_counter() - began

    def _exchange(self, payload: bytes, views: list | None, first_deadline: float | None = None) -> tuple[dict, array]:
        """Send a request and wait for the reply, killing the worker when a reward call overruns."""
        sent = time.monotonic()
        struct.pack_into("<dq", self._progress, 0, (first_deadline or sent + self._timeout) - self._timeout, -1)
        try:
            self._req.send_bytes(payload)
            while True:
                # A reply that is already waiting counts, whatever the clock says: a pause in this
                # process (a full GC, descheduling) must not be blamed on the reward.
                if self._poller.poll(0):
                    break
                index, = struct.unpack_from("<q", self._progress, 8)  # index first: the start time is then never older
                # never older than this request: on this project's VMs the shared page was once read back
                # as 0.0 right after the write above, which would time out a call that had not started
                started = max(struct.unpack_from("<d", self._progress, 0)[0], sent)
                remaining = started + self._timeout - time.monotonic()
                if remaining <= 0:
                    what = "running the module's top level" if views is None else "a reward call"
                    self._fail(views, "timeout", f"{what} took longer than {self._timeout:g} s", self._hung_line(), index)
                # wake at least every timeout_s: at start-up the worker moves the deadline earlier
                if self._poller.poll(min(remaining, self._timeout) * 1e3 + 1):  # ms; readable, or EOF
                    break
            data = self._resp.recv_bytes()
        except (EOFError, OSError):
            self._died(views)
        try:
            size, = struct.unpack_from("<I", data)
            floats = array("d")
            floats.frombytes(data[4 + size:])
            return json.loads(data[4:4 + size]), floats
        except (struct.error, ValueError):
            self._fail(views, "crashed", "malformed reply from the reward worker")

    def _hung_line(self) -> int | None:
        """The reward line a timed-out worker is running, if it answers SIGUSR1 quickly (a C call does not)."""
        struct.pack_into("<q", self._progress, 16, 0)
        self._proc.send_signal(signal.SIGUSR1)
        waited = 0.0
        while waited < LINE_WAIT_S:
            line, = struct.unpack_from("<q", self._progress, 16)
            if line:
                return line
            time.sleep(0.01)
            waited += 0.01
        return None

    def _died(self, views: list | None) -> NoReturn:
        """Report why the worker exited: CPU limit, memory, or a crash (with its last stderr line)."""
        try:
            code = self._proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            code = None
        index, = struct.unpack_from("<q", self._progress, 8)
        if code == -signal.SIGXCPU:
            self._fail(views, "cpu", f"reward used more than {self._cpu_s:g} s of CPU time in one batch", index=index)
        if code == EXIT_MEMORY:
            self._fail(views, "memory", "the reward worker ran out of memory", index=index)
        self._stderr.seek(0)
        lines = [line for line in self._stderr.read()[-2000:].decode(errors="replace").splitlines() if line.strip()]
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit status {code}"
        self._fail(views, "crashed", f"the reward worker died ({how}){': ' + lines[-1] if lines else ''}", index=index)

    def _fail(self, views: list | None, kind: str, message: str, line: int | None = None, index: int | None = None) -> NoReturn:
        """Raise the RewardError for item `index` of `views`, first stopping the worker if the error is fatal."""
        if kind not in KINDS:
            kind, message = "crashed", f"unknown failure from the reward worker: {kind}: {message}"
        if kind == "memory":
            message += f" (limit: {self._memory_mb} MB above the worker's start-up size)"
        if kind in FATAL or views is None:  # a worker that failed to start has exited already
            self._stopped_by = kind
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
        view = None
        if views:
            view = views[index] if isinstance(index, int) and 0 <= index < len(views) else views[0]
        raise RewardError(kind, message, line if isinstance(line, int) else None, view)


def _decode(header: dict, floats: array, n: int) -> list[tuple[float, dict[str, float]]]:
    """Rebuild the (total, components) pairs from the worker's schemas and float64s."""
    schemas, ids = header["schemas"], header["ids"] or [0] * n
    if len(ids) != n:
        raise ValueError("wrong number of results")
    out, pos = [], 0
    for sid in ids:
        names = schemas[sid]
        end = pos + 1 + len(names)
        out.append((floats[pos], dict(zip(names, floats[pos + 1:end]))))
        pos = end
    if pos != len(floats):
        raise ValueError("wrong number of values")
    return out
