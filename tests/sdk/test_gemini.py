"""Gemini clients (raw `httpx`, as the REST API is spoken) against relaybox's /v1beta/models/…,
with a Gemini channel on the mock."""

from __future__ import annotations

import json
from types import SimpleNamespace

import httpx
import pytest

from harness import (
    MOCK_OUTPUT_TOKENS,
    assert_log_row,
    assert_upstream_credentials,
    mock_input_tokens,
    mock_reply_text,
    reply_number,
)

MODEL = "gemini-2.5-flash"
SYSTEM = "You are a relay test."
PROMPT = "Say hello to the relay, please."
BODY = {
    "systemInstruction": {"parts": [{"text": SYSTEM}]},
    "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
}
INPUT_TOKENS = mock_input_tokens(SYSTEM, PROMPT)
CACHED = 9


@pytest.fixture(scope="module")
def lanes(relay):
    return SimpleNamespace(
        main=relay.lane("gemini", "gemini", name="gemini-main"),
        cached=relay.lane("gemini", "gemini", f"cache_read={CACHED}", name="gemini-cached"),
    )


@pytest.fixture(scope="module")
def http(relay):
    with httpx.Client(base_url=relay.url, timeout=30, trust_env=False) as client:
        yield client


def _usage_row_expectation(usage: dict) -> dict:
    cached = usage.get("cachedContentTokenCount", 0)
    return {"input_tokens": usage["promptTokenCount"] - cached, "output_tokens": usage["candidatesTokenCount"], "cache_read": cached}


def test_generate_content_with_header_key(relay, lanes, http):
    lane = lanes.main
    mark = relay.logs.mark()
    response = http.post(f"/v1beta/models/{MODEL}:generateContent", json=BODY, headers={"x-goog-api-key": lane.key})

    assert response.status_code == 200, response.text
    body = response.json()
    number = reply_number(body["responseId"])
    candidate = body["candidates"][0]
    assert candidate["content"] == {"parts": [{"text": mock_reply_text(number)}], "role": "model"}
    assert candidate["finishReason"] == "STOP"
    assert body["modelVersion"] == MODEL
    assert body["usageMetadata"] == {
        "promptTokenCount": INPUT_TOKENS,
        "candidatesTokenCount": MOCK_OUTPUT_TOKENS,
        "totalTokenCount": INPUT_TOKENS + MOCK_OUTPUT_TOKENS,
    }

    recorded = relay.mock.last_request()
    assert recorded["path"] == f"/v1beta/models/{MODEL}:generateContent"
    assert recorded["body"] == BODY
    assert_upstream_credentials(relay, lane, recorded)

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1beta/models:generateContent", model=MODEL, stream=False,
        **_usage_row_expectation(body["usageMetadata"]),
    )
    assert row["provider"] == "gemini"


def test_generate_content_with_query_key_and_cached_tokens(relay, lanes, http):
    lane = lanes.cached
    mark = relay.logs.mark()
    response = http.post(f"/v1beta/models/{MODEL}:generateContent", params={"key": lane.key}, json=BODY)

    assert response.status_code == 200, response.text
    usage = response.json()["usageMetadata"]
    assert usage == {
        "promptTokenCount": INPUT_TOKENS + CACHED,
        "candidatesTokenCount": MOCK_OUTPUT_TOKENS,
        "totalTokenCount": INPUT_TOKENS + CACHED + MOCK_OUTPUT_TOKENS,
        "cachedContentTokenCount": CACHED,
    }

    recorded = relay.mock.last_request()
    # The client's ?key= is its relaybox key: it must not travel upstream.
    assert recorded["path"] == f"/s/cache_read={CACHED}/v1beta/models/{MODEL}:generateContent"
    assert_upstream_credentials(relay, lane, recorded)

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1beta/models:generateContent", model=MODEL, stream=False,
        input_tokens=INPUT_TOKENS, output_tokens=MOCK_OUTPUT_TOKENS, cache_read=CACHED,
    )


def _sse_data(response: httpx.Response) -> list[dict]:
    events = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            events.append(json.loads(line[len("data:"):].strip()))
    return events


@pytest.mark.parametrize("lane_name", ["main", "cached"])
def test_stream_generate_content_sse(relay, lanes, http, lane_name):
    lane = getattr(lanes, lane_name)
    cached = CACHED if lane_name == "cached" else 0
    mark = relay.logs.mark()
    with http.stream(
        "POST",
        f"/v1beta/models/{MODEL}:streamGenerateContent",
        params={"alt": "sse"},
        json=BODY,
        headers={"x-goog-api-key": lane.key},
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _sse_data(response)

    assert len(events) == 3
    number = reply_number(events[0]["responseId"])
    text = "".join(part["text"] for e in events for part in e["candidates"][0]["content"]["parts"])
    assert text == mock_reply_text(number)
    assert [e["candidates"][0].get("finishReason") for e in events] == [None, None, "STOP"]
    final = events[-1]["usageMetadata"]
    expected_final = {
        "promptTokenCount": INPUT_TOKENS + cached,
        "candidatesTokenCount": MOCK_OUTPUT_TOKENS,
        "totalTokenCount": INPUT_TOKENS + cached + MOCK_OUTPUT_TOKENS,
    }
    if cached:
        expected_final["cachedContentTokenCount"] = cached
    assert final == expected_final

    recorded = relay.mock.last_request()
    prefix = f"/s/cache_read={CACHED}" if cached else ""
    assert recorded["path"] == f"{prefix}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    assert_upstream_credentials(relay, lane, recorded)

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1beta/models:streamGenerateContent", model=MODEL, stream=True,
        **_usage_row_expectation(final),
    )
    assert row["first_token_time"]


def test_bad_key_is_401_in_gemini_shape(relay, lanes, http):
    mark = relay.logs.mark()
    upstream_before = relay.mock.total_requests()
    response = http.post(f"/v1beta/models/{MODEL}:generateContent", params={"key": "cr_" + "2" * 64}, json=BODY)

    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (401, "UNAUTHENTICATED")
    assert relay.mock.total_requests() == upstream_before
    relay.logs.assert_no_row_after(mark)
