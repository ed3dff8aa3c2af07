"""RewardSandbox: run a designed reward in a kernel-isolated worker process, in batches, trusting nothing it sends back.

One worker process per sandbox runs the reward (see `worker.py` and `kernel.py`).
`call` sends a whole batch of views in one round trip; each view is run with the
`memory` dict and the module namespace of its slot, which live in the worker until
`reset`. The worker is a fresh `python -I worker.py` (never a fork: the parent may have
threads) with an empty environment, its own working directory and only its pipes.

The parent trusts nothing the worker sends: every reply has a size cap and a deadline
(`timeout_s` for a whole batched call), is parsed as JSON and float64s, and is
validated with the parent's own modules (finite floats, string names, at most
MAX_NAMES distinct component names over the sandbox's life). stderr is drained into a
capped buffer. A malformed, oversized or late reply kills the worker.

Failures raise `RewardError` with the exact view that caused them; no call ever returns a
default. The batch stops at the first failing item (earlier items have already updated
their slots' memory). After "exception" or "bad_return" the worker keeps running with
every memory intact. After "timeout", "memory", "cpu", "crashed", "protocol" or a
runtime "forbidden" the worker is killed, and `call` raises "crashed" until `reset()`
starts a fresh worker; every slot's memory then starts empty, not only the slots passed
to reset.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import pickle
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from embodied.errors import EmbodiedError
from embodied.sandbox.checks import KINDS, RewardError, check_source, view_keys
from embodied.sandbox.guards import MAX_COMPONENTS, MAX_NAME

WORKER = Path(__file__).with_name("worker.py")
STARTUP_S = 30.0  # interpreter start, numpy import and lock-down, before the reward's own timeout applies
EXIT_MEMORY, PAGE = 3, 24  # worker.EXIT_MEMORY, worker.PAGE
LINE_WAIT_S = 0.2  # how long a timed-out call may take to report its line before the worker is killed
FATAL = frozenset({"timeout", "memory", "cpu", "crashed", "protocol", "forbidden"})
ISOLATIONS = ("kernel", "python")
MAX_NAMES = 64  # distinct component names over a sandbox's life (per reply: guards.MAX_COMPONENTS, MAX_NAME)
MAX_MESSAGE = 500  # characters of any text from the worker that is kept (error messages, stderr lines)
STDERR_CAP = 64 * 1024
REPLY_BASE, REPLY_PER_VIEW = 64 * 1024, 8 * (MAX_COMPONENTS + 1) + 16
PIPE_SIZE = 1 << 20
# the only variables the worker gets: thread counts, and OpenBLAS's CPU settings where this machine needs them
_ENV_KEEP = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LD_LIBRARY_PATH")
_ENV = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


class IsolationError(EmbodiedError):
    """The kernel refused the isolation that untrusted reward code needs (and `isolation=python` was not chosen)."""


def _stop(proc: subprocess.Popen, fds: list[int], progress: mmap.mmap, workdir: str) -> None:
    """Kill the worker, reap it and close its pipes."""
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        pass
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
    progress.close()
    shutil.rmtree(workdir, ignore_errors=True)


class RewardSandbox:
    """A designed reward, statically checked, then run in its own kernel-isolated worker process.

    timeout_s: wall-clock limit for one batched call (and for running the module's top level).
    memory_mb: address space the reward may add to the worker's after start-up (RLIMIT_AS).
    cpu_s: CPU seconds the worker may use between the parent's checks (RLIMIT_CPU); a
        backstop for a worker whose parent stopped watching, re-armed at least every cpu_s / 2.
    isolation: "kernel" (seccomp required; Landlock and a network namespace where the
        kernel allows them) or "python" (only the Python layers: for machines whose kernel
        refuses seccomp, with a warning).
    Start-up takes about 0.2-0.3 s (a fresh interpreter importing numpy). Not thread-safe.
    """

    def __init__(
        self,
        source: str,
        *,
        timeout_s: float = 1.0,
        memory_mb: int = 512,
        cpu_s: float = 60.0,
        isolation: str = "kernel",
    ) -> None:
        problems = check_source(source)
        if problems:
            raise problems[0]
        self._setup(source, timeout_s, memory_mb, cpu_s, isolation, guards=True)

    @classmethod
    def _unchecked(cls, source: str, *, guards: bool = True, **limits: Any) -> RewardSandbox:
        """A sandbox without the static checks (and, with guards=False, without the Python layers):
        only for testing the runtime layers, and the kernel layer on its own."""
        self = cls.__new__(cls)
        self._setup(source, guards=guards, **limits)
        return self

    def _setup(
        self,
        source: str,
        timeout_s: float = 1.0,
        memory_mb: int = 512,
        cpu_s: float = 60.0,
        isolation: str = "kernel",
        guards: bool = True,
    ) -> None:
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}, not {isolation!r}")
        self._source, self._timeout, self._memory_mb, self._cpu_s = source, float(timeout_s), memory_mb, float(cpu_s)
        self._isolation_mode, self._guards = isolation, guards
        self._keys = view_keys(source)
        self._stopped_by: str | None = None
        self._pending: set[int] = set()
        self._proc: subprocess.Popen | None = None
        self._names: dict[str, None] = {}
        self._stats = {"calls": 0, "batches": 0, "starts": 0, "start_s": 0.0}
        self.isolation: dict[str, Any] = {}
        self._start()

    @property
    def stats(self) -> dict[str, float]:
        """Reward calls and batches served, worker starts, and the last start-up time in seconds."""
        return dict(self._stats)

    @property
    def stderr(self) -> str:
        """What the worker wrote to stderr (capped at STDERR_CAP bytes: the first half and the latest half)."""
        return (bytes(self._err_head) + (b"\n[...]\n" if self._err_dropped else b"") + bytes(self._err_tail)).decode(
            errors="replace"
        )

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
        """Give these slots a fresh empty `memory` and a fresh module namespace (applied with the next batch).

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
            raise RewardError(
                "crashed",
                f"the reward worker was stopped by an earlier {self._stopped_by} error; "
                "call reset() to start a fresh one (every slot's memory starts empty)",
            )
        if not views:
            return []
        views = list(views)
        keys = self._keys
        sent = views if keys is None else [{k: view[k] for k in keys if k in view} for view in views]
        payload = pickle.dumps(("call", sorted(self._pending), sent, list(slots)), protocol=pickle.HIGHEST_PROTOCOL)
        self._pending.clear()
        self._arm_cpu()
        header, floats = self._exchange(payload, views, REPLY_BASE + REPLY_PER_VIEW * len(views))
        if "error" in header:
            self._fail(views, **_error_fields(header["error"]))
        results = self._decode(header, floats, views)
        self._stats["calls"] += len(views)
        self._stats["batches"] += 1
        return results

    # --- the worker's life ---------------------------------------------------------------

    def _start(self) -> None:
        if self._proc is not None:
            self._finalizer()
        began = time.perf_counter()
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        err_r, err_w = os.pipe()
        for fd in (req_w, resp_r, err_r):
            os.set_blocking(fd, False)
        for fd in (req_w, resp_r):
            _grow_pipe(fd)
        workdir = tempfile.mkdtemp(prefix="reward-worker-")
        env = {**{k: os.environ[k] for k in _ENV_KEEP if k in os.environ}, **_ENV}
        with tempfile.TemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as page:  # memory, not disk
            page.truncate(PAGE)
            self._progress = mmap.mmap(page.fileno(), PAGE)
            fds = (req_r, resp_w, page.fileno())
            try:
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", str(WORKER), *map(str, fds)],
                    pass_fds=fds,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err_w,
                    env=env,
                    cwd=workdir,
                    close_fds=True,
                )
            finally:
                for fd in (req_r, resp_w, err_w):
                    os.close(fd)
        self._req, self._resp, self._err = req_w, resp_r, err_r
        self._err_head, self._err_tail, self._err_dropped, self._err_open = bytearray(), bytearray(), False, True
        self._pollers = {fd: select.poll() for fd in (resp_r, req_w)}  # waiting for a reply / for room to write
        self._pollers[resp_r].register(resp_r, select.POLLIN)
        self._pollers[req_w].register(req_w, select.POLLOUT)
        for poller in self._pollers.values():
            poller.register(err_r, select.POLLIN)
        self._finalizer = weakref.finalize(self, _stop, self._proc, [req_w, resp_r, err_r], self._progress, workdir)
        self._cpu_armed_at = -math.inf
        init = {
            "source": self._source,
            "path": [p for p in sys.path if p],
            "memory_mb": self._memory_mb,
            "isolation": self._isolation_mode,
            "guards": self._guards,
        }
        self._arm_cpu()
        header, _ = self._exchange(
            pickle.dumps(init), None, REPLY_BASE, timeout=STARTUP_S, what="starting the reward worker"
        )
        self._check_isolation(header.get("locked"))
        header, _ = self._exchange(None, None, REPLY_BASE, what="running the module's top level")
        if "error" in header:
            self._fail(None, **_error_fields(header["error"]))
        if header.get("ready") is not True:
            self._fail(None, "protocol", "the reward worker sent an unexpected reply at start-up")
        self._stats["starts"] += 1
        self._stats["start_s"] = time.perf_counter() - began

    def _check_isolation(self, report: Any) -> None:
        """Refuse to go on without seccomp under isolation=kernel; record what took effect."""
        if not isinstance(report, dict):
            self._fail(None, "protocol", "the reward worker did not report its isolation")
        problems = [str(p)[:MAX_MESSAGE] for p in report.get("problems", []) if isinstance(p, str)][:8]
        self.isolation = {
            "mode": self._isolation_mode,
            "seccomp": report.get("seccomp") is True,
            "landlock": report.get("landlock") if type(report.get("landlock")) is int else 0,
            "netns": report.get("netns") is True,
            "nobody": report.get("nobody") is True,
            "problems": problems,
        }
        if self._isolation_mode == "kernel" and not self.isolation["seccomp"]:
            self._stopped_by = "isolation"
            self._kill()
            raise IsolationError(
                f"the kernel refused the reward sandbox's seccomp filter ({'; '.join(problems) or 'no reason given'}): "
                "untrusted reward code cannot be contained here; rerun with reward.isolation=python to accept "
                "only the Python-level layers (see docs/sandbox.md)"
            )

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def _arm_cpu(self) -> None:
        """Re-arm the worker's RLIMIT_CPU from outside when half of cpu_s of wall time has passed since the last arming."""
        now = time.monotonic()
        if now - self._cpu_armed_at < self._cpu_s / 2:
            return
        used = _cpu_seconds(self._proc.pid)
        if used is None:
            return
        soft = math.ceil(used + self._cpu_s)
        try:
            resource.prlimit(self._proc.pid, resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
            self._cpu_armed_at = now
        except (OSError, ValueError):
            pass

    # --- one exchange ---------------------------------------------------------------------

    def _exchange(
        self,
        payload: bytes | None,
        views: list | None,
        cap: int,
        timeout: float | None = None,
        what: str = "a reward call",
    ) -> tuple[dict, np.ndarray]:
        """Send a request (if any) and read one reply of at most `cap` bytes before the deadline."""
        limit = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        what = (what, limit)
        if payload is not None:
            self._write(struct.pack("<I", len(payload)) + payload, deadline, views, what)
        size = struct.unpack("<I", self._read(4, deadline, views, what))[0]
        if size > cap or size < 4:
            self._fail(views, "protocol", f"the reward worker sent a {size}-byte reply (at most {cap} allowed)")
        data = self._read(size, deadline, views, what)
        head = struct.unpack_from("<I", data)[0]
        if head > size - 4 or (size - 4 - head) % 8:
            self._fail(views, "protocol", "the reward worker sent a malformed reply")
        try:
            header = json.loads(data[4 : 4 + head])
        except (ValueError, UnicodeDecodeError, RecursionError):
            self._fail(views, "protocol", "the reward worker sent a reply that is not JSON")
        if not isinstance(header, dict):
            self._fail(views, "protocol", "the reward worker sent a reply that is not a JSON object")
        return header, np.frombuffer(data, dtype="<f8", offset=4 + head)

    def _write(self, data: bytes, deadline: float, views: list | None, what: tuple[str, float]) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._req, view) :]
                continue
            except BlockingIOError:
                pass
            except OSError:  # the worker closed its end: it has died
                self._died(views)
            self._wait(select.POLLOUT, self._req, deadline, views, what)

    def _read(self, n: int, deadline: float, views: list | None, what: tuple[str, float]) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = os.read(self._resp, n - len(buf))
            except BlockingIOError:
                self._wait(select.POLLIN, self._resp, deadline, views, what)
                continue
            if not chunk:
                self._died(views)
            buf += chunk
        return bytes(buf)

    def _wait(self, event: int, fd: int, deadline: float, views: list | None, what: tuple[str, float]) -> None:
        """Block until `fd` is ready for `event`, draining stderr meanwhile; past the deadline, time out.

        A reply already waiting counts whatever the clock says: a pause in this process (a
        full GC, descheduling) must not be blamed on the reward.
        """
        poller = self._pollers[fd]
        while True:
            remaining = deadline - time.monotonic()
            ready = poller.poll(max(remaining, 0) * 1e3)
            if any(ready_fd == fd for ready_fd, _ in ready):
                return
            if ready and self._err_open:
                self._drain_stderr()
            if remaining <= 0:
                index = _index(self._progress)
                self._fail(views, "timeout", f"{what[0]} took longer than {what[1]:g} s", self._hung_line(), index)

    def _drain_stderr(self) -> None:
        if not self._err_open:
            return
        try:
            chunk = os.read(self._err, 1 << 16)
        except (BlockingIOError, OSError):
            return
        if not chunk:  # the worker closed stderr: stop polling it
            self._err_open = False
            for poller in self._pollers.values():
                poller.unregister(self._err)
            return
        room = STDERR_CAP // 2 - len(self._err_head)
        self._err_head += chunk[: max(room, 0)]
        rest = chunk[max(room, 0) :]
        if rest:
            self._err_tail += rest
            if len(self._err_tail) > STDERR_CAP // 2:
                del self._err_tail[: len(self._err_tail) - STDERR_CAP // 2]
                self._err_dropped = True

    def _hung_line(self) -> int | None:
        """The reward line a timed-out worker is running, if it answers SIGUSR1 quickly (a C call does not)."""
        struct.pack_into("<q", self._progress, 16, 0)
        try:
            self._proc.send_signal(signal.SIGUSR1)
        except OSError:
            return None
        waited = 0.0
        while waited < LINE_WAIT_S:
            (line,) = struct.unpack_from("<q", self._progress, 16)
            if line:
                return line if 0 < line <= self._source.count("\n") + 1 else None
            time.sleep(0.01)
            waited += 0.01
        return None

    def _died(self, views: list | None) -> NoReturn:
        """Report why the worker exited: CPU limit, memory, the kernel's filter, or a crash (with its last stderr line)."""
        try:
            code = self._proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            code = None
        self._drain_stderr()
        index = _index(self._progress)
        if code == -signal.SIGXCPU:
            self._fail(views, "cpu", f"reward used more than {self._cpu_s:g} s of CPU time", index=index)
        if code == EXIT_MEMORY:
            self._fail(views, "memory", "the reward worker ran out of memory", index=index)
        if code == -signal.SIGSYS:
            self._fail(
                views,
                "forbidden",
                "the kernel killed the reward worker for a forbidden system call (files, "
                "processes, sockets and signals to other processes are not available to reward code)",
                index=index,
            )
        lines = [line for line in self.stderr[-2000:].splitlines() if line.strip()]
        how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit status {code}"
        self._fail(
            views,
            "crashed",
            f"the reward worker died ({how}){': ' + lines[-1][:MAX_MESSAGE] if lines else ''}",
            index=index,
        )

    def _fail(
        self, views: list | None, kind: str, message: str, line: int | None = None, index: int | None = None
    ) -> NoReturn:
        """Raise the RewardError for item `index` of `views`, first stopping the worker if the error is fatal."""
        if kind not in KINDS:
            kind, message = "protocol", f"unknown failure from the reward worker: {kind[:40]}"
        if kind == "memory":
            message += f" (limit: {self._memory_mb} MB above the worker's start-up size)"
        if kind in FATAL or views is None:  # a worker that failed to start has exited already
            self._stopped_by = kind
            self._kill()
        view = None
        if views:
            view = views[index] if type(index) is int and 0 <= index < len(views) else views[0]
        if type(line) is not int or not 0 < line <= self._source.count("\n") + 1:
            line = None
        raise RewardError(kind, message[:MAX_MESSAGE], line, view)

    def _decode(self, header: dict, floats: np.ndarray, views: list) -> list[tuple[float, dict[str, float]]]:
        """Rebuild and validate the (total, components) pairs from the worker's schemas and float64s."""
        n = len(views)
        schemas, ids = header.get("schemas"), header.get("ids")
        if (
            type(schemas) is not list
            or not schemas
            or not (ids is None or type(ids) is list and len(ids) == n)
            or not all(type(s) is list and len(s) <= MAX_COMPONENTS and all(type(x) is str for x in s) for s in schemas)
            or ids is not None
            and not all(type(i) is int and 0 <= i < len(schemas) for i in ids)
        ):
            self._fail(views, "protocol", "the reward worker sent a malformed reply")
        names = [tuple(s) for s in schemas]
        for schema in names:
            self._check_names(schema, views)
        single = ids is None  # one schema for the whole batch: the usual case
        ids = [0] * n if single else ids
        if sum(len(names[i]) + 1 for i in ids) != len(floats) if not single else len(floats) != n * (len(names[0]) + 1):
            self._fail(views, "protocol", "the reward worker sent the wrong number of values")
        if not np.isfinite(floats).all():
            bad = int(np.argmin(np.isfinite(floats)))
            self._fail(
                views, "bad_return", "the reward returned a value that is not finite", index=_item_of(bad, ids, names)
            )
        if single:
            schema = names[0]
            return [(row[0], dict(zip(schema, row[1:]))) for row in floats.reshape(n, len(schema) + 1).tolist()]
        values, out, pos = floats.tolist(), [], 0
        for sid in ids:
            schema = names[sid]
            end = pos + 1 + len(schema)
            out.append((values[pos], dict(zip(schema, values[pos + 1 : end]))))
            pos = end
        return out

    def _check_names(self, schema: tuple[str, ...], views: list) -> None:
        """Component names: at most MAX_NAME characters, at most MAX_NAMES distinct ones over the sandbox's life."""
        for name in schema:
            if name not in self._names:
                if len(name) > MAX_NAME:
                    self._fail(views, "bad_return", f"component name of {len(name)} characters (at most {MAX_NAME})")
                if len(self._names) >= MAX_NAMES:
                    self._fail(
                        views,
                        "bad_return",
                        f"the reward has returned more than {MAX_NAMES} distinct component "
                        "names; use a fixed set of names",
                    )
                self._names[name] = None


def _error_fields(error: Any) -> dict[str, Any]:
    """The worker's error record as arguments of `_fail`, each checked for type and size."""
    if not isinstance(error, dict):
        return {"kind": "protocol", "message": "the reward worker sent a malformed error"}
    kind, message = error.get("kind"), error.get("message")
    return {
        "kind": kind if type(kind) is str else "protocol",
        "message": message[:MAX_MESSAGE] if type(message) is str else "(no message)",
        "line": error.get("line") if type(error.get("line")) is int else None,
        "index": error.get("index") if type(error.get("index")) is int else None,
    }


def _item_of(value_index: int, ids: list[int], names: list[tuple[str, ...]]) -> int:
    pos = 0
    for item, sid in enumerate(ids):
        pos += 1 + len(names[sid])
        if value_index < pos:
            return item
    return 0


def _index(progress: mmap.mmap) -> int:
    return struct.unpack_from("<q", progress, 8)[0]


def _grow_pipe(fd: int) -> None:
    """Give a pipe 1 MiB of buffer where Linux allows it, so a batch is usually one write."""
    try:
        import fcntl

        fcntl.fcntl(fd, 1031, PIPE_SIZE)  # F_SETPIPE_SZ
    except (OSError, ImportError):
        pass


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) the worker has used, from /proc; None when unreadable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
