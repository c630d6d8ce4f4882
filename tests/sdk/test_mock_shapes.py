"""The mock provider's tool-call, thinking and error shapes through the official SDKs' own stream
helpers, straight against `switchyard mock-upstream` (no gateway in between).

These are the shapes the translation tests rely on when they drive an SDK through the gateway
to a mock of the other protocol: if the SDK assembles them here, a failure there is the
gateway's. Each tool loop also sends the SDK's own assistant turn back, so the mock's strict
request checks are shown to accept what the SDKs really send.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from conftest import CLIENT_TIMEOUT_S

WEATHER = {
    "type": "object",
    "properties": {"unit": {"type": "string"}, "city": {"type": "string"}},
    "required": ["city"],
}
NO_ARGS = {"type": "object", "properties": {}}
PROMPT = "Weather and time in Paris, in parallel"


@pytest.fixture(scope="module")
def oai(mock_upstream) -> openai.OpenAI:
    return openai.OpenAI(base_url=mock_upstream + "/v1", api_key="sk-test", timeout=CLIENT_TIMEOUT_S, max_retries=0)


@pytest.fixture(scope="module")
def ant(mock_upstream) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=mock_upstream, api_key="sk-ant-test", timeout=CLIENT_TIMEOUT_S, max_retries=0)


def test_chat_tool_loop(oai: openai.OpenAI):
    tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
        {"type": "function", "function": {"name": "get_time", "parameters": NO_ARGS}},
    ]
    messages = [{"role": "user", "content": PROMPT}]
    with oai.chat.completions.stream(model="gpt-4o", messages=messages, tools=tools) as s:
        final = s.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"city": PROMPT}
    assert calls[1].function.arguments == "{}"
    assert all(c.id.startswith("call_") for c in calls)
    whole = oai.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
    assert [c.function.name for c in whole.choices[0].message.tool_calls] == ["get_weather", "get_time"]

    messages.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
                for c in calls
            ],
        }
    )
    messages += [{"role": "tool", "tool_call_id": c.id, "content": f"{c.function.name} result"} for c in calls]
    answer = oai.chat.completions.create(model="gpt-4o", messages=messages, tools=tools)
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content.startswith("Tool said: get_weather result")

    # A tool message answering no call is refused, as OpenAI refuses it.
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(model="gpt-4o", messages=[messages[0], messages[-1]])
    assert "messages[1]" in str(e.value)


def test_messages_thinking_tool_loop(ant: anthropic.Anthropic):
    tools = [
        {"name": "get_weather", "input_schema": WEATHER},
        {"name": "get_time", "input_schema": NO_ARGS},
    ]
    messages = [{"role": "user", "content": PROMPT}]
    thinking = {"type": "enabled", "budget_tokens": 1024}
    with ant.messages.stream(
        model="claude-test", max_tokens=2048, thinking=thinking, messages=messages, tools=tools
    ) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["thinking", "tool_use", "tool_use"]
    assert final.content[0].thinking.startswith("Mock thinking about: Weather")
    assert final.content[0].signature
    uses = final.content[1:]
    assert [u.name for u in uses] == ["get_weather", "get_time"]
    assert uses[0].input == {"city": PROMPT}
    assert uses[1].input == {}
    assert all(u.id.startswith("toolu_") for u in uses)

    messages.append({"role": "assistant", "content": final.content})
    messages.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": u.id, "content": f"{u.name} result"} for u in uses],
        }
    )
    with ant.messages.stream(
        model="claude-test", max_tokens=2048, thinking=thinking, messages=messages, tools=tools
    ) as s:
        text = "".join(s.text_stream)
        answer = s.get_final_message()
    assert answer.stop_reason == "end_turn"
    assert text.startswith("Tool said: get_weather result")

    # A tool_result for an unknown tool_use is refused, as Anthropic refuses it.
    bad = messages[:2] + [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}]
    with pytest.raises(anthropic.BadRequestError) as e:
        ant.messages.create(model="claude-test", max_tokens=2048, messages=bad)
    assert "messages.2.content.0.tool_use_id" in str(e.value)


def test_responses_reasoning_tool_loop(oai: openai.OpenAI):
    tools = [
        {"type": "function", "name": "get_weather", "parameters": WEATHER},
        {"type": "function", "name": "get_time", "parameters": NO_ARGS},
    ]
    reasoning = {"effort": "low", "summary": "auto"}
    with oai.responses.stream(model="o4-mini", input=PROMPT, tools=tools, reasoning=reasoning) as s:
        final = s.get_final_response()
    assert [o.type for o in final.output] == ["reasoning", "function_call", "function_call"]
    assert final.output[0].summary[0].text.startswith("Mock thinking about: Weather")
    calls = final.output[1:]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].arguments) == {"city": PROMPT}
    assert all(c.call_id.startswith("call_") for c in calls)

    items = [{"role": "user", "content": PROMPT}]
    items += [o.model_dump(exclude_none=True) for o in final.output]
    items += [{"type": "function_call_output", "call_id": c.call_id, "output": f"{c.name} result"} for c in calls]
    answer = oai.responses.create(model="o4-mini", input=items, tools=tools)
    assert answer.output_text.startswith("Tool said: get_weather result")


def test_error_hook_mid_stream(oai: openai.OpenAI, ant: anthropic.Anthropic):
    with pytest.raises(anthropic.APIStatusError) as e:
        with ant.messages.stream(
            model="error-claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            for _ in s:
                pass
    assert "overloaded_error" in str(e.value)

    with pytest.raises(openai.APIError) as e:
        for _ in oai.chat.completions.create(
            model="error-gpt", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            pass
    assert "server error" in str(e.value).lower() or "server had an error" in str(e.value)

    events = list(oai.responses.create(model="error-gpt", input="hi", stream=True))
    assert events[-1].type == "response.failed"
    assert events[-1].response.status == "failed"
    assert events[-1].response.error.code == "server_error"

    # Not streaming, the same failure is a status.
    with pytest.raises(anthropic.APIStatusError) as e:
        ant.messages.create(model="error-claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 529
