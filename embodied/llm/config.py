"""Config schema of the LLM client (`llm.*`): endpoint, sampling, retries and record/replay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from embodied.errors import ConfigError

MODES = ("live", "record", "replay")


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
    max_tokens: Optional[int] = None
    """Cap on generated tokens per completion; None leaves it to the server."""
    timeout_s: float = 120.0
    """Seconds to wait for one HTTP response before retrying."""
    retries: int = 4
    """Extra attempts after connection errors, timeouts, HTTP 429 and 5xx (never after other 4xx)."""
    backoff_s: float = 1.0
    """First retry delay; doubles each attempt (plus jitter); a Retry-After header wins."""
    mode: str = "record"
    """live (call, store nothing), record (call, store every exchange) or replay (store only, no network)."""
    store: str = "llm_store"
    """Directory of stored exchanges, one JSON file each; relative paths are resolved by the caller."""

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
