"""Kernel-enforced isolation for the reward worker (stdlib and ctypes only; Linux, x86-64 and arm64).

`lock_down` is called once by the worker after start-up (interpreter, numpy and the
reward module compiled) and before any reward code runs. In order, where the kernel
allows each:

1. a new network namespace (no interfaces but a down loopback): `unshare(CLONE_NEWNET)`,
   through a new user namespace when the worker is not root;
2. rlimits: no file may be written (RLIMIT_FSIZE 0), no new descriptor opened beyond
   the few in use (RLIMIT_NOFILE), no new process (RLIMIT_NPROC 0), no core dump;
3. privileges: a root worker becomes `nobody` with no supplementary groups; then
   no-new-privileges and not dumpable (no ptrace attach, no /proc/<pid>/mem);
4. Landlock: a ruleset that handles every filesystem right of the running ABI (and TCP
   bind/connect, abstract unix sockets and signals where the ABI has them) with no rule
   granting anything, so no path can be opened, created, executed or listed;
5. seccomp-bpf (applied to all threads): the syscalls a pure computation needs are
   allowed (memory, clocks, futexes, reading the request pipe, writing the reply pipe
   and stderr, signals to itself, exit); process creation, exec, ptrace, files, sockets,
   namespaces, signals to other processes and the like kill the process (SIGSYS); any
   other syscall fails with EPERM.

Each step reports whether it took effect; the parent decides what is required (seccomp
always, unless `isolation=python`). Nothing here is reachable from reward code: the
worker imports this file by path before the reward module runs.
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import struct
from typing import Any

# syscall numbers: (x86-64, arm64); None where the arch has no such call
SYSCALLS: dict[str, tuple[int | None, int | None]] = {
    "read": (0, 63),
    "write": (1, 64),
    "close": (3, 57),
    "fstat": (5, 80),
    "newfstatat": (262, 79),
    "lseek": (8, 62),
    "mmap": (9, 222),
    "mprotect": (10, 226),
    "munmap": (11, 215),
    "mremap": (25, 216),
    "brk": (12, 214),
    "madvise": (28, 233),
    "rt_sigaction": (13, 134),
    "rt_sigprocmask": (14, 135),
    "rt_sigreturn": (15, 139),
    "sigaltstack": (131, 132),
    "getpid": (39, 172),
    "gettid": (186, 178),
    "exit": (60, 93),
    "exit_group": (231, 94),
    "kill": (62, 129),
    "tkill": (200, 130),
    "tgkill": (234, 131),
    "futex": (202, 98),
    "clock_gettime": (228, 113),
    "clock_getres": (229, 114),
    "clock_nanosleep": (230, 115),
    "nanosleep": (35, 101),
    "gettimeofday": (96, 169),
    "getrandom": (318, 278),
    "sched_yield": (24, 124),
    "restart_syscall": (219, 128),
    "getrusage": (98, 165),
    "rseq": (334, 293),
    "membarrier": (324, 283),
    # killed on sight
    "open": (2, None),
    "openat": (257, 56),
    "openat2": (437, 437),
    "creat": (85, None),
    "execve": (59, 221),
    "execveat": (322, 281),
    "fork": (57, None),
    "vfork": (58, None),
    "clone": (56, 220),
    "clone3": (435, 435),
    "ptrace": (101, 117),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "socket": (41, 198),
    "socketpair": (53, 199),
    "connect": (42, 203),
    "bind": (49, 200),
    "listen": (50, 201),
    "accept": (43, 202),
    "accept4": (288, 242),
    "sendto": (44, 206),
    "sendmsg": (46, 211),
    "recvfrom": (45, 207),
    "recvmsg": (47, 212),
    "setns": (308, 268),
    "unshare": (272, 97),
    "mount": (165, 40),
    "pidfd_open": (434, 434),
    "pidfd_send_signal": (424, 424),
    "pidfd_getfd": (438, 438),
    "memfd_create": (319, 279),
    "io_uring_setup": (425, 425),
    "bpf": (321, 280),
    "perf_event_open": (298, 241),
    "userfaultfd": (323, 282),
    "kcmp": (312, 272),
    "prctl": (157, 167),
    "seccomp": (317, 277),
    "setrlimit": (160, 164),
    "prlimit64": (302, 261),
    "landlock_create_ruleset": (444, 444),
    "landlock_add_rule": (445, 445),
    "landlock_restrict_self": (446, 446),
}
ALLOW = (
    "close",
    "fstat",
    "newfstatat",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "mremap",
    "brk",
    "madvise",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "getpid",
    "gettid",
    "exit",
    "exit_group",
    "futex",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "getrandom",
    "sched_yield",
    "restart_syscall",
    "getrusage",
    "rseq",
    "membarrier",
)
KILL = (
    "open",
    "openat",
    "openat2",
    "creat",
    "execve",
    "execveat",
    "fork",
    "vfork",
    "clone",
    "clone3",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "sendmsg",
    "recvfrom",
    "recvmsg",
    "setns",
    "unshare",
    "mount",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "memfd_create",
    "io_uring_setup",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "kcmp",
    "prctl",
    "seccomp",
    "setrlimit",
    "prlimit64",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
)
ARCHES = {"x86_64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7)}  # column in SYSCALLS, AUDIT_ARCH_*

RET_KILL_PROCESS, RET_ERRNO, RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
EPERM = 1
PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE = 38, 4
SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC = 1, 1
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
LANDLOCK_CREATE_RULESET_VERSION = 1
NOBODY = 65534
# BPF opcodes
LD_W_ABS, JEQ_K, JGE_K, RET_K = 0x20, 0x15, 0x35, 0x06


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _syscall(libc: ctypes.CDLL, nr: int, *args: Any) -> int:
    libc.syscall.restype = ctypes.c_long
    return libc.syscall(ctypes.c_long(nr), *args)


def _errno_text() -> str:
    return os.strerror(ctypes.get_errno())


def seccomp_program(
    arch: str, read_fds: tuple[int, ...], write_fds: tuple[int, ...], pid: int
) -> list[tuple[int, int, int, int]]:
    """The filter as BPF instructions (code, jt, jf, k): allow-list, kill-list, EPERM for the rest.

    read/write are allowed only on the given descriptors; kill/tkill/tgkill only with
    this process's pid as first argument. Arguments are compared on their low 32 bits,
    which is all the kernel reads of an fd or a pid.
    """
    column, audit_arch = ARCHES[arch]
    nr = {name: numbers[column] for name, numbers in SYSCALLS.items() if numbers[column] is not None}
    prog: list[tuple[int, Any, Any, int]] = []  # jt/jf hold labels until resolved

    def jump_if(value: int, label: str) -> None:  # jump to label when A == value, else fall through
        prog.append((JEQ_K, label, 0, value))

    prog.append((LD_W_ABS, 0, 0, 4))  # seccomp_data.arch
    prog.append((JEQ_K, 0, "kill", audit_arch))
    prog.append((LD_W_ABS, 0, 0, 0))  # seccomp_data.nr
    if arch == "x86_64":
        prog.append((JGE_K, "kill", 0, 0x40000000))  # the x32 ABI
    for name in ("read", "write", "kill", "tkill", "tgkill"):
        jump_if(nr[name], f"check_{name}")
    for names, label in ((ALLOW, "allow"), (KILL, "kill")):
        for name in names:
            if name in nr:
                jump_if(nr[name], label)
    prog.append((RET_K, 0, 0, RET_ERRNO | EPERM))
    labels: dict[str, int] = {}

    def arg0_in(label: str, values: tuple[int, ...], otherwise: str) -> None:
        labels[label] = len(prog)
        prog.append((LD_W_ABS, 0, 0, 16))  # low word of args[0]
        for value in values:
            jump_if(value, "allow")
        prog.append((RET_K, 0, 0, RET_ERRNO | EPERM) if otherwise == "eperm" else (RET_K, 0, 0, RET_KILL_PROCESS))

    arg0_in("check_read", read_fds, "eperm")
    arg0_in("check_write", write_fds, "eperm")
    for name in ("kill", "tkill", "tgkill"):
        arg0_in(f"check_{name}", (pid,), "kill")
    labels["allow"] = len(prog)
    prog.append((RET_K, 0, 0, RET_ALLOW))
    labels["kill"] = len(prog)
    prog.append((RET_K, 0, 0, RET_KILL_PROCESS))
    out = []
    for i, (code, jt, jf, k) in enumerate(prog):
        jt, jf = (labels[j] - i - 1 if isinstance(j, str) else j for j in (jt, jf))
        if not (0 <= jt < 256 and 0 <= jf < 256):
            raise ValueError("seccomp program too long for 8-bit jumps")
        out.append((code, jt, jf, k))
    return out


def _install_seccomp(libc: ctypes.CDLL, arch: str, read_fds: tuple[int, ...], write_fds: tuple[int, ...]) -> str | None:
    prog = seccomp_program(arch, read_fds, write_fds, os.getpid())
    filters = (_SockFilter * len(prog))(*(_SockFilter(*ins) for ins in prog))
    fprog = _SockFprog(len(prog), filters)
    nr = SYSCALLS["seccomp"][ARCHES[arch][0]]
    if (
        _syscall(
            libc,
            nr,
            ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
            ctypes.c_uint(SECCOMP_FILTER_FLAG_TSYNC),
            ctypes.byref(fprog),
        )
        != 0
    ):
        return f"seccomp refused: {_errno_text()}"
    return None


def _landlock(libc: ctypes.CDLL) -> tuple[int, str | None]:
    """Deny every filesystem right (and TCP, abstract sockets, signals where the ABI has them): (abi, error)."""
    abi = _syscall(libc, 444, None, ctypes.c_size_t(0), ctypes.c_uint(LANDLOCK_CREATE_RULESET_VERSION))
    if abi < 1:
        return 0, f"Landlock unavailable: {_errno_text()}"
    fs = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (1 << 14 if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)
    net = 0b11 if abi >= 4 else 0  # LANDLOCK_ACCESS_NET_BIND_TCP | CONNECT_TCP
    scoped = 0b11 if abi >= 6 else 0  # LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | SIGNAL
    attr = struct.pack("<QQQ", fs, net, scoped)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = _syscall(libc, 444, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint(0))
    if fd < 0:
        return abi, f"Landlock ruleset refused: {_errno_text()}"
    try:
        if _syscall(libc, 446, ctypes.c_int(fd), ctypes.c_uint(0)) != 0:
            return abi, f"Landlock restrict_self refused: {_errno_text()}"
    finally:
        os.close(fd)
    return abi, None


def _network_namespace(libc: ctypes.CDLL) -> str | None:
    if libc.unshare(ctypes.c_int(CLONE_NEWNET)) == 0:
        return None
    first = _errno_text()
    if libc.unshare(ctypes.c_int(CLONE_NEWUSER | CLONE_NEWNET)) == 0:
        return None
    return f"network namespace refused: {first} (and through a user namespace: {_errno_text()})"


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def lock_down(read_fds: tuple[int, ...], write_fds: tuple[int, ...], open_fds: int) -> dict[str, Any]:
    """Apply every layer the kernel allows; {"seccomp": bool, "landlock": abi or 0, "netns": bool, ..., "problems": [...]}.

    Call once, single-threaded, after everything the worker will need is imported.
    `open_fds` is the number of descriptors to leave room for (RLIMIT_NOFILE).
    """
    report: dict[str, Any] = {"seccomp": False, "landlock": 0, "netns": False, "nobody": False, "problems": []}
    problems = report["problems"]
    arch = platform.machine()
    if platform.system() != "Linux" or arch not in ARCHES:
        problems.append(f"kernel isolation needs Linux on x86-64 or arm64, not {platform.system()} {arch}")
        return report
    threads = _threads()
    if threads != 1:
        problems.append(f"the worker has {threads} threads; kernel isolation needs exactly one")
        return report
    libc = _libc()
    error = _network_namespace(libc)
    report["netns"] = error is None
    problems += [error] if error else []
    for limit, value in (
        (resource.RLIMIT_FSIZE, 0),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, 0),
        (resource.RLIMIT_NOFILE, open_fds),
    ):
        try:
            resource.setrlimit(limit, (value, value))
        except (OSError, ValueError) as err:
            problems.append(f"rlimit {limit} refused: {err}")
    if os.getuid() == 0:
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            report["nobody"] = True
        except OSError as err:
            problems.append(f"dropping root to nobody refused: {err}")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        problems.append(f"no_new_privs refused: {_errno_text()}")
        return report
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    report["landlock"], error = _landlock(libc)
    if error:
        report["landlock"] = 0
        problems.append(error)
    error = _install_seccomp(libc, arch, read_fds, write_fds)
    report["seccomp"] = error is None
    problems += [error] if error else []
    return report
