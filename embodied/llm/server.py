"""A local OpenAI-compatible server (llama-cpp-python's) started on demand and shared between jobs.

`LocalServer(config)` is a context manager. On entry it uses a server already answering
on the configured port with the configured model (one started by `embodied-llm serve`, or by
another design job of the same sweep), or starts one; on exit it stops the server only if
it started it and no other job still holds a lease on it. The bookkeeping is a folder per
port under `<cache>/llm-servers/` (a lock file, `server.json`, one lease file per user),
so jobs in separate processes agree without talking to each other.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator, Optional

from embodied.errors import ConfigError
from embodied.llm.config import LLMConfig, LocalServerConfig
from embodied.llm.models import cache_dir, model_file

log = logging.getLogger("embodied.llm")
POLL_S = 0.5


class ServerError(ConfigError):
    """The local server could not be started or did not become ready."""


def default_threads() -> int:
    """llama.cpp threads: 1 on a machine of 2 cores or fewer (other work shares them), else half the cores."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else cores // 2


def server_argv(local: LocalServerConfig, alias: str, host: str, port: int, seed: int) -> list[str]:
    """The `python -m llama_cpp.server` command line for `local`, serving the model under `alias`."""
    threads = local.threads or default_threads()
    argv = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_file(local.gguf or alias)),
        "--model_alias",
        alias,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(local.n_ctx),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--seed",
        str(seed),
        "--logits_all",  # the server's default keeps every token's logits: n_ctx x vocab floats (5 GB at 8192 for Qwen2.5)
        "false",
    ]
    if local.prompt_cache_mb:  # jobs sharing a server, and one job's Designer/Critic turns, interleave prompts
        argv += ["--cache", "true", "--cache_type", "ram", "--cache_size", str(local.prompt_cache_mb << 20)]
    return argv


def served_models(base_url: str, timeout_s: float = 2.0) -> Optional[list[str]]:
    """Model ids listed by `{base_url}/models`, or None when nothing answers there."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(base_url.rstrip("/") + "/models", timeout=timeout_s) as reply:
            data = json.loads(reply.read())
    except (OSError, ValueError):
        return None
    entries = data.get("data") if isinstance(data, dict) else None
    return [str(e.get("id")) for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not a server
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _log_tail(path: Path, lines: int = 1) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


class LocalServer:
    """Use or start the local llama.cpp server of an `llm` config with `local.enabled`; see the module doc."""

    def __init__(self, config: LLMConfig) -> None:
        url = urllib.parse.urlsplit(config.base_url)
        if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
            raise ConfigError(
                f"llm.local starts a server on this machine: llm.base_url must be http://127.0.0.1:<port>/v1, got {config.base_url}"
            )
        self.config, self.host, self.port = config, url.hostname, url.port
        self.state = cache_dir() / "llm-servers" / str(self.port)
        self.lease: Optional[Path] = None
        self.started = False
        self.proc: Optional[subprocess.Popen] = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state.mkdir(parents=True, exist_ok=True)
        (self.state / "leases").mkdir(exist_ok=True)
        with open(self.state / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _leases(self) -> list[Path]:
        """Live lease files; stale ones (their process is gone) are removed."""
        live = []
        for lease in (self.state / "leases").iterdir():
            try:
                pid = int(lease.name.split("-")[0])
            except ValueError:
                pid = -1
            if pid > 0 and _alive(pid):
                live.append(lease)
            else:
                lease.unlink(missing_ok=True)
        return live

    def _record(self) -> dict[str, Any]:
        try:
            return json.loads((self.state / "server.json").read_text())
        except (OSError, ValueError):
            return {}

    def __enter__(self) -> "LocalServer":
        alias = self.config.model
        with self._locked():
            record = self._record()
            listed = served_models(self.config.base_url)
            if listed is not None and alias not in listed:
                raise ServerError(
                    f"port {self.port} already serves {', '.join(listed) or 'another server'}, not {alias}: stop it or pick another port in llm.base_url"
                )
            if listed is None and not (record.get("pid") and _alive(record["pid"])):
                self._start(alias)
            self.lease = self.state / "leases" / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            self.lease.touch()
        try:
            self._wait_ready(alias)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self, alias: str) -> None:
        seed = random.SystemRandom().randrange(2**31)
        argv = server_argv(self.config.local, alias, self.host, self.port, seed)
        log_path = self.state / "server.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        record = {"pid": proc.pid, "model": alias, "argv": argv, "seed": seed, "started": time.time()}
        (self.state / "server.json").write_text(json.dumps(record, indent=1))
        self.started, self.proc = True, proc
        log.info("started llama.cpp server pid %d on port %d (log: %s)", proc.pid, self.port, log_path)

    def _wait_ready(self, alias: str) -> None:
        deadline = time.monotonic() + self.config.local.startup_timeout_s
        while time.monotonic() < deadline:
            listed = served_models(self.config.base_url)
            if listed is not None and alias in listed:
                return
            pid = self._record().get("pid")
            if listed is None and pid and not _alive(pid):
                tail = _log_tail(self.state / "server.log", 2)
                raise ServerError(
                    f"the local LLM server exited while starting ({tail or 'no output'}); is llama-cpp-python[server] installed (pip install -e '.[llm]')?"
                )
            time.sleep(POLL_S)
        raise ServerError(
            f"the local LLM server on port {self.port} did not answer within {self.config.local.startup_timeout_s:g} s: "
            f"see {self.state / 'server.log'}, or raise llm.local.startup_timeout_s"
        )

    def gone(self) -> Optional[str]:
        """Why the server stopped answering (it exited, with its signal and log), or None while it answers.

        For error messages: a request refused mid-run says more with the server's own last words.
        """
        if served_models(self.config.base_url) is not None:
            return None
        pid = self.proc.pid if self.proc is not None else self._record().get("pid")
        if not pid:
            return f"nothing answers on port {self.port} any more (a server this job did not start)"
        code = self.proc.poll() if self.proc is not None else None
        if code is None and _alive(pid):
            return f"the local LLM server (pid {pid}) runs but does not answer; see {self.state / 'server.log'}"
        how = "exited"
        if code is not None and code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
            if -code == signal.SIGILL:
                how += " (an illegal instruction: its llama-cpp-python build does not fit this CPU; `make setup` installs a portable one)"
            elif -code == signal.SIGKILL:
                how += " (the kernel's out-of-memory killer, or someone, stopped it; lower llm.local.prompt_cache_mb or n_ctx)"
        elif code is not None:
            how = f"exited with status {code}"
        tail = _log_tail(self.state / "server.log", 2)
        return (
            f"the local LLM server (pid {pid}) {how}; its log ends: {tail or 'no output'} ({self.state / 'server.log'})"
        )

    def __exit__(self, *exc: object) -> None:
        with self._locked():
            if self.lease is not None:
                self.lease.unlink(missing_ok=True)
                self.lease = None
            record = self._record()
            if self._leases() or not record.get("pid"):
                return
            stop(record["pid"])
            (self.state / "server.json").unlink(missing_ok=True)


def stop(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the server's process group, SIGKILL it after `grace_s`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _alive(pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        if not _alive(pid):
            return


def serving(config: LLMConfig) -> contextlib.AbstractContextManager:
    """A LocalServer when `config.local.enabled`, else a no-op context (the endpoint is the user's)."""
    return LocalServer(config) if config.local.enabled else contextlib.nullcontext()


def base_url_for(port: int, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}/v1"


def wait_for(base_url: str, alias: str, timeout_s: float) -> bool:
    """Whether `{base_url}/models` lists `alias` within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = served_models(base_url)
        if listed is not None and alias in listed:
            return True
        time.sleep(POLL_S)
    return False


__all__ = ["LocalServer", "ServerError", "serving", "server_argv", "served_models", "stop", "wait_for", "base_url_for"]
