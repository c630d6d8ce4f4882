"""Conversations the gateway owns (`/v1/responses` state), through the official openai SDK.

One conversation, each turn routed to a different provider: an OpenAI-protocol provider
without Responses (translated to its chat completions), an Anthropic one (translated to
messages), an OpenAI one serving Responses itself (relayed), and the built-in mock. The
recorder in front of the mock-upstream shows what each provider was sent: the whole earlier
conversation, never the `previous_response_id`. Then `store: false`, GET, input_items, DELETE
and the 404s, in the OpenAI shape; each on the embedded store and on Redis.
"""

import json
import socket
import subprocess
import time

import openai
import pytest

from conftest import TOKEN, _start_gateway


def state_config(upstream_url: str, state: str) -> str:
    return f"""
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
workers = 2

[[providers]]
id = "oai-chat"
kind = "openai"
responses = false
base_url = "{upstream_url}/v1"
api_key_env = "TEST_OPENAI_KEY"

[[providers]]
id = "ant"
kind = "anthropic"
base_url = "{upstream_url}"
api_key_env = "TEST_ANTHROPIC_KEY"

[[providers]]
id = "oai"
kind = "openai"
base_url = "{upstream_url}/v1"
api_key_env = "TEST_OPENAI_KEY"

[[providers]]
id = "mock"
kind = "mock"

[[models]]
id = "gpt-chat"
provider = "oai-chat"
upstream_id = "gpt-upstream-chat"

[[models]]
id = "claude-x"
provider = "ant"
upstream_id = "claude-upstream-x"
max_output_tokens = 1024

[[models]]
id = "gpt-x"
provider = "oai"
upstream_id = "gpt-upstream-x"

[[models]]
id = "mock-m"
provider = "mock"

[[projects]]
slug = "main"
tokens = ["{TOKEN}"]
models = ["gpt-chat", "claude-x", "gpt-x", "mock-m"]

[[projects]]
slug = "elsewhere"
tokens = ["{TOKEN}"]
models = ["gpt-x"]

{state}
"""


@pytest.fixture(scope="module")
def redis_url():
    """A redis-server of its own on a free port (tests/sdk_clients.rs installs it if missing)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        assert proc.poll() is None, "redis-server exited"
        assert time.monotonic() < deadline, "redis-server did not answer PING"
    yield f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module", params=["embedded", "redis"])
def state_gw(request, servers, workdir, recorder):
    """The state config on each store: the embedded default, and Redis."""
    state = ""
    if request.param == "redis":
        state = f'[state]\nbackend = "redis"\nredis_url = "{request.getfixturevalue("redis_url")}"'
    recorder.take()
    name = f"gateway-state-{request.param}"
    return _start_gateway(servers, workdir, name, state_config(recorder.url, state))


def client(gw, project="main") -> openai.OpenAI:
    return gw.openai(prefix=f"/projects/{project}")


def sent_texts(body: bytes) -> str:
    """Everything a provider was sent, as one string to search."""
    return body.decode()


def test_each_turn_on_another_provider_sees_the_whole_conversation(state_gw, recorder):
    c = client(state_gw)
    recorder.take()
    r1 = c.responses.create(model="gpt-chat", input="My name is Ada, remember it.")
    assert r1.status == "completed" and r1.output_text
    (m, path, _, body), = recorder.take()
    assert path == "/v1/chat/completions"

    r2 = c.responses.create(model="claude-x", input="What is my name?", previous_response_id=r1.id)
    (_, path, _, body), = recorder.take()
    assert path == "/v1/messages"
    sent = json.loads(body)
    text = json.dumps(sent["messages"])
    assert "My name is Ada" in text, text
    assert r1.output_text[:40] in text, "turn 1's answer is in turn 2's request"
    assert "What is my name?" in text
    assert "previous_response_id" not in body.decode()

    # Streamed, through the SDK's helper, to the provider that serves Responses itself.
    with c.responses.stream(model="gpt-x", input="Spell it.", previous_response_id=r2.id) as s:
        r3 = s.get_final_response()
    assert r3.status == "completed"
    (_, path, _, body), = recorder.take()
    assert path == "/v1/responses"
    sent = json.loads(body)
    assert "previous_response_id" not in sent
    text = json.dumps(sent["input"])
    for part in ["My name is Ada", "What is my name?", "Spell it.", r2.output_text[:40]]:
        assert part in text, (part, text)

    # The built-in mock answers the fourth turn from the same conversation.
    r4 = c.responses.create(model="mock-m", input="Thanks.", previous_response_id=r3.id)
    assert r4.status == "completed" and r4.output_text
    assert recorder.take() == [], "the mock is in-process"

    # input_items: every earlier item, newest first, then pages.
    items = c.responses.input_items.list(r4.id, order="asc", limit=100)
    texts = json.dumps([i.model_dump() for i in items.data])
    for part in ["My name is Ada", "What is my name?", "Spell it.", "Thanks."]:
        assert part in texts, part
    ids = [i.id for i in items.data]
    assert len(ids) == len(set(ids)) >= 7
    page = c.responses.input_items.list(r4.id, limit=2)
    assert [i.id for i in page.data] == list(reversed(ids))[:2]
    assert page.has_more
    every = [i.id for i in c.responses.input_items.list(r4.id, limit=2)]  # auto-paginates
    assert every == list(reversed(ids))


def test_get_delete_and_not_found(state_gw):
    c = client(state_gw)
    r = c.responses.create(model="gpt-x", input="Keep this one.")
    got = c.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text

    with pytest.raises(openai.NotFoundError) as e:
        client(state_gw, "elsewhere").responses.retrieve(r.id)
    assert e.value.body["type"] == "not_found_error"

    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve("resp_does_not_exist")
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="gpt-x", input="x", previous_response_id="resp_does_not_exist")

    c.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="gpt-x", input="again", previous_response_id=r.id)


def test_store_false_is_not_kept(state_gw):
    c = client(state_gw)
    r = c.responses.create(model="claude-x", input="Forget this.", store=False)
    assert r.status == "completed"
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.create(model="claude-x", input="next", previous_response_id=r.id)
