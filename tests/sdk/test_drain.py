"""SIGTERM while SDK streams are in flight: they finish whole, then the gateway exits 0.

Uses its own mock-upstream paced at 40 tokens/s (a 16-word reply takes ~0.4 s) and its own
gateway, since this test stops them. The gateway's drain_timeout_ms is 5 s and the clients' read
timeout 5 s: ample for a 0.4 s stream, short enough that a drain that stalls streams fails fast.
"""

from __future__ import annotations

import signal

import openai
import pytest

from conftest import LISTEN_RE, STOP_TIMEOUT_S, TOKEN, Gateway, Server, _gateway_env, expected_reply_start, providers_config


@pytest.fixture
def paced(workdir):
    mock = Server("mock-paced", ["mock-upstream", "--listen", "127.0.0.1:0", "--workers", "1", "--tokens-per-s", "40"], workdir)
    started = [mock]
    try:
        url = mock.wait_for(LISTEN_RE["mock"]).rstrip("/")
        path = workdir / "gateway-drain.toml"
        path.write_text(providers_config(url, "drain_timeout_ms = 5000"))
        gw_server = Server(
            "gateway-drain",
            ["serve", "--config", str(path), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"],
            workdir,
            env=_gateway_env(),
        )
        started.append(gw_server)
        yield Gateway(gw_server)
    finally:
        for s in reversed(started):
            if s.proc.poll() is None:
                s.stop()


def first_content(chunks) -> str:
    for c in chunks:
        if getattr(c, "type", None) != "trace" and c.choices and c.choices[0].delta.content:
            return c.choices[0].delta.content
    raise AssertionError("the stream ended before any content")


def test_sigterm_drains_in_flight_streams(paced: Gateway):
    oai = paced.openai(TOKEN, timeout=5.0)
    ant = paced.anthropic(TOKEN, timeout=5.0)
    chat = iter(oai.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "drain chat"}], stream=True))
    with ant.messages.stream(model="claude-test", max_tokens=100, messages=[{"role": "user", "content": "drain message"}]) as msg:
        # Both streams have started answering before the signal.
        texts = iter(msg.text_stream)
        chat_text = first_content(chat)
        msg_text = next(texts)

        paced.server.proc.send_signal(signal.SIGTERM)

        chat_text += "".join(c.choices[0].delta.content or "" for c in chat if c.choices)
        msg_text += "".join(texts)
        final = msg.get_final_message()

    assert chat_text.startswith(expected_reply_start("drain chat"))
    assert len(chat_text.split()) == 16, "the whole reply, not a cut one"
    assert msg_text == final.content[0].text
    assert msg_text.startswith(expected_reply_start("drain message"))
    assert final.stop_reason == "end_turn"

    assert paced.server.proc.wait(timeout=STOP_TIMEOUT_S) == 0, paced.server.describe()
    assert "drain timeout" not in paced.server.stderr_text()
    with pytest.raises(openai.APIConnectionError):
        paced.openai(TOKEN).models.list()
