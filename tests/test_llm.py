"""The OpenAI-compatible LLM client over real HTTP against ScriptedChatServer (a test double)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from embodied.errors import ConfigError, EmbodiedError
from embodied.llm import ChatClient, LLMConfig, LLMError, request_key
from llm_double import CutReply, ErrorReply, ScriptedChatServer, SlowReply

MESSAGES = [
    {"role": "system", "content": "You design reward functions."},
    {"role": "user", "content": "Reward for finding a tree?"},
]
KEY_ENV = "EMBODIED_TEST_LLM_KEY"


def make_client(server_or_url, tmp_path: Path, **overrides) -> ChatClient:
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.base_url
    fields = dict(base_url=url, model="scripted-model", api_key_env="", backoff_s=0.01, timeout_s=5.0, mode="live")
    fields.update(overrides)
    return ChatClient(LLMConfig(**fields), store_dir=tmp_path / "store")


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and isinstance(err.value, EmbodiedError)
    return text


def test_chat_returns_scripted_text_and_sends_openai_body(tmp_path):
    with ScriptedChatServer(["plant a sapling"]) as server:
        client = make_client(server, tmp_path, temperature=0.3, max_tokens=64)
        assert client.chat(MESSAGES) == ["plant a sapling"]
    (received,) = server.requests
    assert (received.method, received.path) == ("POST", "/v1/chat/completions")
    assert received.body == {
        "model": "scripted-model",
        "messages": MESSAGES,
        "temperature": 0.3,
        "n": 1,
        "max_tokens": 64,
    }
    assert received.headers["Content-Type"] == "application/json"
    assert "Authorization" not in received.headers
    assert client.stats == {"requests": 1, "cache_hits": 0, "retries": 0}


def test_auth_header_carries_key_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-123")
    with ScriptedChatServer(["ok"], api_key="sk-test-123") as server:
        assert make_client(server, tmp_path, api_key_env=KEY_ENV).chat(MESSAGES) == ["ok"]
    assert server.requests[0].headers["Authorization"] == "Bearer sk-test-123"


def test_n_samples_in_one_request_ordered_by_choice_index(tmp_path):
    with ScriptedChatServer(["a", "b", "c"], reverse_choices=True) as server:
        client = make_client(server, tmp_path, n=3)
        assert client.chat(MESSAGES) == ["a", "b", "c"]
        server.add("x", "y")
        assert client.chat(MESSAGES, n=2, temperature=1.0) == ["x", "y"]
    assert [(b["n"], b["temperature"]) for b in server.chat_bodies] == [(3, 0.7), (2, 1.0)]


def test_callable_replies_see_the_request(tmp_path):
    with ScriptedChatServer(default=lambda body: body["messages"][-1]["content"].upper()) as server:
        assert make_client(server, tmp_path).chat(MESSAGES, n=2) == ["REWARD FOR FINDING A TREE?"] * 2


def test_record_writes_one_file_per_exchange_with_occurrence_indices(tmp_path):
    other = [{"role": "user", "content": "Critique this reward."}]
    with ScriptedChatServer(["first", "second", "third"]) as server:
        client = make_client(server, tmp_path, mode="record")
        client.chat(MESSAGES, tag="designer/iter1")
        client.chat(MESSAGES, tag="designer/iter1")
        client.chat(other, tag="critic/iter1")
    key, key_other = request_key(server.chat_bodies[0]), request_key(server.chat_bodies[2])
    store = tmp_path / "store"
    assert sorted(p.name for p in store.iterdir()) == sorted([f"{key}-0.json", f"{key}-1.json", f"{key_other}-0.json"])
    entry = json.loads((store / f"{key}-1.json").read_text())
    assert entry["tag"] == "designer/iter1" and entry["created"]
    assert entry["request"] == server.chat_bodies[1]
    assert entry["response"]["choices"][0]["message"]["content"] == "second"


def test_replay_offline_returns_identical_completions_in_order(tmp_path, monkeypatch):
    script = ["r1 \u00e9\n  def reward(s):\n\treturn 1", "r2", "r3", "r4", "r5"]
    with ScriptedChatServer(script) as server:
        recorder = make_client(server, tmp_path, mode="record", n=2)
        recorded = [
            recorder.chat(MESSAGES, tag="a"),
            recorder.chat(MESSAGES, tag="a"),
            recorder.chat(MESSAGES, n=1, tag="b"),
        ]
        dead_url = server.base_url
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    replayer = make_client(dead_url, tmp_path, mode="replay", n=2, api_key_env="OPENAI_API_KEY")
    replayer.check()
    replayed = [
        replayer.chat(MESSAGES, tag="a"),
        replayer.chat(MESSAGES, tag="a"),
        replayer.chat(MESSAGES, n=1, tag="b"),
    ]
    assert replayed == recorded == [script[0:2], script[2:4], script[4:5]]
    assert replayer.stats == {"requests": 0, "cache_hits": 3, "retries": 0}
    elsewhere = make_client("http://10.255.255.1:9/v1", tmp_path, mode="replay", n=2)
    assert elsewhere.chat(MESSAGES) == recorded[0]  # the key ignores base_url and the API key


def test_replay_of_unrecorded_request_is_one_line_error(tmp_path):
    with ScriptedChatServer(["only once"]) as server:
        make_client(server, tmp_path, mode="record").chat(MESSAGES)
    client = make_client(closed_port_url(), tmp_path, mode="replay")
    client.chat(MESSAGES)
    with pytest.raises(LLMError) as err:
        client.chat(MESSAGES, tag="designer/iter2")
    key = request_key({"model": "scripted-model", "messages": MESSAGES, "temperature": 0.7, "n": 1, "max_tokens": 1024})
    text = one_line(err)
    assert f"no recorded response for request {key[:12]} (#1, tag 'designer/iter2')" in text
    assert "llm.mode=record" in text


def test_replay_check_needs_a_recorded_store(tmp_path):
    with pytest.raises(LLMError) as err:
        make_client(closed_port_url(), tmp_path, mode="replay").check()
    assert "missing or empty" in one_line(err) and "llm.mode=record" in str(err.value)


def test_stored_response_without_choices_is_an_error(tmp_path):
    body = {"model": "scripted-model", "messages": MESSAGES, "temperature": 0.7, "n": 1, "max_tokens": 1024}
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / f"{request_key(body)}-0.json").write_text(
        json.dumps({"request": body, "response": {"error": "x"}})
    )
    with pytest.raises(LLMError) as err:
        make_client(closed_port_url(), tmp_path, mode="replay").chat(MESSAGES)
    assert "no 'choices'" in one_line(err)


def test_server_ignoring_n_is_topped_up_and_replays(tmp_path):
    with ScriptedChatServer(["a", "b", "c"], max_choices=1) as server:
        assert make_client(server, tmp_path, mode="record").chat(MESSAGES, n=3) == ["a", "b", "c"]
    assert [b["n"] for b in server.chat_bodies] == [3, 2, 1]
    assert len(list((tmp_path / "store").glob("*.json"))) == 3
    assert make_client(closed_port_url(), tmp_path, mode="replay").chat(MESSAGES, n=3) == ["a", "b", "c"]


def test_server_refusing_n_falls_back_to_single_samples_and_replays(tmp_path):
    with ScriptedChatServer(["a", "b", "c", "d"], reject_n=True) as server:
        client = make_client(server, tmp_path, mode="record", retries=0)
        assert client.chat(MESSAGES, n=2) == ["a", "b"]
        assert client.chat(MESSAGES, n=2, tag="again") == ["c", "d"]
    assert [b["n"] for b in server.chat_bodies] == [2, 1, 1, 1, 1]
    replayer = make_client(closed_port_url(), tmp_path, mode="replay")
    assert [replayer.chat(MESSAGES, n=2), replayer.chat(MESSAGES, n=2)] == [["a", "b"], ["c", "d"]]


def test_retries_on_429_and_500_then_succeeds(tmp_path):
    with ScriptedChatServer([ErrorReply(429, "slow down"), ErrorReply(500), ErrorReply(503), "finally"]) as server:
        client = make_client(server, tmp_path, retries=3)
        assert client.chat(MESSAGES) == ["finally"]
    assert len(server.chat_bodies) == 4
    assert client.stats == {"requests": 4, "cache_hits": 0, "retries": 3}


def test_retries_exhausted_names_url_and_last_error(tmp_path):
    with ScriptedChatServer([ErrorReply(500, "overloaded")] * 3) as server:
        with pytest.raises(LLMError) as err:
            make_client(server, tmp_path, retries=2).chat(MESSAGES)
    text = one_line(err)
    assert server.base_url + "/chat/completions" in text and "HTTP 500: overloaded" in text and "3 attempts" in text
    assert len(server.chat_bodies) == 3


@pytest.mark.parametrize(
    "status, message, hint",
    [
        (400, "context length exceeded", "HTTP 400"),
        (401, "invalid key", "llm.api_key_env"),
        (404, "model not found", "llm.base_url"),
    ],
)
def test_client_errors_are_not_retried(tmp_path, status, message, hint):
    with ScriptedChatServer([ErrorReply(status, message), "never sent"]) as server:
        with pytest.raises(LLMError) as err:
            make_client(server, tmp_path, retries=3).chat(MESSAGES)
    text = one_line(err)
    assert message in text and hint in text and err.value.status == status
    assert len(server.chat_bodies) == 1


def test_check_passes_against_a_healthy_server_and_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-good")
    with ScriptedChatServer(api_key="sk-good") as server:
        client = make_client(server, tmp_path, mode="record", api_key_env=KEY_ENV)
        client.check()
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/v1/models")]
    assert list((tmp_path / "store").iterdir()) == []


def test_check_falls_back_to_a_one_token_chat_without_models_route(tmp_path):
    with ScriptedChatServer(["pong"], models=None) as server:
        make_client(server, tmp_path).check()
    assert [(r.method, r.path) for r in server.requests] == [("GET", "/v1/models"), ("POST", "/v1/chat/completions")]
    assert server.chat_bodies[0]["max_tokens"] == 1


def test_check_bad_key_names_the_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    with ScriptedChatServer(api_key="sk-right", models=None) as server:
        with pytest.raises(LLMError) as err:
            make_client(server, tmp_path, api_key_env=KEY_ENV, retries=3).check()
    text = one_line(err)
    assert KEY_ENV in text and "401" in text and "sk-wrong" not in text
    assert len(server.requests) == 1


def test_unset_key_env_var_fails_before_any_request(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with ScriptedChatServer(["unused"]) as server:
        client = make_client(server, tmp_path, api_key_env=KEY_ENV)
        for call in (client.check, lambda: client.chat(MESSAGES)):
            with pytest.raises(LLMError) as err:
                call()
            assert f"environment variable {KEY_ENV} is not set" in one_line(err) and "llm.api_key_env=''" in str(
                err.value
            )
    assert server.requests == []


def test_unreachable_endpoint_is_one_line_naming_the_url(tmp_path):
    url = closed_port_url()
    client = make_client(url, tmp_path, timeout_s=0.5, retries=1)
    start = time.monotonic()
    for call in (client.check, lambda: client.chat(MESSAGES)):
        with pytest.raises(LLMError) as err:
            call()
        text = one_line(err)
        assert f"cannot reach the LLM endpoint {url}" in text and "llm.base_url" in text and "llm.mode=replay" in text
    assert time.monotonic() - start < 5
    assert client.stats["retries"] == 2


def test_a_timed_out_request_is_not_sent_again(tmp_path):
    """The server may still be generating the first copy: a retry would only queue a second one."""
    with ScriptedChatServer([SlowReply(3.0, "too late"), "never asked"]) as server:
        client = make_client(server, tmp_path, timeout_s=0.3, retries=3)
        start = time.monotonic()
        with pytest.raises(LLMError) as err:
            client.chat(MESSAGES)
        assert time.monotonic() - start < 2.5
        assert len(server.chat_bodies) == 1
    message = one_line(err)
    assert "within llm.timeout_s=0.3 s" in message and "not retried" in message and "llm.max_tokens" in message


def test_cut_off_answer_reports_length_and_seed_is_sent_and_keyed(tmp_path):
    with ScriptedChatServer([CutReply("def reward(view"), "b", "a again"]) as server:
        client = make_client(server, tmp_path, max_tokens=16, mode="record")
        (first,) = client.complete(MESSAGES, seed=7)
        assert first.cut_off and first.text == "def reward(view"
        assert client.chat(MESSAGES, seed=8) == ["b"]
        assert [body.get("seed") for body in server.chat_bodies] == [7, 8]
        assert server.chat_bodies[0]["max_tokens"] == 16
        # a recording client resumed on the same store answers what it already asked from the store
        again = make_client(server, tmp_path, max_tokens=16, mode="record")
        assert again.complete(MESSAGES, seed=7)[0].cut_off
        assert again.chat(MESSAGES, seed=8) == ["b"] and len(server.chat_bodies) == 2
        assert again.stats["cache_hits"] == 2


def test_retry_after_header_is_honoured(tmp_path):
    with ScriptedChatServer([ErrorReply(429, retry_after="0.6"), "ok", ErrorReply(429), "ok"]) as server:
        client = make_client(server, tmp_path, backoff_s=0.0)
        start = time.monotonic()
        assert client.chat(MESSAGES) == ["ok"]
        waited = time.monotonic() - start
        start = time.monotonic()
        assert client.chat(MESSAGES, tag="no header") == ["ok"]
        assert time.monotonic() - start < 0.3 < 0.6 <= waited


@pytest.mark.parametrize(
    "override, words",
    [
        ({"mode": "offline"}, "live, record, replay"),
        ({"n": 0}, "llm.n must be >= 1"),
        ({"temperature": 2.5}, "between 0 and 2"),
        ({"timeout_s": 0}, "llm.timeout_s must be > 0"),
        ({"base_url": "localhost:8000/v1"}, "http://"),
        ({"retries": -1}, "llm.retries"),
    ],
)
def test_config_validation_is_one_line(override, words):
    with pytest.raises(ConfigError) as err:
        LLMConfig(**override)
    assert words in one_line(err)


def test_loopback_server_bypasses_proxy_settings(tmp_path, monkeypatch):
    dead_proxy = closed_port_url().removesuffix("/v1")
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, dead_proxy)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with ScriptedChatServer(["direct"]) as server:
        assert make_client(server, tmp_path, retries=0).chat(MESSAGES) == ["direct"]
