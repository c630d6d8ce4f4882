"""Project-scoped base URLs and the client-side errors, as each SDK reports them.

Against the providers gateway: token `sk-lr-test` acts for project `default` (gpt-test,
claude-test) and may use `other` (claude-test only); `locked` belongs to another token.
"""

from __future__ import annotations

import anthropic
import openai
import pytest

from conftest import assert_trace_id, expected_reply_start

USER = [{"role": "user", "content": "scoped hello"}]


# ---- /projects/{slug}/v1 --------------------------------------------------------------------


def test_scoped_models_list_openai(providers_gw):
    everything = [m.id for m in providers_gw.openai().models.list()]
    scoped = [m.id for m in providers_gw.openai(prefix="/projects/other").models.list()]
    assert "gpt-test" in everything and "claude-test" in everything, everything
    assert scoped == ["claude-test"], "the slug wins over the token's first project"


def test_scoped_models_list_anthropic(providers_gw):
    scoped = [m.id for m in providers_gw.anthropic(prefix="/projects/other").models.list()]
    assert scoped == ["claude-test"]


def test_scoped_message_and_stream(providers_gw):
    client = providers_gw.anthropic(prefix="/projects/other")
    raw = client.messages.with_raw_response.create(model="claude-test", max_tokens=100, messages=USER)
    assert_trace_id(raw.headers)
    m = raw.parse()
    assert m.model == "claude-test"
    assert m.content[0].text.startswith(expected_reply_start("scoped hello"))
    with client.messages.stream(model="anything", max_tokens=100, messages=USER) as s:
        assert "".join(s.text_stream) == s.get_final_message().content[0].text == m.content[0].text


def test_scoped_count_tokens(providers_gw):
    n = providers_gw.anthropic(prefix="/projects/other").messages.count_tokens(model="claude-test", messages=USER)
    assert n.input_tokens > 0


def test_scoped_default_slug_openai(providers_gw):
    client = providers_gw.openai(prefix="/projects/default")
    c = client.chat.completions.create(model="gpt-test", messages=USER)
    assert c.model == "gpt-upstream"
    r = client.responses.create(model="gpt-test", input="scoped hello")
    assert r.output_text.startswith(expected_reply_start("scoped hello"))


# ---- 403: a slug the token may not use ------------------------------------------------------


def test_forbidden_slug_openai(providers_gw):
    client = providers_gw.openai(prefix="/projects/locked")
    with pytest.raises(openai.PermissionDeniedError) as ei:
        client.chat.completions.create(model="gpt-test", messages=USER)
    assert ei.value.status_code == 403
    assert ei.value.type == "permission_error", ei.value.body
    assert_trace_id(ei.value.response.headers)
    with pytest.raises(openai.PermissionDeniedError):
        client.models.list()
    with pytest.raises(openai.PermissionDeniedError):
        client.responses.create(model="gpt-test", input="x")


def test_forbidden_slug_anthropic(providers_gw):
    client = providers_gw.anthropic(prefix="/projects/locked")
    with pytest.raises(anthropic.PermissionDeniedError) as ei:
        client.messages.create(model="claude-test", max_tokens=10, messages=USER)
    assert ei.value.status_code == 403
    assert ei.value.body["type"] == "error"
    assert ei.value.body["error"]["type"] == "permission_error"
    assert_trace_id(ei.value.response.headers)
    with pytest.raises(anthropic.PermissionDeniedError):
        client.messages.count_tokens(model="claude-test", messages=USER)
    with pytest.raises(anthropic.PermissionDeniedError):
        with client.messages.stream(model="claude-test", max_tokens=10, messages=USER) as s:
            s.get_final_message()


def test_unknown_slug_is_refused(providers_gw):
    with pytest.raises((openai.PermissionDeniedError, openai.NotFoundError)):
        providers_gw.openai(prefix="/projects/no-such-project").chat.completions.create(model="gpt-test", messages=USER)


# ---- 401: bad key ---------------------------------------------------------------------------


def test_bad_key_openai(providers_gw):
    client = providers_gw.openai(token="sk-lr-not-a-token")
    with pytest.raises(openai.AuthenticationError) as ei:
        client.chat.completions.create(model="gpt-test", messages=USER)
    assert ei.value.status_code == 401
    assert ei.value.type == "authentication_error", ei.value.body
    assert_trace_id(ei.value.response.headers)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-test", messages=USER, stream=True)
    with pytest.raises(openai.AuthenticationError):
        client.responses.create(model="gpt-test", input="x")
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


@pytest.mark.parametrize("bearer", [False, True], ids=["x-api-key", "bearer"])
def test_bad_key_anthropic(providers_gw, bearer):
    client = providers_gw.anthropic(token="sk-lr-not-a-token", bearer=bearer)
    with pytest.raises(anthropic.AuthenticationError) as ei:
        client.messages.create(model="claude-test", max_tokens=10, messages=USER)
    assert ei.value.status_code == 401
    assert ei.value.body["type"] == "error"
    assert ei.value.body["error"]["type"] == "authentication_error"
    assert_trace_id(ei.value.response.headers)
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.count_tokens(model="claude-test", messages=USER)
    with pytest.raises(anthropic.AuthenticationError):
        with client.messages.stream(model="claude-test", max_tokens=10, messages=USER) as s:
            s.get_final_message()


# ---- any model name routes by policy --------------------------------------------------------


def test_any_model_name_routes_openai(providers_gw):
    """`cheapest` puts the free Anthropic model first: an OpenAI client reaches it translated,
    and the answer names the gateway's model id."""
    client = providers_gw.openai()
    for name in ("anything", "auto"):
        c = client.chat.completions.create(model=name, messages=USER)
        assert c.model == "claude-test", "the cheapest candidate serves it, translated"
        assert c.choices[0].message.content.startswith(expected_reply_start("scoped hello"))
    r = client.responses.create(model="anything", input="scoped hello")
    assert r.model == "claude-test"
    assert r.output_text.startswith(expected_reply_start("scoped hello"))


def test_any_model_name_routes_anthropic(providers_gw):
    m = providers_gw.anthropic().messages.create(model="anything", max_tokens=100, messages=USER)
    assert m.model == "claude-test"
    assert m.content[0].text.startswith(expected_reply_start("scoped hello"))


# ---- 400: no messages -----------------------------------------------------------------------


def test_no_messages_openai(providers_gw):
    client = providers_gw.openai()
    with pytest.raises(openai.BadRequestError) as ei:
        client.chat.completions.create(model="gpt-test", messages=openai.omit)
    assert ei.value.status_code == 400
    assert ei.value.type == "invalid_request_error", ei.value.body
    assert_trace_id(ei.value.response.headers)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-test", messages=openai.omit, stream=True)


def test_no_messages_anthropic(providers_gw):
    client = providers_gw.anthropic()
    with pytest.raises(anthropic.BadRequestError) as ei:
        client.messages.create(model="claude-test", max_tokens=10, messages=anthropic.omit)
    assert ei.value.status_code == 400
    assert ei.value.body["error"]["type"] == "invalid_request_error"
    assert_trace_id(ei.value.response.headers)
    with pytest.raises(anthropic.BadRequestError):
        client.messages.count_tokens(model="claude-test", messages=anthropic.omit)


def test_empty_messages_is_bad_request(providers_gw):
    """`messages: []` is invalid for both providers: a 400 either way, never a 5xx."""
    with pytest.raises(openai.BadRequestError) as ei:
        providers_gw.openai().chat.completions.create(model="gpt-test", messages=[])
    assert ei.value.type == "invalid_request_error", ei.value.body
    with pytest.raises(anthropic.BadRequestError) as ei2:
        providers_gw.anthropic().messages.create(model="claude-test", max_tokens=10, messages=[])
    assert ei2.value.body["error"]["type"] == "invalid_request_error"


def test_no_input_responses(providers_gw):
    with pytest.raises(openai.BadRequestError) as ei:
        providers_gw.openai().responses.create(model="gpt-test")
    assert ei.value.type == "invalid_request_error"
