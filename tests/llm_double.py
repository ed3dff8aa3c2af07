"""ScriptedChatServer: a test double of an OpenAI-compatible chat-completions server.

It is not a model: it answers over real HTTP on 127.0.0.1 with replies scripted by
the test, so the client's networking, retries and record/replay run for real.

    with ScriptedChatServer(["first answer", ErrorReply(500), "second"]) as server:
        client = ChatClient(LLMConfig(base_url=server.base_url, api_key_env=""))
        ...
        server.chat_bodies  # the JSON bodies the server received

Each chat request pops its replies from the front of the script:
  * a `str` is the completion text;
  * a callable gets the request body (dict) and returns the text (e.g. to answer
    by role or by prompt content when driving a whole design loop);
  * `SlowReply(seconds, reply)` waits before answering (to provoke client timeouts);
  * `CutReply(text)` answers `text` with finish_reason "length" (cut off at max_tokens);
  * `ErrorReply(status, ...)` fails the whole request with that HTTP status.
A request for n completions pops n replies (an `ErrorReply` at the front fails the
request instead). When the script runs dry, `default` answers (str or callable);
without one the server answers HTTP 400 "script exhausted", which tests can see.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Optional, Union

Reply = Union[str, Callable[[dict], str], "SlowReply", "ErrorReply", "CutReply"]


@dataclass
class ErrorReply:
    """Answer one request with HTTP `status` and an OpenAI-shaped error body."""

    status: int
    message: str = "scripted error"
    retry_after: Optional[str] = None
    """Value of the Retry-After header, if any (seconds as a string)."""


@dataclass
class CutReply:
    """Answer with `text` and finish_reason "length", as a server does when max_tokens cuts the answer off."""

    text: str


@dataclass
class SlowReply:
    """Wait `seconds` (interruptible by stop()), then answer with `reply`."""

    seconds: float
    reply: Union[str, Callable[[dict], str]] = "slow reply"


@dataclass
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Optional[dict[str, Any]] = field(default=None)


class ScriptedChatServer:
    """Test double: OpenAI-compatible HTTP server on loopback answering from a script.

    Options: `api_key` (requests must carry `Authorization: Bearer <api_key>`, else
    HTTP 401), `models` (ids listed by GET /v1/models; None: that route is 404, as on
    servers without it), `max_choices` (cap on choices per response, like a server
    that ignores n), `reject_n` (HTTP 400 for n > 1, like llama.cpp's server) and
    `reverse_choices` (list choices in reverse index order).
    """

    def __init__(
        self,
        script: Iterable[Reply] = (),
        *,
        default: Optional[Union[str, Callable[[dict], str]]] = None,
        api_key: Optional[str] = None,
        models: Optional[list[str]] = ("scripted-model",),
        max_choices: Optional[int] = None,
        reject_n: bool = False,
        reverse_choices: bool = False,
    ) -> None:
        self.script: deque = deque(script)
        self.default = default
        self.api_key = api_key
        self.models = list(models) if models is not None else None
        self.max_choices = max_choices
        self.reject_n = reject_n
        self.reverse_choices = reverse_choices
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._port: Optional[int] = None

    # lifecycle -----------------------------------------------------------------
    def start(self) -> "ScriptedChatServer":
        handler = type("Handler", (_Handler,), {"double": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="ScriptedChatServer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self) -> "ScriptedChatServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The loopback port (kept after stop(), so tests can aim at a dead endpoint)."""
        assert self._port is not None, "server not started"
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # scripting -----------------------------------------------------------------
    def add(self, *replies: Reply) -> None:
        """Append replies to the script."""
        with self._lock:
            self.script.extend(replies)

    @property
    def chat_bodies(self) -> list[dict[str, Any]]:
        """JSON bodies of the chat-completions requests received, in order."""
        return [r.body for r in self.requests if r.method == "POST" and r.path.endswith("/chat/completions")]

    def _take(self, n: int) -> Union[ErrorReply, list]:
        """The next request's replies: an ErrorReply, or n text-producing entries."""
        with self._lock:
            if self.script and isinstance(self.script[0], ErrorReply):
                return self.script.popleft()
            taken = []
            while len(taken) < n and self.script and not isinstance(self.script[0], ErrorReply):
                taken.append(self.script.popleft())
            while len(taken) < n and self.default is not None:
                taken.append(self.default)
            if not taken:
                return ErrorReply(400, "ScriptedChatServer: script exhausted (no reply queued)")
            return taken


class _Handler(BaseHTTPRequestHandler):
    double: ScriptedChatServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        if not self._record(None):
            return
        if self.path.rstrip("/") == "/v1/models" and self.double.models is not None:
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "scripted"} for m in self.double.models]
            self._json(200, {"object": "list", "data": data})
        else:
            self._error(ErrorReply(404, f"no route {self.path}"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            body = None
        if not self._record(body):
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._error(ErrorReply(404, f"no route {self.path}"))
        if not isinstance(body, dict) or "messages" not in body:
            return self._error(ErrorReply(400, "body must be a JSON object with 'messages'"))
        n = int(body.get("n") or 1)
        if self.double.reject_n and n != 1:
            return self._error(ErrorReply(400, "Only one completion choice is allowed"))
        if self.double.max_choices is not None:
            n = min(n, self.double.max_choices)
        replies = self.double._take(n)
        if isinstance(replies, ErrorReply):
            return self._error(replies)
        texts, reasons = [], []
        for reply in replies:
            if isinstance(reply, SlowReply):
                if self.double._stop.wait(reply.seconds):
                    return
                reply = reply.reply
            reasons.append("length" if isinstance(reply, CutReply) else "stop")
            reply = reply.text if isinstance(reply, CutReply) else reply
            texts.append(reply(body) if callable(reply) else str(reply))
        choices = [
            {"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": reason}
            for i, (t, reason) in enumerate(zip(texts, reasons))
        ]
        if self.double.reverse_choices:
            choices.reverse()
        self._json(
            200,
            {
                "id": f"chatcmpl-scripted-{len(self.double.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": choices,
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            },
        )

    def _record(self, body: Optional[dict]) -> bool:
        """Log the request; False (and a 401 sent) when a required key is missing or wrong."""
        with self.double._lock:
            self.double.requests.append(Received(self.command, self.path, dict(self.headers.items()), body))
        key = self.double.api_key
        if key is not None and self.headers.get("Authorization") != f"Bearer {key}":
            self._error(ErrorReply(401, "Incorrect API key provided (ScriptedChatServer)"))
            return False
        return True

    def _error(self, reply: ErrorReply) -> None:
        headers = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
        self._json(
            reply.status, {"error": {"message": reply.message, "type": "scripted_error", "code": reply.status}}, headers
        )

    def _json(self, status: int, payload: dict, headers: Optional[dict[str, str]] = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout) before we answered
