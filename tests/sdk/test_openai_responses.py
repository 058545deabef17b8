"""The official `openai` SDK against relaybox's /v1/responses, with a Responses channel on the mock."""

from __future__ import annotations

from types import SimpleNamespace

import openai
import pytest

from harness import (
    MOCK_OUTPUT_TOKENS,
    assert_log_row,
    assert_upstream_credentials,
    mock_input_tokens,
    mock_reply_text,
    reply_number,
)

MODEL = "gpt-5-mini"
INSTRUCTIONS = "Answer briefly."
PROMPT = "Say hello to the relay, please."
INPUT_TOKENS = mock_input_tokens(INSTRUCTIONS, PROMPT)
CACHED = 11
STREAM_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture(scope="module")
def lanes(relay):
    return SimpleNamespace(
        main=relay.lane("responses", "responses", name="responses-main"),
        cached=relay.lane("responses", "responses", f"cache_read={CACHED}", name="responses-cached"),
        bad_request=relay.lane("responses", "responses", "status=400", name="responses-400"),
    )


def client(relay, lane) -> openai.OpenAI:
    return openai.OpenAI(api_key=lane.key, base_url=f"{relay.url}/v1", max_retries=0, timeout=30)


def test_create(relay, lanes):
    lane = lanes.main
    mark = relay.logs.mark()
    response = client(relay, lane).responses.create(model=MODEL, instructions=INSTRUCTIONS, input=PROMPT)

    number = reply_number(response.id)
    assert (response.object, response.status, response.model) == ("response", "completed", MODEL)
    assert response.output_text == mock_reply_text(number)
    assert [item.type for item in response.output] == ["message"]
    usage = response.usage
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens, usage.output_tokens, usage.total_tokens) == (
        INPUT_TOKENS,
        0,
        MOCK_OUTPUT_TOKENS,
        INPUT_TOKENS + MOCK_OUTPUT_TOKENS,
    )

    recorded = relay.mock.last_request()
    assert recorded["path"] == "/v1/responses"
    assert (recorded["body"]["instructions"], recorded["body"]["input"]) == (INSTRUCTIONS, PROMPT)
    assert_upstream_credentials(relay, lane, recorded)

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/responses", model=MODEL, stream=False,
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
    )
    assert row["provider"] == "responses"


def test_create_with_cached_tokens(relay, lanes):
    lane = lanes.cached
    mark = relay.logs.mark()
    response = client(relay, lane).responses.create(model=MODEL, instructions=INSTRUCTIONS, input=PROMPT)

    usage = response.usage
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens, usage.output_tokens) == (
        INPUT_TOKENS + CACHED,
        CACHED,
        MOCK_OUTPUT_TOKENS,
    )
    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/responses", model=MODEL, stream=False,
        input_tokens=usage.input_tokens - usage.input_tokens_details.cached_tokens,
        output_tokens=usage.output_tokens,
        cache_read=usage.input_tokens_details.cached_tokens,
    )


@pytest.mark.parametrize("lane_name", ["main", "cached"])
def test_stream(relay, lanes, lane_name):
    lane = getattr(lanes, lane_name)
    cached = CACHED if lane_name == "cached" else 0
    mark = relay.logs.mark()
    events = list(
        client(relay, lane).responses.create(model=MODEL, instructions=INSTRUCTIONS, input=PROMPT, stream=True)
    )

    assert [e.type for e in events] == STREAM_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(STREAM_EVENTS)))
    completed = events[-1].response
    number = reply_number(completed.id)
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == mock_reply_text(number)
    assert completed.status == "completed"
    assert completed.output_text == mock_reply_text(number)
    usage = completed.usage
    assert (usage.input_tokens, usage.input_tokens_details.cached_tokens, usage.output_tokens) == (
        INPUT_TOKENS + cached,
        cached,
        MOCK_OUTPUT_TOKENS,
    )

    recorded = relay.mock.last_request()
    assert recorded["body"]["stream"] is True
    assert_upstream_credentials(relay, lane, recorded)

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/responses", model=MODEL, stream=True,
        input_tokens=usage.input_tokens - usage.input_tokens_details.cached_tokens,
        output_tokens=usage.output_tokens,
        cache_read=usage.input_tokens_details.cached_tokens,
    )
    assert row["first_token_time"]


def test_upstream_400_is_bad_request(relay, lanes):
    lane = lanes.bad_request
    mark = relay.logs.mark()
    with pytest.raises(openai.BadRequestError) as caught:
        client(relay, lane).responses.create(model=MODEL, input=PROMPT)
    assert caught.value.status_code == 400
    assert caught.value.body["message"] == "mock-upstream scenario: invalid request"

    row = relay.logs.row_after(mark, lane)
    assert (row["status"], row["http_status"], row["endpoint"], row["channel_name"], float(row["price"])) == (
        "error",
        400,
        "/v1/responses",
        lane.channel_name,
        0,
    )
