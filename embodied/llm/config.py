"""Config schema of the LLM client (`llm.*`): endpoint, sampling, retries and record/replay."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from embodied.errors import ConfigError

MODES = ("live", "record", "replay")


@dataclass
class LocalServerConfig:
    """llm.local: the llama.cpp server `llm=local` starts on demand (embodied/llm/server.py)."""

    enabled: bool = False
    """Start (or share) a local server for llm.base_url's port serving llm.model; llm=local sets it."""
    gguf: Optional[str] = None
    """A .gguf file to serve instead of the pinned model named by llm.model (embodied-llm models)."""
    n_ctx: int = 8192
    """Context length in tokens: the prompt plus the answer must fit."""
    threads: Optional[int] = None
    """CPU threads; None: 1 on machines of 2 cores or fewer (training shares them), else half the cores."""
    startup_timeout_s: float = 300.0
    """Seconds to wait for the server to load the model and answer /models."""
    prompt_cache_mb: int = 512
    """llama.cpp's --cache_size for its cache of evaluated prompts, in MB of KV state (~60 MB per 2,400-token prompt);
    each cached prompt also holds a batch of logits llama.cpp does not count (~300 MB for Qwen2.5). 0: off."""

    def __post_init__(self) -> None:
        if self.n_ctx < 512:
            raise ConfigError(f"llm.local.n_ctx must be >= 512, got {self.n_ctx}")
        if self.prompt_cache_mb < 0:
            raise ConfigError(f"llm.local.prompt_cache_mb must be >= 0 (0: off), got {self.prompt_cache_mb}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"llm.local.threads must be >= 1 or null, got {self.threads}")


@dataclass
class LLMConfig:
    """One OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama, llama.cpp)."""

    base_url: str = "https://api.openai.com/v1"
    """API root; requests go to {base_url}/chat/completions (vLLM: http://localhost:8000/v1)."""
    model: str = "gpt-4o"
    """Model name sent with every request (local servers: the served model's name)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key; empty string: send no key (local servers)."""
    temperature: float = 0.7
    """Sampling temperature, 0..2."""
    n: int = 1
    """Completions sampled per request."""
    max_tokens: Optional[int] = 1024
    """Cap on generated tokens per completion (an answer cut off there is reported as such); None: the server's."""
    seed: Optional[int] = None
    """Base of the per-request sampling seeds; None: a fresh random one per run (recorded in summary.json)."""
    timeout_s: float = 900.0
    """Seconds to wait for one answer; a request that times out is not sent again (the server may still be generating it)."""
    retries: int = 4
    """Extra attempts after refused connections, HTTP 429 and 5xx (never after a timeout or another 4xx)."""
    backoff_s: float = 1.0
    """First retry delay; doubles each attempt (plus jitter); a Retry-After header wins."""
    mode: str = "record"
    """live (call, store nothing), record (call, store every exchange) or replay (store only, no network)."""
    store: str = "llm_store"
    """Directory of stored exchanges, one JSON file each; relative paths are resolved by the caller."""
    local: LocalServerConfig = field(default_factory=LocalServerConfig)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"unknown llm.mode {self.mode!r}; choose from: {', '.join(MODES)}")
        if not str(self.base_url).startswith(("http://", "https://")):
            raise ConfigError(f"llm.base_url must start with http:// or https://, got {self.base_url!r}")
        if self.n < 1:
            raise ConfigError(f"llm.n must be >= 1, got {self.n}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"llm.temperature must be between 0 and 2, got {self.temperature}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(f"llm.max_tokens must be >= 1 or null, got {self.max_tokens}")
        if self.timeout_s <= 0:
            raise ConfigError(f"llm.timeout_s must be > 0, got {self.timeout_s}")
        if self.retries < 0:
            raise ConfigError(f"llm.retries must be >= 0, got {self.retries}")
        if self.backoff_s < 0:
            raise ConfigError(f"llm.backoff_s must be >= 0, got {self.backoff_s}")
