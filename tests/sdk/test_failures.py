"""Upstream failures as the SDKs see them (clients built with `max_retries=0`).

The faults gateway's project `fail` has only models whose upstream id is `fail-500-x` (the mock
answers 500): every candidate fails before a byte reaches the client, so the answer is 502
`api_error`. Project `cut` has only `cut-x` models: the mock's stream stops mid-answer, after
the gateway has started relaying, so the stream must end with the protocol's error event and
never with a terminator that makes the cut answer look whole.
"""

from __future__ import annotations

import anthropic
import openai
import pytest

from conftest import CUT_TOKEN, FAIL_TOKEN, MOCK_PREFIX, assert_trace_id
from sse import parse, post_stream

USER = [{"role": "user", "content": "please fail"}]


# ---- every candidate failed: 502 ------------------------------------------------------------


def check_openai_502(err: openai.APIStatusError):
    assert isinstance(err, openai.InternalServerError), type(err)
    assert err.status_code == 502
    assert err.type == "api_error", err.body
    assert_trace_id(err.response.headers)


def check_anthropic_502(err: anthropic.APIStatusError):
    assert isinstance(err, anthropic.InternalServerError), type(err)
    assert err.status_code == 502
    assert err.body["type"] == "error"
    assert err.body["error"]["type"] == "api_error", err.body
    assert_trace_id(err.response.headers)


def test_fail_chat(faults_gw):
    client = faults_gw.openai(FAIL_TOKEN)
    with pytest.raises(openai.APIStatusError) as ei:
        client.chat.completions.create(model="gpt-fail", messages=USER)
    check_openai_502(ei.value)
    with pytest.raises(openai.APIStatusError) as ei:
        client.chat.completions.create(model="gpt-fail", messages=USER, stream=True)
    check_openai_502(ei.value)
    with pytest.raises(openai.APIStatusError) as ei:
        with client.chat.completions.stream(model="gpt-fail", messages=USER) as s:
            s.get_final_completion()
    check_openai_502(ei.value)


def test_fail_responses(faults_gw):
    client = faults_gw.openai(FAIL_TOKEN)
    with pytest.raises(openai.APIStatusError) as ei:
        client.responses.create(model="gpt-fail", input="please fail")
    check_openai_502(ei.value)
    with pytest.raises(openai.APIStatusError) as ei:
        with client.responses.stream(model="gpt-fail", input="please fail") as s:
            s.get_final_response()
    check_openai_502(ei.value)


def test_fail_messages(faults_gw):
    client = faults_gw.anthropic(FAIL_TOKEN)
    with pytest.raises(anthropic.APIStatusError) as ei:
        client.messages.create(model="claude-fail", max_tokens=50, messages=USER)
    check_anthropic_502(ei.value)
    with pytest.raises(anthropic.APIStatusError) as ei:
        with client.messages.stream(model="claude-fail", max_tokens=50, messages=USER) as s:
            s.get_final_message()
    check_anthropic_502(ei.value)


# ---- cut mid-stream: the protocol's error event ---------------------------------------------


def test_cut_chat_stream_raises(faults_gw):
    stream = faults_gw.openai(CUT_TOKEN).chat.completions.create(model="gpt-cut", messages=USER, stream=True)
    seen = []
    with pytest.raises(openai.APIError) as ei:
        for chunk in stream:
            if getattr(chunk, "type", None) != "trace" and chunk.choices:
                seen.append(chunk.choices[0].delta.content or "")
    assert not isinstance(ei.value, openai.APIConnectionError), f"want the error event, got {ei.value!r}"
    assert ei.value.body["type"] == "api_error", ei.value.body
    text = "".join(seen)
    assert text and MOCK_PREFIX.startswith(text.strip()), text


def test_cut_chat_stream_helper_raises(faults_gw):
    client = faults_gw.openai(CUT_TOKEN)
    with pytest.raises(openai.APIError) as ei:
        with client.chat.completions.stream(
            model="gpt-cut", messages=USER, extra_headers={"x-routerly-trace": "off"}
        ) as s:
            for _ in s:
                pass
    assert not isinstance(ei.value, openai.APIConnectionError), repr(ei.value)


def test_cut_responses_stream_raises(faults_gw):
    client = faults_gw.openai(CUT_TOKEN)
    with pytest.raises(openai.APIError) as ei:
        with client.responses.stream(model="gpt-cut", input="please fail") as s:
            for _ in s:
                pass
            s.get_final_response()
    assert not isinstance(ei.value, openai.APIConnectionError), repr(ei.value)


def test_cut_messages_stream_raises(faults_gw):
    client = faults_gw.anthropic(CUT_TOKEN)
    got = []
    with pytest.raises(anthropic.APIStatusError) as ei:
        with client.messages.stream(model="claude-cut", max_tokens=50, messages=USER) as s:
            for t in s.text_stream:
                got.append(t)
    assert ei.value.body["type"] == "error"
    assert ei.value.body["error"]["type"] == "api_error", ei.value.body
    assert "".join(got) and MOCK_PREFIX.startswith("".join(got).strip())


def test_cut_message_create_stream_raises(faults_gw):
    events = faults_gw.anthropic(CUT_TOKEN).messages.create(
        model="claude-cut", max_tokens=50, messages=USER, stream=True
    )
    types = []
    with pytest.raises(anthropic.APIStatusError):
        for e in events:
            types.append(e.type)
    assert "message_stop" not in types, types


@pytest.mark.parametrize(
    "path,body,headers",
    [
        ("/v1/chat/completions", {"model": "gpt-cut", "stream": True, "messages": USER}, {"authorization": f"Bearer {CUT_TOKEN}"}),
        ("/v1/responses", {"model": "gpt-cut", "stream": True, "input": "please fail"}, {"authorization": f"Bearer {CUT_TOKEN}"}),
        ("/v1/messages", {"model": "claude-cut", "stream": True, "max_tokens": 50, "messages": USER}, {"x-api-key": CUT_TOKEN}),
    ],
    ids=["chat", "responses", "messages"],
)
def test_cut_stream_wire_ends_with_error_not_terminator(faults_gw, path, body, headers):
    r, text = post_stream(f"{faults_gw.url}{path}", body, headers)
    assert r.status_code == 200
    events = parse(text)
    last = events[-1]
    assert "[DONE]" not in text
    assert not any(e.event in ("message_stop", "response.completed") for e in events)
    if path == "/v1/messages":
        assert last.event == "error"
        assert last.json()["error"]["type"] == "api_error"
    else:
        err = last.json()
        assert "error" in err or err.get("type") in ("error", "response.failed"), last.data
