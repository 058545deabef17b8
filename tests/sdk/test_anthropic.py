"""The official `anthropic` SDK against relaybox's /v1/messages, with a Claude channel on the mock."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import anthropic
import pytest

from harness import (
    MOCK_OUTPUT_TOKENS,
    assert_costs,
    assert_log_row,
    assert_upstream_credentials,
    mock_input_tokens,
    mock_reply_text,
    reply_number,
)

MODEL = "claude-opus-4-6"
PROMPT = "Say hello to the relay, please."
MESSAGES = [{"role": "user", "content": PROMPT}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "verbose": {"type": "boolean"}},
        "required": ["city"],
    },
}
RAW_TEXT_EVENTS = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
]


@pytest.fixture(scope="module")
def lanes(relay):
    return SimpleNamespace(
        main=relay.lane("messages", "claude", name="claude-main"),
        cached=relay.lane("messages", "claude", "cache_read=7,cache_creation=5", name="claude-cached"),
        bad_request=relay.lane("messages", "claude", "status=400", name="claude-400"),
        # 429 with QUOTA_EXHAUSTED: the default failover rule suspends the channel at once (a plain
        # 429 is retried 3 × 5 s first); the only channel of the key is then gone → 429 to the client.
        limited=relay.lane("messages", "claude", "status=429,retry_after=1,error_code=QUOTA_EXHAUSTED", name="claude-429"),
    )


def client(relay, lane) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=lane.key, base_url=relay.url, max_retries=0, timeout=30)


def test_create(relay, lanes):
    lane = lanes.main
    mark = relay.logs.mark()
    message = client(relay, lane).messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    number = reply_number(message.id)
    assert (message.type, message.role, message.model, message.stop_reason) == ("message", "assistant", MODEL, "end_turn")
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == mock_reply_text(number)
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (
        mock_input_tokens(PROMPT),
        MOCK_OUTPUT_TOKENS,
        0,
        0,
    )

    recorded = relay.mock.last_request()
    assert recorded["path"] == "/v1/messages"
    assert recorded["body"]["model"] == MODEL
    assert recorded["body"]["messages"] == MESSAGES
    assert_upstream_credentials(relay, lane, recorded)

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/messages", model=MODEL, stream=False,
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
    )
    assert row["response_model"] == MODEL
    assert row["provider"] == "claude"


def test_create_with_cache_tokens(relay, lanes):
    lane = lanes.cached
    mark = relay.logs.mark()
    message = client(relay, lane).messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_creation_input_tokens, usage.cache_read_input_tokens) == (
        mock_input_tokens(PROMPT),
        MOCK_OUTPUT_TOKENS,
        5,
        7,
    )
    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/messages", model=MODEL, stream=False,
        input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
        cache_creation=usage.cache_creation_input_tokens, cache_read=usage.cache_read_input_tokens,
    )
    assert float(row["cache_creation_cost"]) > 0 and float(row["cache_read_cost"]) > 0


def test_stream_helper(relay, lanes):
    lane = lanes.main
    mark = relay.logs.mark()
    with client(relay, lane).messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        events = list(stream)
        final = stream.get_final_message()

    raw_types = [e.type for e in events if e.type in set(RAW_TEXT_EVENTS)]
    assert raw_types == RAW_TEXT_EVENTS
    texts = [e.text for e in events if e.type == "text"]
    assert len(texts) == 3
    number = reply_number(final.id)
    assert "".join(texts) == mock_reply_text(number)
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == mock_reply_text(number)
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (mock_input_tokens(PROMPT), MOCK_OUTPUT_TOKENS)

    recorded = relay.mock.last_request()
    assert recorded["body"]["stream"] is True
    assert_upstream_credentials(relay, lane, recorded)

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/messages", model=MODEL, stream=True,
        input_tokens=final.usage.input_tokens, output_tokens=final.usage.output_tokens,
        cache_creation=final.usage.cache_creation_input_tokens or 0,
        cache_read=final.usage.cache_read_input_tokens or 0,
    )
    assert row["first_token_time"], "a stream's first token time is logged"


def test_create_stream_true_with_cache_tokens(relay, lanes):
    lane = lanes.cached
    mark = relay.logs.mark()
    stream = client(relay, lane).messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
    events = list(stream)

    assert [e.type for e in events] == RAW_TEXT_EVENTS
    start, delta = events[0], events[-2]
    number = reply_number(start.message.id)
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert text == mock_reply_text(number)
    assert delta.delta.stop_reason == "end_turn"
    start_usage = start.message.usage
    assert (start_usage.input_tokens, start_usage.cache_creation_input_tokens, start_usage.cache_read_input_tokens) == (
        mock_input_tokens(PROMPT),
        5,
        7,
    )
    assert delta.usage.output_tokens == MOCK_OUTPUT_TOKENS

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/messages", model=MODEL, stream=True,
        input_tokens=start_usage.input_tokens, output_tokens=delta.usage.output_tokens,
        cache_creation=start_usage.cache_creation_input_tokens, cache_read=start_usage.cache_read_input_tokens,
    )


def _tool_output_tokens(arguments: dict) -> int:
    return math.ceil(len(json.dumps(arguments, separators=(",", ":"))) / 4)


def test_tool_use(relay, lanes):
    lane = lanes.main
    mark = relay.logs.mark()
    message = client(relay, lane).messages.create(
        model=MODEL,
        max_tokens=64,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    )

    assert message.stop_reason == "tool_use"
    assert [block.type for block in message.content] == ["tool_use"]
    block = message.content[0]
    assert block.name == "get_weather"
    assert block.input == {"city": "mock"}
    assert block.id == f"toolu_mock{reply_number(message.id):020d}"
    assert message.usage.input_tokens == mock_input_tokens("What is the weather in Paris?")
    assert message.usage.output_tokens == _tool_output_tokens(block.input)
    assert relay.mock.last_request()["body"]["tools"] == [WEATHER_TOOL]

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/messages", model=MODEL, stream=False,
        input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens,
    )


def test_tool_use_streamed(relay, lanes):
    lane = lanes.main
    mark = relay.logs.mark()
    with client(relay, lane).messages.stream(
        model=MODEL,
        max_tokens=64,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    ) as stream:
        final = stream.get_final_message()

    assert final.stop_reason == "tool_use"
    assert [(b.type, b.name, b.input) for b in final.content] == [("tool_use", "get_weather", {"city": "mock"})]
    assert final.usage.output_tokens == _tool_output_tokens({"city": "mock"})

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/messages", model=MODEL, stream=True,
        input_tokens=final.usage.input_tokens, output_tokens=final.usage.output_tokens,
    )


def test_upstream_400_is_bad_request(relay, lanes):
    lane = lanes.bad_request
    mark = relay.logs.mark()
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(relay, lane).messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    error = caught.value
    assert error.status_code == 400
    # The upstream's own answer, passed through as it is.
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "invalid_request_error"
    assert error.body["error"]["message"] == "mock-upstream scenario: invalid request"
    recorded = relay.mock.last_request()
    assert recorded["path"] == "/s/status=400/v1/messages"
    assert recorded["status"] == 400
    assert_upstream_credentials(relay, lane, recorded)

    row = relay.logs.row_after(mark, lane)
    assert (row["status"], row["http_status"], row["channel_name"], row["client_id"], row["model"]) == (
        "error",
        400,
        lane.channel_name,
        lane.key_id,
        MODEL,
    )
    assert "invalid request" in row["upstream_error"]
    assert (row["input_tokens"], row["output_tokens"], float(row["price"])) == (0, 0, 0)


def test_upstream_429_is_rate_limit(relay, lanes):
    lane = lanes.limited
    mark = relay.logs.mark()
    with pytest.raises(anthropic.RateLimitError) as caught:
        client(relay, lane).messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    error = caught.value
    assert error.status_code == 429
    assert error.body["type"] == "error"
    assert error.body["error"]["type"] == "rate_limit_error"
    assert error.response.headers.get("retry-after") == "1"
    assert lane.upstream_key not in error.response.text

    row = relay.logs.row_after(mark, lane)
    assert (row["status"], row["http_status"], row["channel_name"], row["client_id"]) == (
        "error",
        429,
        lane.channel_name,
        lane.key_id,
    )
    assert "QUOTA_EXHAUSTED" in row["upstream_error"]
    assert_costs(row, MODEL)
    assert float(row["price"]) == 0


def test_bad_relaybox_key_is_authentication_error(relay, lanes):
    mark = relay.logs.mark()
    upstream_before = relay.mock.total_requests()
    bad = anthropic.Anthropic(api_key="cr_" + "0" * 64, base_url=relay.url, max_retries=0, timeout=30)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)

    assert caught.value.status_code == 401
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "authentication_error"
    assert relay.mock.total_requests() == upstream_before, "a refused request must not reach the upstream"
    relay.logs.assert_no_row_after(mark)


def test_count_tokens(relay, lanes):
    lane = lanes.main
    mark = relay.logs.mark()
    counted = client(relay, lane).messages.count_tokens(model=MODEL, messages=MESSAGES)

    assert counted.input_tokens == mock_input_tokens(PROMPT)
    recorded = relay.mock.last_request()
    assert recorded["path"] == "/v1/messages/count_tokens"
    assert recorded["body"] == {"model": MODEL, "messages": MESSAGES}
    assert_upstream_credentials(relay, lane, recorded)

    # Counting tokens is not a generation: logged, but with no tokens used and nothing charged.
    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/messages/count_tokens", model=MODEL, stream=False,
        input_tokens=0, output_tokens=0,
    )
