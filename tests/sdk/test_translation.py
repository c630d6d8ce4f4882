"""Any client, any model: the official SDKs against models whose provider speaks the other protocol.

Every project of the translation config (`translation_config` in conftest) has one model only,
so a request reaches it translated or not at all: without translation each of these tests gets
the 400 "no model speaking the ... protocol" and fails. `to-ant` holds an Anthropic-protocol
model (`claude-x`), `to-oai` an OpenAI one (`gpt-x`), `to-chat` an OpenAI one with
`responses = false` (`gpt-chat`: Responses requests go to its chat completions).

What the mock answers is never written down here: the expected text, tool arguments and usage
are what the mock-upstream answers when it is asked directly, in its own protocol, with the
body the gateway sent it (the recorder in front of the mock keeps that body).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from conftest import CLIENT_TIMEOUT_S, TOKEN, Gateway, assert_trace_id, expected_reply_start
from sse import parse, post_stream

TO_ANT, TO_OAI, TO_CHAT = "to-ant", "to-oai", "to-chat"
#: The model of each project, as clients name it, and the upstream id the provider is sent.
MODEL = {TO_ANT: "claude-x", TO_OAI: "gpt-x", TO_CHAT: "gpt-chat"}
UPSTREAM_ID = {TO_ANT: "claude-upstream-x", TO_OAI: "gpt-upstream-x", TO_CHAT: "gpt-upstream-chat"}
#: The mock's reply to a tool result starts with this, then quotes the result.
TOOL_SAID = "Tool said:"

#: A 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PNG_B64 = base64.b64encode(PNG).decode()


# ---- clients and helpers --------------------------------------------------------------------


def oai(gw: Gateway, slug: str) -> openai.OpenAI:
    return gw.openai(TOKEN, prefix=f"/projects/{slug}")


def ant(gw: Gateway, slug: str) -> anthropic.Anthropic:
    return gw.anthropic(TOKEN, prefix=f"/projects/{slug}")


def direct_oai(mock_url: str) -> openai.OpenAI:
    """The mock-upstream itself, as an OpenAI provider (it checks no key)."""
    return openai.OpenAI(base_url=f"{mock_url}/v1", api_key="direct", max_retries=0, timeout=CLIENT_TIMEOUT_S)


def direct_ant(mock_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock_url, api_key="direct", max_retries=0, timeout=CLIENT_TIMEOUT_S)


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def dropped(headers) -> list[str]:
    """The names in `x-routerly-dropped` (none when the header is absent)."""
    value = headers.get("x-routerly-dropped")
    return [n.strip() for n in value.split(",") if n.strip()] if value else []


def sent(recorder, suffix: str) -> dict:
    """The one request the provider got since the last call, which must be to `…suffix`; its JSON."""
    reqs = [r for r in recorder.take() if r[0] == "POST"]
    assert len(reqs) == 1, [(m, p) for m, p, _, _ in reqs]
    _, path, _, body = reqs[0]
    assert path.split("?")[0].endswith(suffix), path
    return json.loads(body)


def replay(mock_url: str, suffix: str, body: dict) -> dict:
    """What the mock answers, unstreamed, to `body` sent to it directly (usage and content are
    deterministic; ids and times are not compared)."""
    body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    r = httpx.post(f"{mock_url}/v1{suffix}", json=body, timeout=CLIENT_TIMEOUT_S,
                   headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 200, r.text
    return r.json()


def is_trace(chunk) -> bool:
    return getattr(chunk, "type", None) == "trace"


def chat_text(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def oai_headers() -> dict:
    return {"authorization": f"Bearer {TOKEN}"}


def ant_headers(**extra) -> dict:
    return {"x-api-key": TOKEN, "anthropic-version": "2023-06-01", **extra}


def trace_of(events, route: str) -> dict:
    """The trace event of a raw stream, in the route's form (see test_trace.py)."""
    if route == "chat":
        return events[0].json()
    if route == "messages":
        ping = events[0]
        assert ping.event == "ping", ping
        return ping.json()["trace"]
    comment = [c for e in events for c in e.comments if c.startswith("trace ")]
    assert comment, events[:3]
    return json.loads(comment[0][len("trace "):])


# ---- tool definitions, in both protocols ----------------------------------------------------

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}},
    "required": ["city"],
}
TIME_SCHEMA = {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}
EMPTY_SCHEMA = {"type": "object", "properties": {}}


def oai_tool(name: str, schema: dict, description: str = "a tool") -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}


def ant_tool(name: str, schema: dict, description: str = "a tool") -> dict:
    return {"name": name, "description": description, "input_schema": schema}


def resp_tool(name: str, schema: dict, description: str = "a tool") -> dict:
    return {"type": "function", "name": name, "description": description, "parameters": schema}


OAI_TOOLS = [oai_tool("get_weather", WEATHER_SCHEMA, "Current weather"), oai_tool("get_time", TIME_SCHEMA, "Time in a zone")]
ANT_TOOLS = [ant_tool("get_weather", WEATHER_SCHEMA, "Current weather"), ant_tool("get_time", TIME_SCHEMA, "Time in a zone")]
RESP_TOOLS = [resp_tool("get_weather", WEATHER_SCHEMA, "Current weather"), resp_tool("get_time", TIME_SCHEMA, "Time in a zone")]


# ---- text, both directions, streaming and not -----------------------------------------------


def test_openai_chat_to_anthropic_model(translation_gw):
    prompt = "hello claude from the openai sdk"
    raw = oai(translation_gw, TO_ANT).chat.completions.with_raw_response.create(model="claude-x", messages=user(prompt))
    assert raw.status_code == 200
    assert_trace_id(raw.headers)
    c = raw.parse()
    assert c.object == "chat.completion"
    assert c.model == "claude-x", "a translated answer names the gateway's model, not the upstream id"
    assert c.id and c.choices[0].index == 0
    msg = c.choices[0].message
    assert msg.role == "assistant"
    assert msg.content.startswith(expected_reply_start(prompt)), msg.content
    assert c.choices[0].finish_reason == "stop"
    assert c.usage.completion_tokens == len(msg.content.split())
    assert c.usage.prompt_tokens > 0
    assert c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens


def test_openai_chat_stream_to_anthropic_model(translation_gw):
    prompt = "stream from claude to openai"
    client = oai(translation_gw, TO_ANT)
    whole = client.chat.completions.create(model="claude-x", messages=user(prompt))
    chunks = list(client.chat.completions.create(
        model="claude-x", messages=user(prompt), stream=True, stream_options={"include_usage": True}
    ))
    assert is_trace(chunks[0]) and chunks[0].model == "claude-x", chunks[0]
    rest = chunks[1:]
    assert all(c.object == "chat.completion.chunk" and c.model == "claude-x" for c in rest), rest
    assert len({c.id for c in rest}) == 1, "one completion id across the stream"
    text = chat_text(rest)
    assert text == whole.choices[0].message.content
    assert text.startswith(expected_reply_start(prompt))
    roles = [c.choices[0].delta.role for c in rest if c.choices and c.choices[0].delta.role]
    assert roles == ["assistant"], roles
    assert [c.choices[0].finish_reason for c in rest if c.choices and c.choices[0].finish_reason] == ["stop"]
    # include_usage: the last chunk has no choices and the usage, equal to the whole answer's.
    assert rest[-1].choices == [] and rest[-1].usage is not None, rest[-1]
    assert rest[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert rest[-1].usage.prompt_tokens == whole.usage.prompt_tokens
    assert all(c.usage is None for c in rest[:-1])


def test_openai_chat_stream_without_include_usage_has_no_usage_chunk(translation_gw):
    chunks = list(oai(translation_gw, TO_ANT).chat.completions.create(
        model="claude-x", messages=user("no usage please"), stream=True
    ))
    assert chat_text(chunks).startswith(expected_reply_start("no usage please")), chunks
    assert all(c.choices for c in chunks), "a usage chunk (no choices) the client did not ask for"
    assert all(getattr(c, "usage", None) is None for c in chunks)


def test_anthropic_messages_to_openai_model(translation_gw):
    prompt = "hello gpt from the anthropic sdk"
    raw = ant(translation_gw, TO_OAI).messages.with_raw_response.create(
        model="gpt-x", max_tokens=200, messages=user(prompt)
    )
    assert raw.status_code == 200
    assert_trace_id(raw.headers)
    m = raw.parse()
    assert m.type == "message" and m.role == "assistant"
    assert m.model == "gpt-x"
    assert m.id
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text.startswith(expected_reply_start(prompt)), m.content[0].text
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens == len(m.content[0].text.split())
    assert m.usage.input_tokens > 0


def test_anthropic_stream_to_openai_model(translation_gw):
    prompt = "stream from gpt to anthropic"
    client = ant(translation_gw, TO_OAI)
    whole = client.messages.create(model="gpt-x", max_tokens=200, messages=user(prompt))
    events = list(client.messages.create(model="gpt-x", max_tokens=200, messages=user(prompt), stream=True))
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-1] == "message_stop", types
    assert types.count("message_delta") == 1
    assert events[0].message.model == "gpt-x"
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == whole.content[0].text
    with client.messages.stream(model="gpt-x", max_tokens=200, messages=user(prompt)) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    assert streamed == whole.content[0].text
    assert final.model == "gpt-x"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens


# ---- usage: what the mock reports, mapped ---------------------------------------------------


def anthropic_to_openai_usage(u: dict) -> dict:
    """OpenAI's prompt_tokens counts cached tokens too (the contract's 11 + 40 -> 51, cached 40)."""
    read = u.get("cache_read_input_tokens") or 0
    write = u.get("cache_creation_input_tokens") or 0
    return {"prompt": u["input_tokens"] + read + write, "cached": read, "completion": u["output_tokens"]}


def openai_to_anthropic_usage(u: dict) -> dict:
    cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {"input": u["prompt_tokens"] - cached, "cache_read": cached, "output": u["completion_tokens"]}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_usage_openai_client_anthropic_model(translation_recorded_gw, recorder, mock_upstream, stream):
    recorder.take()
    client = oai(translation_recorded_gw, TO_ANT)
    # A long system prompt (cache-sized) and a cache key, as a client that wants caching sends.
    messages = [{"role": "system", "content": "You are terse. " * 200}, *user("usage with a cached system prompt")]
    if stream:
        chunks = list(client.chat.completions.create(
            model="claude-x", messages=messages, stream=True, stream_options={"include_usage": True},
            prompt_cache_key="usage-test",
        ))
        usage = chunks[-1].usage
    else:
        usage = client.chat.completions.create(model="claude-x", messages=messages, prompt_cache_key="usage-test").usage
    body = sent(recorder, "/messages")
    assert body["model"] == UPSTREAM_ID[TO_ANT]
    want = anthropic_to_openai_usage(replay(mock_upstream, "/messages", body)["usage"])
    assert usage.prompt_tokens == want["prompt"], (usage, want)
    assert usage.completion_tokens == want["completion"]
    assert usage.total_tokens == want["prompt"] + want["completion"]
    assert (usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0) == want["cached"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_usage_anthropic_client_openai_model(translation_recorded_gw, recorder, mock_upstream, stream):
    recorder.take()
    client = ant(translation_recorded_gw, TO_OAI)
    system = [{"type": "text", "text": "You are terse. " * 200, "cache_control": {"type": "ephemeral"}}]
    kw = dict(model="gpt-x", max_tokens=200, system=system, messages=user("usage with a cached system prompt"))
    if stream:
        with client.messages.stream(**kw) as s:
            usage = s.get_final_message().usage
    else:
        usage = client.messages.create(**kw).usage
    body = sent(recorder, "/chat/completions")
    assert body["model"] == UPSTREAM_ID[TO_OAI]
    if stream:
        # The gateway asks an OpenAI-protocol upstream for stream usage: it is the only source.
        assert body.get("stream_options", {}).get("include_usage") is True, body
    want = openai_to_anthropic_usage(replay(mock_upstream, "/chat/completions", body)["usage"])
    assert usage.input_tokens == want["input"], (usage, want)
    assert (usage.cache_read_input_tokens or 0) == want["cache_read"]
    assert usage.output_tokens == want["output"]


def test_usage_cached_tokens_responses_to_chat(translation_recorded_gw, recorder, mock_upstream):
    """prompt_cache_key is a chat completions field too: it reaches a chat-only provider, and the
    cached tokens the mock reports come back in the Response's usage."""
    recorder.take()
    r = oai(translation_recorded_gw, TO_CHAT).responses.create(
        model="gpt-chat", instructions="You are terse. " * 200, input="cached responses usage", prompt_cache_key="k-1"
    )
    body = sent(recorder, "/chat/completions")
    assert body.get("prompt_cache_key") == "k-1", body
    u = replay(mock_upstream, "/chat/completions", body)["usage"]
    cached = u["prompt_tokens_details"]["cached_tokens"]
    assert cached > 0, f"the mock reports cached tokens for prompt_cache_key: {u}"
    assert r.usage.input_tokens == u["prompt_tokens"]
    assert r.usage.output_tokens == u["completion_tokens"]
    assert r.usage.total_tokens == u["prompt_tokens"] + u["completion_tokens"]
    assert r.usage.input_tokens_details.cached_tokens == cached


# ---- stop reasons, stop sequences, output bound ---------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_length_stop_openai_client(translation_gw, stream):
    client = oai(translation_gw, TO_ANT)
    if stream:
        chunks = list(client.chat.completions.create(model="claude-x", messages=user("be brief"), max_tokens=5, stream=True))
        text = chat_text(chunks)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finish == ["length"], finish
    else:
        c = client.chat.completions.create(model="claude-x", messages=user("be brief"), max_completion_tokens=5)
        text = c.choices[0].message.content
        assert c.choices[0].finish_reason == "length"
    assert len(text.split()) == 5, text


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_max_tokens_stop_anthropic_client(translation_gw, stream):
    client = ant(translation_gw, TO_OAI)
    if stream:
        with client.messages.stream(model="gpt-x", max_tokens=5, messages=user("be brief")) as s:
            m = s.get_final_message()
    else:
        m = client.messages.create(model="gpt-x", max_tokens=5, messages=user("be brief"))
    assert m.stop_reason == "max_tokens"
    assert len(m.content[0].text.split()) == 5


def test_stop_sequences_and_bounds_reach_the_anthropic_provider(translation_recorded_gw, recorder):
    recorder.take()
    client = oai(translation_recorded_gw, TO_ANT)
    client.chat.completions.create(
        model="claude-x", messages=user("stop at the word"), stop=["HALT", "END"], temperature=0.5, max_tokens=77
    )
    body = sent(recorder, "/messages")
    assert body["stop_sequences"] == ["HALT", "END"], body
    assert body["max_tokens"] == 77
    assert body["temperature"] == 0.5
    assert body["messages"] == [{"role": "user", "content": "stop at the word"}] or body["messages"][0]["content"] in (
        "stop at the word", [{"type": "text", "text": "stop at the word"}]
    ), body["messages"]
    # No max_tokens from the client: Anthropic requires one, the model's max_output_tokens.
    client.chat.completions.create(model="claude-x", messages=user("no bound"), stop="ONE")
    body = sent(recorder, "/messages")
    assert body["max_tokens"] == 4096, body
    assert body["stop_sequences"] == ["ONE"], body


def test_stop_sequences_and_system_reach_the_openai_provider(translation_recorded_gw, recorder):
    recorder.take()
    ant(translation_recorded_gw, TO_OAI).messages.create(
        model="gpt-x", max_tokens=66, system="be kind", messages=user("stop here"), stop_sequences=["HALT"]
    )
    body = sent(recorder, "/chat/completions")
    assert body.get("stop") in (["HALT"], "HALT"), body
    bound = body.get("max_completion_tokens", body.get("max_tokens"))
    assert bound == 66, body
    first = body["messages"][0]
    assert first["role"] in ("system", "developer"), body["messages"]
    content = first["content"]
    assert (content if isinstance(content, str) else "".join(p["text"] for p in content)) == "be kind"


# ---- tools ----------------------------------------------------------------------------------


def test_openai_tool_call_from_anthropic_model(translation_gw, mock_upstream):
    client = oai(translation_gw, TO_ANT)
    prompt = "what is the weather in Paris"
    c = client.chat.completions.create(model="claude-x", messages=user(prompt), tools=OAI_TOOLS)
    choice = c.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert calls and len(calls) == 1, choice.message
    call = calls[0]
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    # The mock asked directly, in its own protocol, calls the same tool with these arguments.
    own = direct_ant(mock_upstream).messages.create(
        model="claude-upstream-x", max_tokens=4096, messages=user(prompt), tools=ANT_TOOLS
    )
    uses = [b for b in own.content if b.type == "tool_use"]
    assert args == uses[0].input, (args, uses[0].input)
    assert isinstance(args.get("city"), str), args

    # The result goes back as a `tool` message and reaches the provider as a tool_result.
    result = "sunny and 21 degrees"
    follow = client.chat.completions.create(
        model="claude-x",
        tools=OAI_TOOLS,
        messages=[
            *user(prompt),
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
            {"role": "tool", "tool_call_id": call.id, "content": result},
        ],
    )
    text = follow.choices[0].message.content
    assert text.startswith(TOOL_SAID) and result in text, text
    assert follow.choices[0].finish_reason == "stop"


def test_anthropic_tool_use_from_openai_model(translation_gw, mock_upstream):
    client = ant(translation_gw, TO_OAI)
    prompt = "what is the weather in Rome"
    m = client.messages.create(model="gpt-x", max_tokens=300, messages=user(prompt), tools=ANT_TOOLS)
    assert m.stop_reason == "tool_use"
    uses = [b for b in m.content if b.type == "tool_use"]
    assert len(uses) == 1, m.content
    use = uses[0]
    assert use.name == "get_weather" and use.id
    assert isinstance(use.input, dict)
    own = direct_oai(mock_upstream).chat.completions.create(model="gpt-upstream-x", messages=user(prompt), tools=OAI_TOOLS)
    assert use.input == json.loads(own.choices[0].message.tool_calls[0].function.arguments)

    result = "cloudy and 14 degrees"
    follow = client.messages.create(
        model="gpt-x",
        max_tokens=300,
        tools=ANT_TOOLS,
        messages=[
            *user(prompt),
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": result}]},
        ],
    )
    text = follow.content[0].text
    assert text.startswith(TOOL_SAID) and result in text, text
    assert follow.stop_reason == "end_turn"


def test_tool_choice_names_the_tool(translation_gw):
    """tool_choice naming the second tool reaches the provider in its form: the mock calls it."""
    c = oai(translation_gw, TO_ANT).chat.completions.create(
        model="claude-x", messages=user("what time is it"), tools=OAI_TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert [t.function.name for t in c.choices[0].message.tool_calls] == ["get_time"]
    m = ant(translation_gw, TO_OAI).messages.create(
        model="gpt-x", max_tokens=300, messages=user("what time is it"), tools=ANT_TOOLS,
        tool_choice={"type": "tool", "name": "get_time"},
    )
    assert [b.name for b in m.content if b.type == "tool_use"] == ["get_time"]


def test_parallel_tool_calls_openai_client(translation_recorded_gw, recorder):
    client = oai(translation_recorded_gw, TO_ANT)
    prompt = "check the weather in parallel"
    c = client.chat.completions.create(model="claude-x", messages=user(prompt), tools=OAI_TOOLS)
    calls = c.choices[0].message.tool_calls
    assert calls and len(calls) == 2, c.choices[0].message
    assert len({t.id for t in calls}) == 2, "distinct call ids"
    assert all(t.function.name in ("get_weather", "get_time") for t in calls)
    assert all(isinstance(json.loads(t.function.arguments), dict) for t in calls)
    results = ["first result alpha", "second result beta"]
    recorder.take()
    follow = client.chat.completions.create(
        model="claude-x",
        tools=OAI_TOOLS,
        messages=[
            *user(prompt),
            {"role": "assistant", "content": None, "tool_calls": [t.model_dump(exclude_none=True) for t in calls]},
            *({"role": "tool", "tool_call_id": t.id, "content": r} for t, r in zip(calls, results)),
        ],
    )
    text = follow.choices[0].message.content
    # The mock quotes the first result; it answers 400 unless every tool_use is answered.
    assert text.startswith(f"{TOOL_SAID} {results[0]}"), text
    answered = [b for b in sent(recorder, "/messages")["messages"][-1]["content"] if b["type"] == "tool_result"]
    assert [b["tool_use_id"] for b in answered] == [t.id for t in calls], answered
    assert [b["content"] if isinstance(b["content"], str) else b["content"][0]["text"] for b in answered] == results


def test_parallel_tool_calls_anthropic_client(translation_recorded_gw, recorder):
    client = ant(translation_recorded_gw, TO_OAI)
    prompt = "check the weather in parallel"
    m = client.messages.create(model="gpt-x", max_tokens=300, messages=user(prompt), tools=ANT_TOOLS)
    uses = [b for b in m.content if b.type == "tool_use"]
    assert len(uses) == 2, m.content
    assert len({u.id for u in uses}) == 2
    assert m.stop_reason == "tool_use"
    results = ["first result gamma", "second result delta"]
    recorder.take()
    follow = client.messages.create(
        model="gpt-x",
        max_tokens=300,
        tools=ANT_TOOLS,
        messages=[
            *user(prompt),
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in m.content]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": u.id, "content": r} for u, r in zip(uses, results)
            ]},
        ],
    )
    text = follow.content[0].text
    # The mock quotes the first result; it answers 400 unless every call is answered.
    assert text.startswith(f"{TOOL_SAID} {results[0]}"), text
    answered = [m for m in sent(recorder, "/chat/completions")["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in answered] == [u.id for u in uses], answered
    assert [m["content"] if isinstance(m["content"], str) else m["content"][0]["text"] for m in answered] == results


def test_tool_without_arguments(translation_gw):
    c = oai(translation_gw, TO_ANT).chat.completions.create(
        model="claude-x", messages=user("is the server up"), tools=[oai_tool("server_status", EMPTY_SCHEMA)]
    )
    call = c.choices[0].message.tool_calls[0]
    assert call.function.name == "server_status"
    assert json.loads(call.function.arguments) == {}
    with oai(translation_gw, TO_ANT).chat.completions.stream(
        model="claude-x", messages=user("is the server up"), tools=[oai_tool("server_status", EMPTY_SCHEMA)]
    ) as s:
        final = s.get_final_completion()
    assert json.loads(final.choices[0].message.tool_calls[0].function.arguments) == {}

    m = ant(translation_gw, TO_OAI).messages.create(
        model="gpt-x", max_tokens=300, messages=user("is the server up"), tools=[ant_tool("server_status", EMPTY_SCHEMA)]
    )
    use = [b for b in m.content if b.type == "tool_use"][0]
    assert use.name == "server_status" and use.input == {}
    with ant(translation_gw, TO_OAI).messages.stream(
        model="gpt-x", max_tokens=300, messages=user("is the server up"), tools=[ant_tool("server_status", EMPTY_SCHEMA)]
    ) as s:
        final = s.get_final_message()
    assert [b.input for b in final.content if b.type == "tool_use"] == [{}]


LONG_NAME = "mcp__a_very_long_server_name_for_testing__" + "look_up_the_current_weather_forecast_for_a_city"


def test_long_tool_names_mapped_and_back(translation_recorded_gw, recorder):
    assert len(LONG_NAME) > 64
    recorder.take()
    c = oai(translation_recorded_gw, TO_ANT).chat.completions.create(
        model="claude-x", messages=user("weather please"), tools=[oai_tool(LONG_NAME, WEATHER_SCHEMA)]
    )
    assert c.choices[0].message.tool_calls[0].function.name == LONG_NAME
    upstream = [t["name"] for t in sent(recorder, "/messages")["tools"]]
    assert len(upstream) == 1 and len(upstream[0]) <= 64 and re.fullmatch(r"[A-Za-z0-9_-]+", upstream[0]), upstream

    m = ant(translation_recorded_gw, TO_OAI).messages.create(
        model="gpt-x", max_tokens=300, messages=user("weather please"), tools=[ant_tool(LONG_NAME, WEATHER_SCHEMA)]
    )
    assert [b.name for b in m.content if b.type == "tool_use"] == [LONG_NAME]
    upstream = [t["function"]["name"] for t in sent(recorder, "/chat/completions")["tools"]]
    assert len(upstream) == 1 and len(upstream[0]) <= 64, upstream

    # Streamed, the name is mapped back too.
    with oai(translation_recorded_gw, TO_ANT).chat.completions.stream(
        model="claude-x", messages=user("weather please"), tools=[oai_tool(LONG_NAME, WEATHER_SCHEMA)]
    ) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.tool_calls[0].function.name == LONG_NAME
    recorder.take()


# ---- images ---------------------------------------------------------------------------------


def test_images_openai_client_to_anthropic_model(translation_recorded_gw, recorder):
    recorder.take()
    client = oai(translation_recorded_gw, TO_ANT)
    parts = [
        {"type": "text", "text": "describe these images"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
    ]
    c = client.chat.completions.create(model="claude-x", messages=[{"role": "user", "content": parts}])
    assert c.choices[0].message.content.startswith(expected_reply_start("describe these images"))
    blocks = sent(recorder, "/messages")["messages"][0]["content"]
    images = [b["source"] for b in blocks if b["type"] == "image"]
    assert images == [
        {"type": "base64", "media_type": "image/png", "data": PNG_B64},
        {"type": "url", "url": "https://example.com/cat.png"},
    ], images
    # Streamed as well.
    chunks = list(client.chat.completions.create(model="claude-x", messages=[{"role": "user", "content": parts}], stream=True))
    assert chat_text(chunks).startswith(expected_reply_start("describe these images"))
    recorder.take()


def test_image_anthropic_client_to_openai_model(translation_recorded_gw, recorder):
    recorder.take()
    m = ant(translation_recorded_gw, TO_OAI).messages.create(
        model="gpt-x",
        max_tokens=200,
        messages=[{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
            {"type": "text", "text": "describe this image"},
        ]}],
    )
    assert m.content[0].text.startswith(expected_reply_start("describe this image"))
    parts = sent(recorder, "/chat/completions")["messages"][0]["content"]
    urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert urls == [f"data:image/png;base64,{PNG_B64}"], parts


# ---- stream helpers -------------------------------------------------------------------------


def test_chat_stream_helper_tool_calls(translation_gw):
    with oai(translation_gw, TO_ANT).chat.completions.stream(
        model="claude-x", messages=user("weather in Oslo"), tools=OAI_TOOLS
    ) as s:
        events = list(s)
        final = s.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert isinstance(args, dict) and args
    done = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert [e.name for e in done] == ["get_weather"], done
    assert json.loads(done[0].arguments) == args
    assert final.choices[0].finish_reason == "tool_calls"


def test_messages_stream_helper_tool_use(translation_gw):
    with ant(translation_gw, TO_OAI).messages.stream(
        model="gpt-x", max_tokens=300, messages=user("weather in Oslo"), tools=ANT_TOOLS
    ) as s:
        events = list(s)
        final = s.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert len(uses) == 1 and uses[0].name == "get_weather" and isinstance(uses[0].input, dict) and uses[0].input
    assert final.stop_reason == "tool_use"
    json_parts = "".join(e.partial_json for e in events if e.type == "input_json")
    assert json.loads(json_parts) == uses[0].input


RESPONSES_TARGETS = [(TO_ANT, "claude-x"), (TO_CHAT, "gpt-chat")]


@pytest.mark.parametrize("slug,model", RESPONSES_TARGETS, ids=["messages", "chat"])
def test_responses_create(translation_gw, slug, model):
    prompt = "hello from the responses api"
    raw = oai(translation_gw, slug).responses.with_raw_response.create(model=model, input=prompt, max_output_tokens=200)
    assert raw.status_code == 200
    assert_trace_id(raw.headers)
    r = raw.parse()
    assert r.object == "response" and r.status == "completed"
    assert r.model == model
    assert r.output_text.startswith(expected_reply_start(prompt)), r.output_text
    assert [o.type for o in r.output] == ["message"]
    assert r.usage.output_tokens == len(r.output_text.split())
    assert r.usage.input_tokens > 0 and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens


@pytest.mark.parametrize("slug,model", RESPONSES_TARGETS, ids=["messages", "chat"])
def test_responses_stream_helper(translation_gw, slug, model):
    prompt = "stream a translated response"
    client = oai(translation_gw, slug)
    whole = client.responses.create(model=model, input=prompt).output_text
    with client.responses.stream(model=model, input=prompt) as s:
        events = list(s)
        final = s.get_final_response()
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed", types
    for t in ("response.output_item.added", "response.content_part.added", "response.output_text.done",
              "response.content_part.done", "response.output_item.done"):
        assert t in types, (t, types)
    seqs = [e.sequence_number for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == whole
    assert final.output_text == whole
    assert final.status == "completed" and final.model == model
    assert final.usage is not None and final.usage.output_tokens == len(whole.split())


@pytest.mark.parametrize("slug,model", RESPONSES_TARGETS, ids=["messages", "chat"])
def test_responses_function_calls(translation_gw, slug, model):
    client = oai(translation_gw, slug)
    prompt = "weather in Lisbon"
    r = client.responses.create(model=model, input=prompt, tools=RESP_TOOLS)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1, r.output
    assert calls[0].name == "get_weather" and calls[0].call_id
    assert isinstance(json.loads(calls[0].arguments), dict)
    with client.responses.stream(model=model, input=prompt, tools=RESP_TOOLS) as s:
        events = list(s)
        final = s.get_final_response()
    scalls = [o for o in final.output if o.type == "function_call"]
    assert [(c.name, c.arguments) for c in scalls] == [(c.name, c.arguments) for c in calls]
    assert "response.function_call_arguments.done" in [e.type for e in events]
    result = "foggy and 17 degrees"
    follow = client.responses.create(
        model=model,
        tools=RESP_TOOLS,
        input=[
            {"role": "user", "content": prompt},
            {"type": "function_call", "call_id": calls[0].call_id, "name": calls[0].name, "arguments": calls[0].arguments},
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": result},
        ],
    )
    assert follow.output_text.startswith(TOOL_SAID) and result in follow.output_text, follow.output_text


# ---- thinking and reasoning -----------------------------------------------------------------


def test_anthropic_thinking_to_openai_model(translation_recorded_gw, recorder, mock_upstream):
    recorder.take()
    raw = ant(translation_recorded_gw, TO_OAI).messages.with_raw_response.create(
        model="gpt-x", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048}, messages=user("think hard")
    )
    m = raw.parse()
    assert [b for b in m.content if b.type == "text"][0].text.startswith(expected_reply_start("think hard"))
    body = sent(recorder, "/chat/completions")
    # Either carried over as reasoning_effort, or dropped and said so: never silently.
    assert body.get("reasoning_effort") in ("minimal", "low", "medium", "high") or "thinking" in dropped(raw.headers), (
        body, raw.headers.get("x-routerly-dropped"))
    if "reasoning_effort" in body:
        own = replay(mock_upstream, "/chat/completions", body)["usage"]
        assert m.usage.output_tokens == own["completion_tokens"], (m.usage, own)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_openai_reasoning_effort_to_anthropic_thinking(translation_recorded_gw, recorder, stream):
    recorder.take()
    client = oai(translation_recorded_gw, TO_ANT)
    if stream:
        chunks = list(client.chat.completions.create(
            model="claude-x", messages=user("reason about it"), reasoning_effort="high", stream=True
        ))
        reasoning = "".join(
            (c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks if c.choices
        )
        text = chat_text(chunks)
    else:
        c = client.chat.completions.create(model="claude-x", messages=user("reason about it"), reasoning_effort="high")
        reasoning = (c.choices[0].message.model_extra or {}).get("reasoning_content")
        text = c.choices[0].message.content
    body = sent(recorder, "/messages")
    thinking = body.get("thinking") or {}
    assert thinking.get("type") in ("enabled", "adaptive"), body
    if thinking["type"] == "enabled":
        assert 1024 <= thinking["budget_tokens"] < body["max_tokens"], body
    assert text.startswith(expected_reply_start("reason about it")), text
    assert isinstance(reasoning, str) and reasoning.strip(), "the mock's thinking arrives as reasoning_content"


def test_responses_reasoning_to_anthropic_model(translation_recorded_gw, recorder):
    recorder.take()
    r = oai(translation_recorded_gw, TO_ANT).responses.create(
        model="claude-x", input="reason about it", reasoning={"effort": "medium"}
    )
    body = sent(recorder, "/messages")
    assert (body.get("thinking") or {}).get("type") in ("enabled", "adaptive"), body
    assert r.output_text.startswith(expected_reply_start("reason about it"))
    assert [o.type for o in r.output][-1] == "message"
    assert "reasoning" in [o.type for o in r.output], r.output


# ---- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field,kw", [("n", {"n": 2}), ("logprobs", {"logprobs": True})])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_field_the_provider_cannot_honour_is_400(translation_recorded_gw, recorder, field, kw, stream):
    recorder.take()
    with pytest.raises(openai.BadRequestError) as ei:
        oai(translation_recorded_gw, TO_ANT).chat.completions.create(
            model="claude-x", messages=user("two answers please"), stream=stream, **kw
        )
    err = ei.value
    assert err.status_code == 400
    assert err.type == "invalid_request_error", err.body
    assert re.search(rf"\b{field}\b", err.message), err.message
    assert_trace_id(err.response.headers)
    assert recorder.take() == [], "a refused request never reaches the provider"


def test_upstream_4xx_keeps_its_status_in_the_clients_shape(translation_recorded_gw, recorder):
    """A tool result answering no call of the turn before it: the provider (strict as the real
    APIs) answers 400, and the client gets that 400 in its own shape, the provider's reason kept."""
    recorder.take()
    call = {"id": "call_real", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}
    with pytest.raises(openai.BadRequestError) as ei:
        oai(translation_recorded_gw, TO_ANT).chat.completions.create(model="claude-x", tools=OAI_TOOLS, messages=[
            *user("weather in Oslo"),
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_real", "content": "rainy"},
            {"role": "assistant", "content": "It is rainy."},
            {"role": "tool", "tool_call_id": "call_unknown", "content": "stray"},
        ])
    err = ei.value
    assert err.status_code == 400
    assert isinstance(err.body, dict) and err.body.get("type") == "invalid_request_error", err.body
    assert "tool_use_id" in err.message, err.message
    assert_trace_id(err.response.headers)
    assert len(sent(recorder, "/messages")["messages"]) >= 4, "the provider, not the gateway, refused it"

    use = {"type": "tool_use", "id": "toolu_real", "name": "get_weather", "input": {"city": "Oslo"}}
    with pytest.raises(anthropic.BadRequestError) as ei:
        ant(translation_recorded_gw, TO_OAI).messages.create(model="gpt-x", max_tokens=100, tools=ANT_TOOLS, messages=[
            *user("weather in Oslo"),
            {"role": "assistant", "content": [use]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_real", "content": "rainy"}]},
            {"role": "assistant", "content": "It is rainy."},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_unknown", "content": "stray"}]},
        ])
    err = ei.value
    assert err.status_code == 400
    assert err.body["type"] == "error" and err.body["error"]["type"] == "invalid_request_error", err.body
    # The provider's reason, in its own words (OpenAI's path notation), is kept.
    assert "messages[" in err.body["error"]["message"] and "tool" in err.body["error"]["message"], err.body
    assert len(sent(recorder, "/chat/completions")["messages"]) >= 4, "the provider, not the gateway, refused it"


def test_advisory_fields_dropped_and_named_openai_client(translation_recorded_gw, recorder):
    recorder.take()
    raw = oai(translation_recorded_gw, TO_ANT).chat.completions.with_raw_response.create(
        model="claude-x", messages=user("drop the hints"), prompt_cache_key="key-1", service_tier="flex"
    )
    assert raw.status_code == 200
    names = dropped(raw.headers)
    assert {"prompt_cache_key", "service_tier"} <= set(names), names
    body = sent(recorder, "/messages")
    assert "prompt_cache_key" not in body and "service_tier" not in body, body
    assert raw.parse().choices[0].message.content.startswith(expected_reply_start("drop the hints"))


def test_advisory_fields_dropped_and_named_anthropic_client(translation_recorded_gw, recorder):
    recorder.take()
    raw = ant(translation_recorded_gw, TO_OAI).messages.with_raw_response.create(
        model="gpt-x",
        max_tokens=200,
        metadata={"user_id": "user-42"},
        system=[{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "drop the hints", "cache_control": {"type": "ephemeral"}}
        ]}],
    )
    assert raw.status_code == 200
    names = dropped(raw.headers)
    assert {"metadata", "cache_control"} <= set(names), names
    assert len(names) == len(set(names)), f"each name once: {names}"
    sent_text = json.dumps(sent(recorder, "/chat/completions"))
    assert "cache_control" not in sent_text and "user-42" not in sent_text, sent_text
    assert raw.parse().content[0].text.startswith(expected_reply_start("drop the hints"))


def test_dropped_fields_in_stream_trace(translation_gw):
    url = translation_gw.url
    r, text = post_stream(f"{url}/projects/{TO_ANT}/v1/chat/completions", {
        "model": "claude-x", "stream": True, "prompt_cache_key": "k", "messages": user("dropped in the trace"),
    }, oai_headers())
    assert r.status_code == 200
    trace = trace_of(parse(text), "chat")
    assert "prompt_cache_key" in trace.get("dropped", []), trace
    assert "prompt_cache_key" in dropped(r.headers)

    r, text = post_stream(f"{url}/projects/{TO_OAI}/v1/messages", {
        "model": "gpt-x", "stream": True, "max_tokens": 100, "metadata": {"user_id": "u"},
        "messages": user("dropped in the trace"),
    }, ant_headers())
    assert r.status_code == 200
    trace = trace_of(parse(text), "messages")
    assert "metadata" in trace.get("dropped", []), trace
    assert "metadata" in dropped(r.headers)

    r, text = post_stream(f"{url}/projects/{TO_ANT}/v1/responses", {
        "model": "claude-x", "stream": True, "input": "dropped in the trace", "prompt_cache_key": "k",
    }, oai_headers())
    assert r.status_code == 200
    trace = trace_of(parse(text), "responses")
    assert "prompt_cache_key" in trace.get("dropped", []), trace


def test_mid_stream_error_openai_client(translation_gw):
    client = oai(translation_gw, "ant-err")
    got = []
    with pytest.raises(openai.APIError) as ei:
        for chunk in client.chat.completions.create(model="claude-err", messages=user("fail midway"), stream=True):
            got.append(chunk)
    assert not isinstance(ei.value, openai.APIConnectionError), "an error event, not a cut connection"
    assert not any(c.choices and c.choices[0].finish_reason for c in got), "no normal end before the error"
    # On the wire: the error event, and no [DONE] after it.
    r, text = post_stream(f"{translation_gw.url}/projects/ant-err/v1/chat/completions",
                          {"model": "claude-err", "stream": True, "messages": user("fail midway")}, oai_headers())
    assert r.status_code == 200
    events = parse(text)
    datas = [e.data for e in events if e.data]
    assert "[DONE]" not in datas, datas[-3:]
    assert "error" in json.loads(datas[-1]), datas[-1]


def test_mid_stream_error_anthropic_client(translation_gw):
    client = ant(translation_gw, "oai-err")
    with pytest.raises(anthropic.APIError) as ei:
        with client.messages.stream(model="gpt-err", max_tokens=100, messages=user("fail midway")) as s:
            for _ in s.text_stream:
                pass
    assert not isinstance(ei.value, anthropic.APIConnectionError), "an error event, not a cut connection"
    r, text = post_stream(f"{translation_gw.url}/projects/oai-err/v1/messages",
                          {"model": "gpt-err", "stream": True, "max_tokens": 100, "messages": user("fail midway")},
                          ant_headers())
    names = [e.event for e in parse(text) if e.event]
    assert names[-1] == "error", names
    assert "message_stop" not in names, names


@pytest.mark.parametrize("slug,model", [("ant-err", "claude-err"), ("chat-err", "chat-err")], ids=["messages", "chat"])
def test_mid_stream_error_responses_client(translation_gw, slug, model):
    events, raised = [], None
    try:
        for e in oai(translation_gw, slug).responses.create(model=model, input="fail midway", stream=True):
            events.append(e)
    except openai.APIError as e:
        raised = e
    types = [e.type for e in events]
    assert types and types[0] == "response.created", types
    assert raised is not None or types[-1] in ("error", "response.failed"), types
    assert "response.completed" not in types, types


# ---- agents: Claude Code and Codex CLI request shapes ---------------------------------------

CLAUDE_CODE_BETAS = ",".join([
    "claude-code-20250219", "oauth-2025-04-20", "interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14",
    "context-management-2025-06-27", "effort-2025-11-24", "prompt-caching-scope-2026-01-05", "context-1m-2025-08-07",
])
AGENT_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agents"


def claude_code_body() -> dict:
    """A Claude Code 2.1 turn as it sends it to `/v1/messages?beta=true` (24 tools, system blocks
    with cache_control, adaptive thinking, output_config, context_management, metadata), ending
    in tool results; streamed, to the OpenAI-protocol model."""
    body = json.loads((AGENT_FIXTURES / "claude_code_messages.json").read_text())
    assert len(body["tools"]) == 24 and body["messages"][-1]["role"] == "user"
    return {**body, "model": "gpt-x", "stream": True}


def test_claude_code_turn_to_openai_model(translation_gw):
    headers = ant_headers(**{
        "anthropic-beta": CLAUDE_CODE_BETAS, "user-agent": "claude-cli/2.1.0 (external, cli)", "x-app": "cli",
        "anthropic-dangerous-direct-browser-access": "true", "x-stainless-lang": "js",
    })
    r, text = post_stream(f"{translation_gw.url}/projects/{TO_OAI}/v1/messages?beta=true", claude_code_body(), headers)
    assert r.status_code == 200, text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = parse(text)
    names = [e.event for e in events]
    assert names[0] == "ping", names
    body_names = [n for n in names if n != "ping"]
    assert body_names[0] == "message_start" and body_names[-1] == "message_stop", names
    assert body_names[-2] == "message_delta", names
    assert all(e.event == json.loads(e.data)["type"] for e in events), "each event's name is its data's type"
    # Every block opens, takes deltas of its own kind, and closes, in order.
    open_blocks: dict[int, dict] = {}
    blocks = []
    for e in events:
        d = e.json()
        if d["type"] == "content_block_start":
            assert d["index"] == len(blocks) and d["index"] not in open_blocks, d
            open_blocks[d["index"]] = dict(d["content_block"], json="")
            blocks.append(open_blocks[d["index"]])
        elif d["type"] == "content_block_delta":
            b = open_blocks[d["index"]]
            if d["delta"]["type"] == "input_json_delta":
                assert b["type"] == "tool_use"
                b["json"] += d["delta"]["partial_json"]
        elif d["type"] == "content_block_stop":
            del open_blocks[d["index"]]
    assert not open_blocks
    # The turn ends in tool results: the mock's answer quotes the first one, as text.
    assert [b["type"] for b in blocks if b["type"] != "thinking"] == ["text"], blocks
    text = "".join(e.json()["delta"].get("text", "") for e in events if e.event == "content_block_delta")
    assert text.startswith(TOOL_SAID), text
    stop = [e.json() for e in events if e.event == "message_delta"][0]
    assert stop["delta"]["stop_reason"] == "end_turn"
    assert stop["usage"]["output_tokens"] > 0
    names_dropped = set(dropped(r.headers))
    assert {"context_management", "metadata", "cache_control", "anthropic-beta"} <= names_dropped, names_dropped


def codex_body() -> dict:
    """A Codex CLI turn as it sends it to `/v1/responses` (developer turns, function, namespace
    and web_search tools, reasoning summary, store false, include, prompt_cache_key), ending in
    a user turn; streamed, to the Anthropic-protocol model."""
    body = json.loads((AGENT_FIXTURES / "codex_responses.json").read_text())
    assert body["input"][-1]["role"] == "user"
    return {**body, "model": "claude-x", "stream": True}


def test_codex_turn_to_anthropic_model(translation_gw):
    headers = {**oai_headers(), "originator": "codex_cli_rs", "user-agent": "codex_cli_rs/0.171.0",
               "session_id": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "openai-beta": "responses=experimental"}
    r, text = post_stream(f"{translation_gw.url}/projects/{TO_ANT}/v1/responses", codex_body(), headers)
    assert r.status_code == 200, text
    events = [e for e in parse(text) if e.data]
    datas = [e.json() for e in events]
    types = [d["type"] for d in datas]
    assert types[0] == "response.created" and types[-1] == "response.completed", types
    assert all(e.event in (None, d["type"]) for e, d in zip(events, datas))
    seqs = [d["sequence_number"] for d in datas]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    final = datas[-1]["response"]
    assert final["status"] == "completed" and final["model"] == "claude-x"
    calls = [o for o in final["output"] if o["type"] == "function_call"]
    first_function = next(t["name"] for t in codex_body()["tools"] if t["type"] == "function")
    assert [c["name"] for c in calls] == [first_function], final["output"]
    assert isinstance(json.loads(calls[0]["arguments"]), dict)
    assert final["usage"]["input_tokens"] > 0
    names_dropped = set(dropped(r.headers))
    assert {"include", "prompt_cache_key"} <= names_dropped, names_dropped
    assert [n for n in names_dropped if "web_search" in n], names_dropped


def test_codex_namespace_tool_call_comes_back_namespaced(translation_recorded_gw, recorder):
    """A `namespace` tool's functions become tools of their own; the mock calls the first one,
    and the call comes back with its namespace and the function's own name."""
    recorder.take()
    body = codex_body()
    body["stream"] = False
    body["tools"] = [t for t in body["tools"] if t["type"] == "namespace"] + [
        t for t in body["tools"] if t["type"] != "namespace"]
    r = httpx.post(f"{translation_recorded_gw.url}/projects/{TO_ANT}/v1/responses", json=body, headers=oai_headers(),
                   timeout=CLIENT_TIMEOUT_S)
    assert r.status_code == 200, r.text
    space = body["tools"][0]
    function = space["tools"][0]["name"]
    upstream = [t["name"] for t in sent(recorder, "/messages")["tools"]]
    assert upstream[0].endswith(function) and len(upstream[0]) <= 64, upstream
    assert not [n for n in upstream if "web_search" in n], upstream
    calls = [o for o in r.json()["output"] if o["type"] == "function_call"]
    assert len(calls) == 1, r.json()["output"]
    assert calls[0].get("namespace") == space["name"] and calls[0]["name"] == function, calls[0]


# ---- the agents themselves: Claude Code and Codex CLI, one non-interactive prompt each ---------

#: Pinned agent versions, installed from npm once into their own folder under target/ (as
#: tests/node_clients.rs does for the Node SDKs); nothing is installed globally. The runs
#: themselves only talk to the gateway on loopback: telemetry, update checks and error reports off.
AGENT_PACKAGES = {"claude": "@anthropic-ai/claude-code@2.1.332", "codex": "@openai/codex@0.171.0"}
AGENT_DIR = Path(__file__).resolve().parents[2] / "target" / "tmp" / "agent-clis"


@pytest.fixture(scope="module")
def agent_bin() -> Path:
    """The folder of the agents' executables, installed on first use."""
    bin_dir = AGENT_DIR / "node_modules" / ".bin"
    want = {name: spec.rsplit("@", 1)[1] for name, spec in AGENT_PACKAGES.items()}

    def installed() -> bool:
        for name, version in want.items():
            exe = bin_dir / name
            if not exe.exists():
                return False
            out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
            if version not in out.stdout:
                return False
        return True

    if not installed():
        AGENT_DIR.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(AGENT_DIR), *AGENT_PACKAGES.values()],
            capture_output=True, text=True, timeout=600, env={**os.environ, "npm_config_update_notifier": "false"},
        )
        assert r.returncode == 0, f"npm install of the agent CLIs failed:\n{r.stdout}\n{r.stderr}"
        assert installed(), f"the agent CLIs in {bin_dir} do not report the pinned versions"
    return bin_dir


def quiet_env(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "CLAUDE_", "CODEX_"))}
    env.update(HOME=str(home), DISABLE_TELEMETRY="1", DISABLE_AUTOUPDATER="1", DISABLE_ERROR_REPORTING="1",
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", NO_COLOR="1", **extra)
    return env


def test_claude_code_cli_against_an_openai_model(translation_gw, agent_bin, tmp_path):
    """`claude -p` on an OpenAI-protocol model: the mock calls Claude Code's first tool, Claude
    Code answers with the tool result, the mock's `Tool said:` reply ends the run."""
    work = tmp_path / "work"
    work.mkdir()
    env = quiet_env(tmp_path, ANTHROPIC_BASE_URL=f"{translation_gw.url}/projects/{TO_OAI}", ANTHROPIC_API_KEY=TOKEN,
                    ANTHROPIC_MODEL="gpt-x", ANTHROPIC_SMALL_FAST_MODEL="gpt-x")
    r = subprocess.run([str(agent_bin / "claude"), "-p", "hello there", "--model", "gpt-x", "--output-format", "json"],
                       cwd=work, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    out = json.loads(r.stdout)
    assert out["is_error"] is False and out["subtype"] == "success", out
    assert out["result"].startswith(TOOL_SAID), out["result"]
    assert out["num_turns"] >= 2, out
    assert out["usage"]["input_tokens"] > 0 and out["usage"]["output_tokens"] > 0, out["usage"]


def test_codex_cli_against_an_anthropic_model(translation_gw, agent_bin, tmp_path):
    """`codex exec` on an Anthropic-protocol model through /v1/responses: the mock calls Codex's
    first tool (a command it runs in a read-only sandbox in an empty folder), then the mock's
    `Tool said:` reply is Codex's last message."""
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "codex").mkdir()
    last = tmp_path / "last.txt"
    env = quiet_env(tmp_path, CODEX_HOME=str(tmp_path / "codex"), SY_KEY=TOKEN)
    provider = (f'model_providers.sy={{name="switchyard",base_url="{translation_gw.url}/projects/{TO_ANT}/v1",'
                f'env_key="SY_KEY",wire_api="responses"}}')
    r = subprocess.run(
        [str(agent_bin / "codex"), "exec", "--skip-git-repo-check", "--sandbox", "read-only", "-m", "claude-x",
         "-c", "model_provider=sy", "-c", provider, "-c", "analytics.enabled=false",
         "--output-last-message", str(last), "echo"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, f"stdout:\n{r.stdout[-3000:]}\nstderr:\n{r.stderr[-3000:]}"
    assert last.read_text().startswith(TOOL_SAID), (last.read_text(), r.stderr[-3000:])
