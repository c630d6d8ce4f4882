"""Every endpoint through the official SDKs, streaming and not, stream helpers included.

Runs twice: against the embedded default gateway (in-process mock provider) and against a
gateway whose OpenAI and Anthropic providers are a separate `switchyard mock-upstream` (real
upstream sockets, provider auth, `upstream_id` spliced into the body).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import anthropic
import openai
import pytest

from conftest import DEV_TOKEN, TOKEN, Gateway, assert_trace_id, expected_reply_start


@dataclass
class Target:
    gw: Gateway
    token: str
    #: Model ids clients name on OpenAI and Anthropic routes.
    oai_model: str
    ant_model: str
    #: The `model` the mock echoes back: the upstream id the gateway spliced in.
    oai_echo: str
    ant_echo: str

    def openai(self, **kw) -> openai.OpenAI:
        return self.gw.openai(self.token, **kw)

    def anthropic(self, **kw) -> anthropic.Anthropic:
        return self.gw.anthropic(self.token, **kw)


@pytest.fixture(scope="module", params=["default", "providers"])
def target(request) -> Target:
    if request.param == "default":
        gw = request.getfixturevalue("default_gw")
        return Target(gw, DEV_TOKEN, "mock-small", "mock-large", "mock-small", "mock-large")
    gw = request.getfixturevalue("providers_gw")
    return Target(gw, TOKEN, "gpt-test", "claude-test", "gpt-upstream", "claude-test")


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def is_trace(chunk) -> bool:
    return getattr(chunk, "type", None) == "trace"


# ---- /v1/chat/completions -------------------------------------------------------------------


def test_chat_completion(target: Target):
    prompt = "hello from the openai sdk"
    raw = target.openai().chat.completions.with_raw_response.create(model=target.oai_model, messages=user(prompt))
    assert raw.status_code == 200
    assert_trace_id(raw.headers)
    c = raw.parse()
    assert c.object == "chat.completion"
    assert c.model == target.oai_echo
    text = c.choices[0].message.content
    assert text.startswith(expected_reply_start(prompt)), text
    assert c.choices[0].message.role == "assistant"
    assert c.choices[0].finish_reason == "stop"
    assert c.usage is not None and c.usage.completion_tokens == len(text.split())


def test_chat_max_tokens_reaches_upstream(target: Target):
    c = target.openai().chat.completions.create(model=target.oai_model, messages=user("be brief"), max_tokens=5)
    assert c.choices[0].finish_reason == "length"
    assert len(c.choices[0].message.content.split()) == 5


def test_chat_stream_iterates_with_trace_chunk(target: Target):
    prompt = "stream me a chat reply"
    client = target.openai()
    whole = client.chat.completions.create(model=target.oai_model, messages=user(prompt)).choices[0].message.content
    chunks = list(client.chat.completions.create(model=target.oai_model, messages=user(prompt), stream=True))
    # The SDK yields the gateway's trace event as a (loosely typed) chunk, first: an empty one.
    assert is_trace(chunks[0]), chunks[0]
    assert chunks[0].model == target.oai_model
    assert chunks[0].object == "chat.completion.chunk"
    assert len(chunks[0].choices) == 1 and chunks[0].choices[0].index == 0
    assert chunks[0].choices[0].delta.content is None and chunks[0].choices[0].delta.role is None
    assert chunks[0].choices[0].finish_reason is None
    rest = chunks[1:]
    assert rest and not any(is_trace(c) for c in rest)
    assert all(c.object == "chat.completion.chunk" and c.model == target.oai_echo for c in rest)
    text = "".join(c.choices[0].delta.content or "" for c in rest if c.choices)
    assert text == whole
    assert text.startswith(expected_reply_start(prompt))
    assert [c.choices[0].finish_reason for c in rest if c.choices][-1] == "stop"


def test_chat_stream_helper_with_default_trace(target: Target):
    prompt = "helper with the trace on"
    with target.openai().chat.completions.stream(model=target.oai_model, messages=user(prompt)) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    text = final.choices[0].message.content
    assert "".join(deltas) == text
    assert text.startswith(expected_reply_start(prompt))
    assert final.choices[0].finish_reason == "stop"


def test_chat_stream_helper_trace_off(target: Target):
    prompt = "helper with the trace off"
    client = target.openai()
    with client.chat.completions.stream(
        model=target.oai_model, messages=user(prompt), extra_headers={"x-routerly-trace": "off"}
    ) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    chunks = [e.chunk for e in events if e.type == "chunk"]
    assert chunks and not any(is_trace(c) for c in chunks)
    assert all(c.model == target.oai_echo for c in chunks)
    text = final.choices[0].message.content
    assert "".join(e.delta for e in events if e.type == "content.delta") == text
    assert text.startswith(expected_reply_start(prompt))
    assert [e for e in events if e.type == "content.done"][0].content == text


def test_chat_stream_async(target: Target):
    prompt = "async chat stream"

    async def run() -> str:
        client = openai.AsyncOpenAI(
            base_url=f"{target.gw.url}/v1", api_key=target.token, max_retries=0, timeout=20
        )
        async with client:
            stream = await client.chat.completions.create(model=target.oai_model, messages=user(prompt), stream=True)
            parts = [c.choices[0].delta.content or "" async for c in stream if not is_trace(c) and c.choices]
        return "".join(parts)

    assert asyncio.run(run()).startswith(expected_reply_start(prompt))


def test_chat_stream_everyday_loop(target: Target):
    """The loop every tutorial writes, with no trace skipping: each chunk has `choices[0].delta`."""
    prompt = "the everyday chat loop"
    client = target.openai()
    whole = client.chat.completions.create(model=target.oai_model, messages=user(prompt)).choices[0].message.content
    text = ""
    for chunk in client.chat.completions.create(model=target.oai_model, messages=user(prompt), stream=True):
        text += chunk.choices[0].delta.content or ""
    assert text == whole
    assert text.startswith(expected_reply_start(prompt))


def test_chat_stream_everyday_loop_async(target: Target):
    prompt = "the everyday async chat loop"

    async def run() -> tuple[str, str]:
        client = openai.AsyncOpenAI(
            base_url=f"{target.gw.url}/v1", api_key=target.token, max_retries=0, timeout=20
        )
        async with client:
            whole = await client.chat.completions.create(model=target.oai_model, messages=user(prompt))
            text = ""
            stream = await client.chat.completions.create(model=target.oai_model, messages=user(prompt), stream=True)
            async for chunk in stream:
                text += chunk.choices[0].delta.content or ""
        return whole.choices[0].message.content, text

    whole, text = asyncio.run(run())
    assert text == whole
    assert text.startswith(expected_reply_start(prompt))


def test_chat_stream_helper_text_equals_non_streamed(target: Target):
    prompt = "helper text equals the whole"
    client = target.openai()
    whole = client.chat.completions.create(model=target.oai_model, messages=user(prompt)).choices[0].message.content
    with client.chat.completions.stream(model=target.oai_model, messages=user(prompt)) as stream:
        text = "".join(e.delta for e in stream if e.type == "content.delta")
        final = stream.get_final_completion()
    assert text == whole
    assert final.choices[0].message.content == whole
    assert final.choices[0].message.role == "assistant"


# ---- /v1/messages ---------------------------------------------------------------------------


def test_message(target: Target):
    prompt = "hello from the anthropic sdk"
    raw = target.anthropic().messages.with_raw_response.create(
        model=target.ant_model, max_tokens=100, messages=user(prompt)
    )
    assert raw.status_code == 200
    assert_trace_id(raw.headers)
    m = raw.parse()
    assert m.type == "message" and m.role == "assistant"
    assert m.model == target.ant_echo
    text = m.content[0].text
    assert text.startswith(expected_reply_start(prompt)), text
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens == len(text.split())


def test_message_bearer_auth(target: Target):
    m = target.gw.anthropic(target.token, bearer=True).messages.create(
        model=target.ant_model, max_tokens=100, messages=user("bearer token")
    )
    assert m.content[0].text.startswith(expected_reply_start("bearer token"))


def test_message_max_tokens_reaches_upstream(target: Target):
    m = target.anthropic().messages.create(model=target.ant_model, max_tokens=5, messages=user("be brief"))
    assert m.stop_reason == "max_tokens"
    assert len(m.content[0].text.split()) == 5


def test_message_stream_helper(target: Target):
    prompt = "stream a message please"
    client = target.anthropic()
    whole = client.messages.create(model=target.ant_model, max_tokens=100, messages=user(prompt)).content[0].text
    with client.messages.stream(model=target.ant_model, max_tokens=100, messages=user(prompt)) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == whole
    assert final.content[0].text == whole
    assert final.model == target.ant_echo
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len(whole.split())


def test_message_stream_raw_events(target: Target):
    """`stream=True`: the SDK skips the gateway's ping carrying the trace; the provider's events follow."""
    events = list(
        target.anthropic().messages.create(
            model=target.ant_model, max_tokens=100, messages=user("raw events"), stream=True
        )
    )
    types = [e.type for e in events]
    assert types[0] == "message_start", types
    assert types[-1] == "message_stop", types
    assert "trace" not in types
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text.startswith(expected_reply_start("raw events"))


def test_message_stream_everyday_loop(target: Target):
    """`stream=True` looped over with no event skipping, sync and async: the text is the whole answer's."""
    prompt = "the everyday message loop"
    client = target.anthropic()
    whole = client.messages.create(model=target.ant_model, max_tokens=100, messages=user(prompt)).content[0].text
    text = ""
    for event in client.messages.create(model=target.ant_model, max_tokens=100, messages=user(prompt), stream=True):
        if event.type == "content_block_delta":
            text += event.delta.text
    assert text == whole

    async def run() -> str:
        aclient = anthropic.AsyncAnthropic(base_url=target.gw.url, api_key=target.token, max_retries=0, timeout=20)
        async with aclient:
            text = ""
            stream = await aclient.messages.create(
                model=target.ant_model, max_tokens=100, messages=user(prompt), stream=True
            )
            async for event in stream:
                if event.type == "content_block_delta":
                    text += event.delta.text
        return text

    assert asyncio.run(run()) == whole


def test_message_stream_async(target: Target):
    prompt = "async message stream"

    async def run():
        client = anthropic.AsyncAnthropic(base_url=target.gw.url, api_key=target.token, max_retries=0, timeout=20)
        async with client:
            async with client.messages.stream(model=target.ant_model, max_tokens=100, messages=user(prompt)) as s:
                text = "".join([t async for t in s.text_stream])
                final = await s.get_final_message()
        return text, final

    text, final = asyncio.run(run())
    assert text == final.content[0].text
    assert text.startswith(expected_reply_start(prompt))


# ---- /v1/messages/count_tokens --------------------------------------------------------------


def test_count_tokens(target: Target):
    client = target.anthropic()
    raw = client.messages.with_raw_response.count_tokens(model=target.ant_model, messages=user("count these words"))
    assert raw.status_code == 200
    assert_trace_id(raw.headers)
    short = raw.parse().input_tokens
    long = client.messages.count_tokens(
        model=target.ant_model, messages=user("count these words " * 50)
    ).input_tokens
    assert isinstance(short, int) and short > 0
    assert long > short


# ---- /v1/responses --------------------------------------------------------------------------


def test_response(target: Target):
    prompt = "hello from the responses api"
    raw = target.openai().responses.with_raw_response.create(model=target.oai_model, input=prompt)
    assert raw.status_code == 200
    assert_trace_id(raw.headers)
    r = raw.parse()
    assert r.object == "response"
    assert r.status == "completed"
    assert r.model == target.oai_echo
    assert r.output_text.startswith(expected_reply_start(prompt)), r.output_text


def test_response_previous_response_id(target: Target):
    client = target.openai()
    first = client.responses.create(model=target.oai_model, input="first turn")
    second = client.responses.create(model=target.oai_model, input="second turn", previous_response_id=first.id)
    assert second.status == "completed"
    assert second.id != first.id
    assert second.output_text.startswith(expected_reply_start("second turn"))


def test_response_stream_helper(target: Target):
    prompt = "stream a response please"
    client = target.openai()
    whole = client.responses.create(model=target.oai_model, input=prompt).output_text
    with client.responses.stream(model=target.oai_model, input=prompt) as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [e.type for e in events]
    assert types[0] == "response.created", types
    assert types[-1] == "response.completed", types
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == whole
    assert final.output_text == whole
    assert final.status == "completed"
    assert final.model == target.oai_echo


def test_response_create_stream(target: Target):
    events = list(target.openai().responses.create(model=target.oai_model, input="raw response events", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed", types
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.startswith(expected_reply_start("raw response events"))


# ---- /v1/models -----------------------------------------------------------------------------


def test_models_list_openai(target: Target):
    raw = target.openai().models.with_raw_response.list()
    assert raw.status_code == 200
    assert_trace_id(raw.headers)
    ids = [m.id for m in raw.parse()]
    assert target.oai_model in ids, ids
    assert len(ids) == len(set(ids))


def test_models_list_anthropic(target: Target):
    ids = [m.id for m in target.anthropic().models.list()]
    assert target.ant_model in ids, ids



# ---- many clients, early closes -------------------------------------------------------------


def test_concurrent_streams_do_not_cross(target: Target):
    """Parallel streams on both protocols each get the reply to their own prompt."""
    from concurrent.futures import ThreadPoolExecutor

    def chat(i: int) -> tuple[str, str]:
        prompt = f"chat number {i}"
        s = target.openai().chat.completions.create(model=target.oai_model, messages=user(prompt), stream=True)
        return prompt, "".join(c.choices[0].delta.content or "" for c in s if not is_trace(c) and c.choices)

    def message(i: int) -> tuple[str, str]:
        prompt = f"message number {i}"
        with target.anthropic().messages.stream(model=target.ant_model, max_tokens=100, messages=user(prompt)) as s:
            return prompt, "".join(s.text_stream)

    def response(i: int) -> tuple[str, str]:
        prompt = f"response number {i}"
        with target.openai().responses.stream(model=target.oai_model, input=prompt) as s:
            return prompt, s.get_final_response().output_text

    jobs = [(f, i) for i in range(8) for f in (chat, message, response)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(lambda job: job[0](job[1]), jobs))
    for prompt, text in results:
        assert text.startswith(expected_reply_start(prompt)), (prompt, text)


def test_closing_a_stream_early_leaves_the_client_usable(target: Target):
    client = target.openai()
    stream = client.chat.completions.create(model=target.oai_model, messages=user("stop early"), stream=True)
    for chunk in stream:
        if not is_trace(chunk) and chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    c = client.chat.completions.create(model=target.oai_model, messages=user("after the early stop"))
    assert c.choices[0].message.content.startswith(expected_reply_start("after the early stop"))

    ant = target.anthropic()
    with ant.messages.stream(model=target.ant_model, max_tokens=100, messages=user("stop early")) as s:
        next(iter(s.text_stream))
    m = ant.messages.create(model=target.ant_model, max_tokens=100, messages=user("after the early stop"))
    assert m.content[0].text.startswith(expected_reply_start("after the early stop"))
