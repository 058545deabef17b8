"""The relay authenticates clients with relaybox keys and upstreams with the channel's key: a
relaybox key (client or admin) must never reach an upstream, however the client sent it."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from harness import assert_no_relaybox_key, header

PROMPT = "Who am I talking to?"


@pytest.fixture(scope="module")
def lanes(relay):
    return SimpleNamespace(
        messages=relay.lane("messages", "claude", name="cred-claude"),
        chat=relay.lane("chat", "openai", name="cred-chat"),
        responses=relay.lane("responses", "responses", name="cred-responses"),
        gemini=relay.lane("gemini", "gemini", name="cred-gemini"),
    )


@pytest.fixture(scope="module")
def http(relay):
    with httpx.Client(base_url=relay.url, timeout=30, trust_env=False) as client:
        yield client


def both_headers(key: str) -> dict[str, str]:
    """The relaybox key in every header a client might put it in."""
    return {"x-api-key": key, "authorization": f"Bearer {key}", "x-goog-api-key": key}


CALLS = {
    "messages": ("/v1/messages", {"model": "claude-opus-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": PROMPT}]}),
    "chat": ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]}),
    "responses": ("/v1/responses", {"model": "gpt-5-mini", "input": PROMPT}),
    "gemini": ("/v1beta/models/gemini-2.5-flash:generateContent", {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}),
}

# The one credential header each upstream kind gets, and its value for channel key K.
EXPECTED = {
    "messages": ("x-api-key", "{}"),
    "chat": ("authorization", "Bearer {}"),
    "responses": ("authorization", "Bearer {}"),
    "gemini": ("x-goog-api-key", "{}"),
}
CREDENTIAL_HEADERS = {"x-api-key", "authorization", "x-goog-api-key", "proxy-authorization", "cookie"}


@pytest.mark.parametrize("pool", ["messages", "chat", "responses", "gemini"])
def test_upstream_gets_only_the_channel_key(relay, lanes, http, pool):
    lane = getattr(lanes, pool)
    path, body = CALLS[pool]
    params = {"key": lane.key} if pool == "gemini" else None
    headers = {**both_headers(lane.key), "cookie": f"session={lane.key}"}
    response = http.post(path, json=body, headers=headers, params=params)
    assert response.status_code == 200, response.text

    recorded = relay.mock.last_request()
    name, template = EXPECTED[pool]
    credentials = {k.lower(): v for k, v in recorded["headers"] if k.lower() in CREDENTIAL_HEADERS}
    assert credentials == {name: template.format(lane.upstream_key)}, recorded["headers"]
    assert "key=" not in recorded["path"]
    assert_no_relaybox_key(relay, [recorded])


def test_no_request_of_the_session_carried_a_relaybox_key(relay, lanes, http):
    # At least one request of our own, so the scan below is never vacuous.
    path, body = CALLS["chat"]
    assert http.post(path, json=body, headers={"authorization": f"Bearer {lanes.chat.key}"}).status_code == 200
    recorded = relay.mock.requests()
    assert recorded
    assert lanes.chat.key in relay.all_client_keys
    assert_no_relaybox_key(relay, recorded)
    for request in recorded:
        assert header(request, "x-api-key") or header(request, "authorization") or header(request, "x-goog-api-key")
