"""Provider keys never reach a client or a log.

The gateways run with `TEST_OPENAI_KEY` / `TEST_ANTHROPIC_KEY` set to distinctive values and
`SWITCHYARD_LOG=debug`. Every kind of answer (success, stream, client error, upstream failure,
cut stream) is collected raw through the SDKs, and neither key may appear in any status line,
header or body, nor in the gateways' stdout or stderr (checked here, and again for every server
once all have stopped and flushed their logs: `conftest._stop_all`).

The recorder tests sit a recording pass-through between a gateway and the mock-upstream to
check the other side: the provider gets its own key and the spliced `upstream_id`, never a
client token, and the client's body otherwise unchanged.
"""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from conftest import ANTHROPIC_SECRET, CUT_TOKEN, FAIL_TOKEN, OPENAI_SECRET, TOKEN

SECRETS = (OPENAI_SECRET, ANTHROPIC_SECRET)
USER = [{"role": "user", "content": "do not leak"}]


def wire(resp: httpx.Response) -> str:
    """Everything a client sees of a response: status, reason, headers, body."""
    head = f"{resp.status_code} {resp.reason_phrase}\n" + "".join(f"{k}: {v}\n" for k, v in resp.headers.items())
    return head + resp.read().decode(errors="replace")


def sdk_error_wire(call) -> str:
    try:
        call()
    except (openai.APIStatusError, anthropic.APIStatusError) as e:
        return wire(e.response) + repr(e.body)
    except (openai.APIError, anthropic.APIError) as e:
        return repr(e.body) + str(e)
    pytest.fail("the call was expected to fail")


def collect_sdk_wire(providers_gw, faults_gw) -> list[str]:
    seen: list[str] = []
    oai, ant = providers_gw.openai(), providers_gw.anthropic()

    seen.append(wire(oai.chat.completions.with_raw_response.create(model="gpt-test", messages=USER).http_response))
    with oai.chat.completions.with_streaming_response.create(model="gpt-test", messages=USER, stream=True) as r:
        seen.append(wire(r.http_response))
    seen.append(wire(oai.responses.with_raw_response.create(model="gpt-test", input="do not leak").http_response))
    with oai.responses.with_streaming_response.create(model="gpt-test", input="do not leak", stream=True) as r:
        seen.append(wire(r.http_response))
    seen.append(wire(oai.models.with_raw_response.list().http_response))
    seen.append(wire(ant.messages.with_raw_response.create(model="claude-test", max_tokens=50, messages=USER).http_response))
    with ant.messages.with_streaming_response.create(model="claude-test", max_tokens=50, messages=USER, stream=True) as r:
        seen.append(wire(r.http_response))
    seen.append(wire(ant.messages.with_raw_response.count_tokens(model="claude-test", messages=USER).http_response))

    # Client errors.
    seen.append(sdk_error_wire(lambda: providers_gw.openai("sk-lr-bad").chat.completions.create(model="x", messages=USER)))
    seen.append(sdk_error_wire(lambda: providers_gw.anthropic("sk-lr-bad").messages.create(model="x", max_tokens=5, messages=USER)))
    seen.append(sdk_error_wire(lambda: providers_gw.openai(prefix="/projects/locked").models.list()))
    seen.append(sdk_error_wire(lambda: oai.chat.completions.create(model="gpt-test", messages=[])))
    seen.append(sdk_error_wire(lambda: ant.messages.create(model="claude-test", max_tokens=5, messages=[])))

    # Upstream failures: every candidate failed, and streams cut mid-answer.
    foai, fant = faults_gw.openai(FAIL_TOKEN), faults_gw.anthropic(FAIL_TOKEN)
    seen.append(sdk_error_wire(lambda: foai.chat.completions.create(model="gpt-fail", messages=USER)))
    seen.append(sdk_error_wire(lambda: foai.responses.create(model="gpt-fail", input="x")))
    seen.append(sdk_error_wire(lambda: fant.messages.create(model="claude-fail", max_tokens=5, messages=USER)))
    # count_tokens may fail (the provider's count endpoint 500s) or fall back to a local estimate.
    try:
        seen.append(wire(fant.messages.with_raw_response.count_tokens(model="claude-fail", messages=USER).http_response))
    except anthropic.APIStatusError as e:
        seen.append(wire(e.response) + repr(e.body))
    coai, cant = faults_gw.openai(CUT_TOKEN), faults_gw.anthropic(CUT_TOKEN)
    with coai.chat.completions.with_streaming_response.create(model="gpt-cut", messages=USER, stream=True) as r:
        seen.append(wire(r.http_response))
    with coai.responses.with_streaming_response.create(model="gpt-cut", input="x", stream=True) as r:
        seen.append(wire(r.http_response))
    with cant.messages.with_streaming_response.create(model="claude-cut", max_tokens=50, messages=USER, stream=True) as r:
        seen.append(wire(r.http_response))
    return seen


def test_provider_keys_never_reach_clients_or_logs(providers_gw, faults_gw):
    seen = collect_sdk_wire(providers_gw, faults_gw)
    assert len(seen) > 15
    for text in seen:
        for secret in SECRETS:
            assert secret not in text, f"provider key leaked to a client:\n{text[:2000]}"
            # A prefix as long as a typical redaction would show must not appear either.
            assert secret[-16:] not in text, f"tail of a provider key leaked to a client:\n{text[:2000]}"

    for gw in (providers_gw, faults_gw):
        admin = httpx.get(f"{gw.admin_url}/metrics", timeout=20)
        assert admin.status_code == 200
        for secret in SECRETS:
            assert secret[-16:] not in wire(admin)

    for gw in (providers_gw, faults_gw):
        logs = gw.server.stderr_text() + "".join(gw.server.stdout_lines)
        for secret in SECRETS:
            assert secret[-16:] not in logs, f"provider key in {gw.server.name}'s output:\n{logs[-4000:]}"
        # log.rs: "Callers never pass keys or tokens". Client tokens, good or bad, stay out too.
        for token in (TOKEN, FAIL_TOKEN, CUT_TOKEN, "sk-lr-bad"):
            assert token not in logs, f"client token {token} in {gw.server.name}'s output:\n{logs[-4000:]}"


# ---- what the provider receives -------------------------------------------------------------


def _no_client_token(method, path, headers, body):
    blob = "".join(f"{k}: {v}\n" for k, v in headers.items()) + body.decode(errors="replace")
    assert "sk-lr-" not in blob, f"a client token reached the provider on {method} {path}:\n{blob[:2000]}"


def test_upstream_gets_provider_auth_and_spliced_model(recorded_gw, recorder):
    import json

    recorder.take()
    oai = recorded_gw.openai()
    oai.chat.completions.create(model="gpt-test", messages=USER, max_tokens=7, temperature=0.5)
    with oai.chat.completions.stream(model="gpt-test", messages=USER) as s:
        s.get_final_completion()
    oai.responses.create(model="gpt-test", input="do not leak")
    ant = recorded_gw.anthropic()
    ant.messages.create(model="claude-test", max_tokens=9, messages=USER, system="be terse")
    with ant.messages.stream(model="claude-test", max_tokens=9, messages=USER) as s:
        s.get_final_message()
    seen = recorder.take()
    paths = [p.split("?")[0] for _, p, _, _ in seen]
    assert paths[:5] == ["/v1/chat/completions", "/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/messages"], paths

    for method, path, headers, body in seen:
        _no_client_token(method, path, headers, body)
        sent = json.loads(body)
        if path.startswith("/v1/messages"):
            assert headers.get("x-api-key") == ANTHROPIC_SECRET, headers
            assert headers.get("anthropic-version"), headers
            assert "authorization" not in headers, headers
            assert sent["model"] == "claude-test"
        else:
            assert headers.get("authorization") == f"Bearer {OPENAI_SECRET}", headers
            assert "x-api-key" not in headers, headers
            assert sent["model"] == "gpt-upstream", "upstream_id is spliced in"

    chat = json.loads(seen[0][3])
    assert chat == {"model": "gpt-upstream", "messages": USER, "max_tokens": 7, "temperature": 0.5}, chat
    msg = json.loads(seen[3][3])
    assert msg == {"model": "claude-test", "max_tokens": 9, "messages": USER, "system": "be terse"}, msg


def test_upstream_body_otherwise_unchanged(recorded_gw, recorder):
    """Byte for byte from a raw client: only the model value differs."""
    recorder.take()
    client_body = (
        b'{"model":"gpt-test","messages":[{"role":"user","content":"caf\\u00e9 \xe2\x98\x95"}],'
        b'"max_tokens":12,"stop":["\\n\\n"],"user":"u-1","metadata":{"model":"keep-me"}}'
    )
    r = httpx.post(
        f"{recorded_gw.url}/v1/chat/completions",
        content=client_body,
        headers={"authorization": f"Bearer {TOKEN}", "content-type": "application/json"},
        timeout=20,
    )
    assert r.status_code == 200, r.text
    [(_, path, headers, body)] = recorder.take()
    assert path == "/v1/chat/completions"
    _no_client_token("POST", path, headers, body)
    assert body == client_body.replace(b'"model":"gpt-test"', b'"model":"gpt-upstream"'), body
