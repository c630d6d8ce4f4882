"""The trace as clients see it on the wire: raw SSE read with httpx, and the trace id header.

The SDKs hide these bytes, so they are read here directly: the first event of a chat stream is
the trace that is also an empty `chat.completion.chunk`, a messages stream opens with an
`event: ping` whose data carries the trace, a Responses stream carries it as a `: trace {...}`
comment, and `x-routerly-trace: off` / `x-routerly-no-trace: 1` leave it out.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from conftest import TOKEN, assert_trace_id
from sse import parse, post_stream

MAX_TOKENS = 50

TRACE_KEYS = {"type", "traceId", "model", "provider", "policies", "scores", "attempts", "costEstimate"}


def oai_headers(**extra) -> dict:
    return {"authorization": f"Bearer {TOKEN}", **extra}


def ant_headers(**extra) -> dict:
    return {"x-api-key": TOKEN, "anthropic-version": "2023-06-01", **extra}


CHAT = {"model": "gpt-test", "stream": True, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": "trace me"}]}
MESSAGES = {"model": "claude-test", "stream": True, "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": "trace me"}]}
RESPONSES = {"model": "gpt-test", "stream": True, "max_output_tokens": MAX_TOKENS, "input": "trace me"}


def check_trace(trace: dict, header_id: str, model: str, provider: str):
    assert TRACE_KEYS <= trace.keys(), trace
    assert trace["type"] == "trace"
    assert trace["traceId"] == header_id
    assert trace["model"] == model
    assert trace["provider"] == provider
    assert trace["policies"] == ["health", "cheapest"]
    assert isinstance(trace["scores"], list) and trace["scores"]
    for s in trace["scores"]:
        assert isinstance(s["model"], str) and 0.0 <= s["score"] <= 1.0, s
    assert model in [s["model"] for s in trace["scores"]]
    assert trace["attempts"] == [], "no attempt failed on this path"
    assert isinstance(trace["costEstimate"], (int, float)) and trace["costEstimate"] >= 0


def check_empty_chunk(trace: dict, header_id: str, upstream_first: dict):
    """The chat trace event is also a valid, empty `chat.completion.chunk`: strict clients (the
    Vercel AI SDK validates every chunk, SDK loops index `choices[0].delta`) take it as one."""
    assert trace["object"] == "chat.completion.chunk", trace
    # `chatcmpl-` + the trace id, or the upstream's first chunk's id and time when at hand.
    assert trace["id"] in (f"chatcmpl-{header_id}", upstream_first["id"]), trace
    assert trace["id"].startswith("chatcmpl-"), trace
    assert isinstance(trace["created"], int) and not isinstance(trace["created"], bool), trace
    assert trace["created"] == upstream_first["created"] or abs(trace["created"] - time.time()) < 300, trace
    # No role in the delta: the SDKs' stream helpers would put a second "assistant" in front.
    assert trace["choices"] == [{"index": 0, "delta": {}, "finish_reason": None}], trace["choices"]


def test_chat_stream_first_event_is_trace(providers_gw):
    r, text = post_stream(f"{providers_gw.url}/v1/chat/completions", CHAT, oai_headers())
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    tid = assert_trace_id(r.headers)
    events = parse(text)
    assert events[0].event is None and not events[0].comments
    trace = events[0].json()
    check_trace(trace, tid, "gpt-test", "oai")
    check_empty_chunk(trace, tid, events[1].json())
    # gpt-test costs $1 / $2 per million: max_tokens alone is worth 50 * 2e-6; the input estimate
    # can add at most one token per byte of the request.
    floor = MAX_TOKENS * 2.0 / 1e6
    assert floor <= trace["costEstimate"] <= floor + len(json.dumps(CHAT)) * 1.0 / 1e6, trace
    assert all(e.data != "" for e in events)
    assert events[-1].data == "[DONE]"
    chunks = [e.json() for e in events[1:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_messages_stream_first_event_is_ping_with_trace(providers_gw):
    r, text = post_stream(f"{providers_gw.url}/v1/messages", MESSAGES, ant_headers())
    assert r.status_code == 200
    tid = assert_trace_id(r.headers)
    events = parse(text)
    first = events[0]
    assert first.event == "ping", "the trace rides on an Anthropic ping event, which every client skips"
    assert not first.comments
    ping = first.json()
    assert ping.keys() == {"type", "trace"}, ping
    assert ping["type"] == "ping"
    check_trace(ping["trace"], tid, "claude-test", "ant")
    assert events[1].event == "message_start"
    assert events[-1].event == "message_stop"
    assert all(e.event is not None for e in events[1:])


def test_responses_stream_trace_is_a_comment(providers_gw):
    r, text = post_stream(f"{providers_gw.url}/v1/responses", RESPONSES, oai_headers())
    assert r.status_code == 200
    tid = assert_trace_id(r.headers)
    events = parse(text)
    first = events[0]
    assert first.event is None and not first.data_lines, "on /v1/responses the trace is a comment only"
    assert len(first.comments) == 1 and first.comments[0].startswith("trace "), first.comments
    check_trace(json.loads(first.comments[0][len("trace "):]), tid, "gpt-test", "oai")
    assert not any(e.data_lines and '"type":"trace"' in e.data for e in events)
    assert events[1].event == "response.created"
    assert events[-1].event == "response.completed"


@pytest.mark.parametrize("opt_out", [{"x-routerly-trace": "off"}, {"x-routerly-no-trace": "1"}])
@pytest.mark.parametrize(
    "path,body,headers",
    [("/v1/chat/completions", CHAT, oai_headers), ("/v1/messages", MESSAGES, ant_headers), ("/v1/responses", RESPONSES, oai_headers)],
    ids=["chat", "messages", "responses"],
)
def test_trace_opt_out(providers_gw, opt_out, path, body, headers):
    r, text = post_stream(f"{providers_gw.url}{path}", body, headers(**opt_out))
    assert r.status_code == 200
    assert_trace_id(r.headers)  # the header stays; only the event goes
    assert "trace" not in text.split("\n", 1)[0], text[:300]
    events = parse(text)
    assert not any(c.startswith("trace") for e in events for c in e.comments)
    assert not any('"type":"trace"' in e.data for e in events)
    assert events[0].event != "ping", "the gateway's ping only carried the trace"
    for e in events:
        if e.data_lines and e.data != "[DONE]":
            obj = e.json()
            assert obj.get("type") != "trace" and "trace" not in obj and "traceId" not in obj, e.data


@pytest.mark.parametrize(
    "method,path,headers,body,status",
    [
        ("POST", "/v1/chat/completions", oai_headers(), {"model": "gpt-test"}, 400),
        ("POST", "/v1/messages", ant_headers(), b"{not json", 400),
        ("POST", "/v1/chat/completions", {}, {"model": "gpt-test", "messages": []}, 401),
        ("POST", "/v1/messages", {"x-api-key": "sk-lr-wrong"}, {"model": "x", "messages": []}, 401),
        ("POST", "/projects/locked/v1/chat/completions", oai_headers(), {"model": "x", "messages": []}, 403),
        ("GET", "/v1/nowhere", oai_headers(), None, 404),
    ],
    ids=["400-openai", "400-anthropic", "401-openai", "401-anthropic", "403", "404"],
)
def test_trace_id_on_errors(providers_gw, method, path, headers, body, status):
    kw = {"content": body} if isinstance(body, bytes) else {"json": body} if body is not None else {}
    r = httpx.request(method, f"{providers_gw.url}{path}", headers=headers, timeout=20, **kw)
    assert r.status_code == status, r.text
    assert_trace_id(r.headers)
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()
    if path.startswith("/v1/messages"):
        assert err["type"] == "error" and isinstance(err["error"]["type"], str) and err["error"]["message"]
    else:
        assert isinstance(err["error"]["type"], str) and err["error"]["message"]


def test_trace_ids_are_unique(providers_gw):
    ids = set()
    for _ in range(20):
        r = httpx.get(f"{providers_gw.url}/v1/models", headers=oai_headers(), timeout=20)
        assert r.status_code == 200
        ids.add(assert_trace_id(r.headers))
    assert len(ids) == 20
