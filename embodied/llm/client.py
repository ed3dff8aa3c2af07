"""OpenAI-compatible chat-completions client with an on-disk record/replay store.

Every exchange is stored as `<store>/<key>-<k>.json`, where `key` is the sha256 of the
canonical JSON of the fields that determine the answer (model, messages, temperature,
n, max_tokens, and the seed when one is sent; never the URL or the key) and `k` counts
how often this client has already sent that same request. A run that issues its requests
in the same order therefore replays offline (`mode=replay`) with exactly the recorded
completions, and a resumed recording run answers the requests it already made from the
store instead of asking again.

A slow local server is the normal case: one answer may take minutes on a CPU. A request
that times out is never sent again (the server would still be generating the first
copy); only refused connections, HTTP 429 and 5xx are retried. An answer cut off by
`max_tokens` or the context comes back with `finish_reason == "length"`.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from embodied.errors import EmbodiedError
from embodied.llm.config import LLMConfig

KEY_FIELDS = ("model", "messages", "temperature", "n", "max_tokens")
OPTIONAL_KEY_FIELDS = ("seed",)  # part of the key only when sent, so stores recorded without one still replay
MAX_RETRY_AFTER_S = 120.0
N_REJECTED = "one completion choice"  # llama.cpp's server error for n > 1
LOOPBACK = ("localhost", "127.0.0.1", "::1")


class LLMError(EmbodiedError):
    """The LLM endpoint or the store failed; the one-line message says how to fix it."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


class _Failure(Exception):
    """One failed HTTP attempt; status is None for transport errors (refused, DNS, timeout)."""

    def __init__(
        self, detail: str, status: Optional[int] = None, retry_after: Optional[str] = None, timed_out: bool = False
    ) -> None:
        super().__init__(detail)
        self.detail, self.status, self.retry_after, self.timed_out = detail, status, retry_after, timed_out

    @property
    def retryable(self) -> bool:
        if self.timed_out:  # the server may still be generating: asking again would queue a second copy
            return False
        return self.status is None or self.status == 429 or self.status >= 500


class _NRejected(Exception):
    """The server refuses n > 1; the client falls back to one sample per request."""


def request_key(body: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the answer-determining request fields."""
    fields = {name: body.get(name) for name in KEY_FIELDS}
    fields.update({name: body[name] for name in OPTIONAL_KEY_FIELDS if body.get(name) is not None})
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _excerpt(raw: bytes, limit: int = 200) -> str:
    """The server's error message (OpenAI, vLLM, Ollama, llama.cpp shapes), on one short line."""
    try:
        data = json.loads(raw)
        error = data.get("error", data) if isinstance(data, dict) else data
        text = (error.get("message") or error.get("detail") or json.dumps(error)) if isinstance(error, dict) else error
    except ValueError:
        text = raw.decode("utf-8", "replace")
    text = " ".join(str(text).split())
    return (text[:limit] + "...") if len(text) > limit else (text or "empty body")


@dataclass(frozen=True)
class Completion:
    """One answer: its text and why generation stopped ("stop", "length" = cut off, or None if unsaid)."""

    text: str
    finish_reason: Optional[str] = None

    @property
    def cut_off(self) -> bool:
        return self.finish_reason == "length"


def _completions(response: Any, url: str) -> list[Completion]:
    """The completions of a chat-completions response, ordered by choice index."""
    choices = response.get("choices") if isinstance(response, dict) else None
    if not isinstance(choices, list):
        raise LLMError(
            f"response from {url} has no 'choices': is llm.base_url an OpenAI-compatible API root (ending in /v1)?"
        )
    try:
        ordered = sorted(choices, key=lambda choice: choice.get("index", 0))
        return [Completion(choice["message"]["content"] or "", choice.get("finish_reason")) for choice in ordered]
    except (AttributeError, KeyError, TypeError) as err:
        raise LLMError(f"malformed choice in the response from {url} ({type(err).__name__}: {err})") from None


class ChatClient:
    """Chat completions from one endpoint, recorded to or replayed from `store_dir`.

    `stats` counts HTTP requests sent (every attempt), exchanges answered from the
    store (`cache_hits`) and retries. If a server returns fewer than n choices, the
    client asks again for the rest; if it refuses n > 1 (llama.cpp), it samples one
    completion per request from then on. Both paths are stored, so replay follows them.
    """

    def __init__(self, config: LLMConfig, store_dir: Optional[Path] = None) -> None:
        self.config = config
        self.store_dir = Path(store_dir if store_dir is not None else config.store)
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.stats: dict[str, int] = {"requests": 0, "cache_hits": 0, "retries": 0}
        self._seen: Counter[str] = Counter()
        self._one_per_request = False
        self._lock = threading.Lock()
        self._rng = random.Random()
        # A proxy from http(s)_proxy can never reach a server on this machine.
        loopback = urllib.parse.urlsplit(config.base_url).hostname in LOOPBACK
        self._opener = urllib.request.build_opener(*([urllib.request.ProxyHandler({})] if loopback else []))

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        n: Optional[int] = None,
        temperature: Optional[float] = None,
        seed: Optional[int] = None,
        tag: str = "",
    ) -> list[str]:
        """Completion texts (n of them) for an OpenAI-style messages list; see `complete`."""
        return [c.text for c in self.complete(messages, n=n, temperature=temperature, seed=seed, tag=tag)]

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        n: Optional[int] = None,
        temperature: Optional[float] = None,
        seed: Optional[int] = None,
        tag: str = "",
    ) -> list[Completion]:
        """Completions (n of them) for an OpenAI-style messages list.

        `seed` is sent as the request's sampling seed (servers that honour it, like
        llama.cpp's, then answer reproducibly); `tag` is a free label saved with the
        exchange (e.g. "designer/1/0/2").
        """
        n = self.config.n if n is None else n
        temperature = float(self.config.temperature if temperature is None else temperature)
        if not messages or n < 1 or not 0.0 <= temperature <= 2.0:
            raise LLMError(
                f"chat() needs messages, n >= 1 and 0 <= temperature <= 2 (got {len(messages or [])} messages, n={n}, temperature={temperature})"
            )
        texts: list[Completion] = []
        while len(texts) < n:
            want = 1 if self._one_per_request else n - len(texts)
            body: dict[str, Any] = {
                "model": self.config.model,
                "messages": messages,
                "temperature": temperature,
                "n": want,
            }
            if self.config.max_tokens is not None:
                body["max_tokens"] = self.config.max_tokens
            if seed is not None:
                body["seed"] = int(seed) + len(texts)
            response = self._exchange(body, tag)
            if response is None and want > 1:
                self._one_per_request = True
                continue
            got = _completions(response, self.url)
            if not got:
                raise LLMError(f"{self.url} returned no completions for model {self.config.model!r}: check llm.model")
            texts.extend(got[:want])
        return texts

    def check(self) -> None:
        """Fail fast before any training: the endpoint answers and accepts the key (live/record), or the store holds exchanges (replay)."""
        if self.config.mode == "replay":
            if not self.store_dir.is_dir() or not any(self.store_dir.glob("*.json")):
                raise LLMError(
                    f"llm.mode=replay but the store {self.store_dir} is missing or empty: record a run first with llm.mode=record, or point llm.store at a recorded store"
                )
            return
        if self.config.mode == "record":
            try:
                self.store_dir.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise LLMError(
                    f"cannot create the LLM store {self.store_dir} ({err.strerror or err}): set llm.store to a writable directory"
                ) from None
        try:
            self._send(self.config.base_url.rstrip("/") + "/models")
        except LLMError as err:
            if err.status not in (404, 405, 501):
                raise
            ping = {
                "model": self.config.model,
                "messages": [{"role": "user", "content": "ping"}],
                "max_tokens": 1,
                "n": 1,
            }
            self._send(self.url, ping)

    def _exchange(self, body: dict[str, Any], tag: str) -> Optional[dict[str, Any]]:
        """The response to `body` from the store (replay) or the server; None: n > 1 refused."""
        key = request_key(body)
        with self._lock:
            k = self._seen[key]
            self._seen[key] += 1
        path = self.store_dir / f"{key}-{k}.json"
        if self.config.mode == "replay" or (self.config.mode == "record" and path.is_file()):
            entry = self._load(path, key, k, tag)
            self._count("cache_hits")
            return entry.get("response")
        entry = {
            "request": body,
            "response": None,
            "tag": tag,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        start = time.monotonic()
        try:
            entry["response"] = self._send(self.url, body)
        except _NRejected as refusal:
            entry["rejected_n"] = str(refusal)
        entry["seconds"] = round(time.monotonic() - start, 2)
        if self.config.mode == "record":
            self._save(path, entry)
        return entry["response"]

    def _send(self, url: str, body: Optional[dict[str, Any]] = None) -> Any:
        """GET (no body) or POST JSON to `url`, retrying transient failures; the parsed JSON reply."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        attempts = self.config.retries + 1
        for attempt in range(attempts):
            self._count("requests")
            try:
                return self._attempt(url, data, headers)
            except _Failure as failure:
                if body is not None and body.get("n", 1) > 1 and N_REJECTED in failure.detail.lower():
                    raise _NRejected(failure.detail) from None
                if not failure.retryable:
                    raise self._fatal(url, failure) from None
                if attempt + 1 == attempts:
                    raise self._exhausted(url, failure, attempts) from None
                self._count("retries")
                time.sleep(self._delay(attempt, failure.retry_after))
        raise AssertionError("unreachable")

    def _attempt(self, url: str, data: Optional[bytes], headers: dict[str, str]) -> Any:
        request = urllib.request.Request(url, data=data, headers=headers, method="GET" if data is None else "POST")
        try:
            with self._opener.open(request, timeout=self.config.timeout_s) as reply:
                raw = reply.read()
        except urllib.error.HTTPError as err:
            try:
                raw = err.read()
            except (OSError, http.client.HTTPException):
                raw = b""
            raise _Failure(_excerpt(raw), err.code, err.headers.get("Retry-After") if err.headers else None) from None
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, TimeoutError):
                raise _Failure(f"no reply within {self.config.timeout_s:g} s", timed_out=True) from None
            raise _Failure(str(reason)) from None
        except TimeoutError:
            raise _Failure(f"no reply within {self.config.timeout_s:g} s", timed_out=True) from None
        except (OSError, http.client.HTTPException) as err:
            raise _Failure(f"{type(err).__name__}: {err}") from None
        try:
            return json.loads(raw)
        except ValueError:
            raise LLMError(
                f"{url} did not answer with JSON ({_excerpt(raw, 80)}): is llm.base_url the API root (ending in /v1)?"
            ) from None

    def _fatal(self, url: str, failure: _Failure) -> LLMError:
        status, detail, env = failure.status, failure.detail, self.config.api_key_env
        if failure.timed_out:
            return LLMError(
                f"{url} sent no answer within llm.timeout_s={self.config.timeout_s:g} s (not retried: the server may still be generating it): "
                f"raise llm.timeout_s, lower llm.max_tokens (now {self.config.max_tokens}) or use a faster endpoint; resume=true continues the run"
            )
        if status in (401, 403) and env:
            return LLMError(
                f"{url} rejected the API key from ${env} (HTTP {status}: {detail}): set {env} to a valid key", status
            )
        if status in (401, 403):
            return LLMError(
                f"{url} requires an API key (HTTP {status}: {detail}): set llm.api_key_env to the environment variable holding it",
                status,
            )
        if status == 404:
            return LLMError(
                f"{url} answered HTTP 404 ({detail}): check llm.base_url (the API root, usually ending in /v1) and llm.model",
                status,
            )
        return LLMError(
            f"{url} refused the request (HTTP {status}: {detail}): check llm.model, llm.max_tokens and the prompt",
            status,
        )

    def _exhausted(self, url: str, failure: _Failure, attempts: int) -> LLMError:
        if failure.status is None:
            return LLMError(
                f"cannot reach the LLM endpoint {url} ({failure.detail}; {attempts} attempts): start the server or fix llm.base_url, or run offline from a recorded store with llm.mode=replay"
            )
        return LLMError(
            f"{url} kept failing (HTTP {failure.status}: {failure.detail}) after {attempts} attempts: retry later or raise llm.retries",
            failure.status,
        )

    def _api_key(self) -> Optional[str]:
        env = self.config.api_key_env
        if not env:
            return None
        key = os.environ.get(env, "").strip()
        if not key:
            raise LLMError(
                f"environment variable {env} is not set: export {env}=<your API key>, or set llm.api_key_env='' for a server that needs no key, or use llm.mode=replay"
            )
        return key

    def _delay(self, attempt: int, retry_after: Optional[str]) -> float:
        """Seconds before the next attempt: the server's Retry-After (seconds) if given, else exponential backoff with jitter."""
        try:
            if retry_after is not None and float(retry_after) >= 0:
                return min(float(retry_after), MAX_RETRY_AFTER_S)
        except ValueError:
            pass  # an HTTP date: fall back to our own backoff
        base = self.config.backoff_s * 2**attempt
        return base + self._rng.uniform(0.0, 0.1 * base)

    def _count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    def _load(self, path: Path, key: str, k: int, tag: str) -> dict[str, Any]:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LLMError(
                f"no recorded response for request {key[:12]} (#{k}, tag {tag!r}) in {self.store_dir}: record it first with llm.mode=record"
            ) from None
        except (OSError, ValueError) as err:
            raise LLMError(
                f"stored exchange {path} is unreadable ({err}): delete it and record again with llm.mode=record"
            ) from None

    def _save(self, path: Path, entry: dict[str, Any]) -> None:
        """Write one exchange atomically (temp file + rename), so a crash never leaves half a file."""
        tmp = None
        try:
            self.store_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.store_dir, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entry, handle, ensure_ascii=False, indent=1)
                handle.write("\n")
            os.replace(tmp, path)
        except OSError as err:
            if tmp and os.path.exists(tmp):
                os.unlink(tmp)
            raise LLMError(
                f"cannot write the LLM store {self.store_dir} ({err.strerror or err}): set llm.store to a writable directory"
            ) from None
