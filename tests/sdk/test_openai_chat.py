"""The official `openai` SDK against relaybox's /v1/chat/completions and /v1/models, with an
OpenAI-compatible channel on the mock."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import openai
import pytest

from harness import (
    MOCK_OUTPUT_TOKENS,
    PRICES,
    assert_log_row,
    assert_upstream_credentials,
    mock_input_tokens,
    mock_reply_text,
    reply_number,
)

MODEL = "gpt-4o-mini"
SYSTEM = "You are a relay test."
PROMPT = "Say hello to the relay, please."
MESSAGES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
INPUT_TOKENS = mock_input_tokens(SYSTEM, PROMPT)
CACHED = 7
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "verbose": {"type": "boolean"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(scope="module")
def lanes(relay):
    return SimpleNamespace(
        main=relay.lane("chat", "openai", name="chat-main"),
        # prompt_tokens INCLUDES the cached tokens in OpenAI's usage; relaybox logs them apart.
        cached=relay.lane("chat", "openai", f"cache_read={CACHED}", name="chat-cached"),
        bad_request=relay.lane("chat", "openai", "status=400", name="chat-400"),
        limited=relay.lane("chat", "openai", "status=429,retry_after=1,error_code=QUOTA_EXHAUSTED", name="chat-429"),
    )


def client(relay, lane) -> openai.OpenAI:
    return openai.OpenAI(api_key=lane.key, base_url=f"{relay.url}/v1", max_retries=0, timeout=30)


def test_create(relay, lanes):
    lane = lanes.main
    mark = relay.logs.mark()
    completion = client(relay, lane).chat.completions.create(model=MODEL, messages=MESSAGES)

    number = reply_number(completion.id)
    assert (completion.object, completion.model) == ("chat.completion", MODEL)
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert (choice.finish_reason, choice.message.role, choice.message.content) == ("stop", "assistant", mock_reply_text(number))
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (
        INPUT_TOKENS,
        MOCK_OUTPUT_TOKENS,
        INPUT_TOKENS + MOCK_OUTPUT_TOKENS,
    )
    assert usage.prompt_tokens_details.cached_tokens == 0

    recorded = relay.mock.last_request()
    assert recorded["path"] == "/v1/chat/completions"
    assert recorded["body"]["messages"] == MESSAGES
    assert "stream_options" not in recorded["body"]
    assert_upstream_credentials(relay, lane, recorded)

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/chat/completions", model=MODEL, stream=False,
        input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
    )
    assert row["provider"] == "openai"


def test_create_with_cached_tokens(relay, lanes):
    lane = lanes.cached
    mark = relay.logs.mark()
    completion = client(relay, lane).chat.completions.create(model=MODEL, messages=MESSAGES)

    usage = completion.usage
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens, usage.completion_tokens) == (
        INPUT_TOKENS + CACHED,
        CACHED,
        MOCK_OUTPUT_TOKENS,
    )
    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/chat/completions", model=MODEL, stream=False,
        input_tokens=usage.prompt_tokens - usage.prompt_tokens_details.cached_tokens,
        output_tokens=usage.completion_tokens,
        cache_read=usage.prompt_tokens_details.cached_tokens,
    )


def test_stream_without_stream_options_hides_usage_chunk(relay, lanes):
    lane = lanes.main
    mark = relay.logs.mark()
    chunks = list(client(relay, lane).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))

    # role chunk, 3 content chunks, finish chunk; the usage-only chunk (choices == []) the relay
    # asked the upstream for on its own must NOT reach a client that did not ask for it.
    assert len(chunks) == 5, [c.model_dump() for c in chunks]
    assert [c for c in chunks if c.choices == []] == []
    assert all(c.usage is None for c in chunks)
    assert all(c.object == "chat.completion.chunk" and c.model == MODEL for c in chunks)
    number = reply_number(chunks[0].id)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == mock_reply_text(number)
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, None, None, "stop"]

    recorded = relay.mock.last_request()
    assert recorded["body"]["stream"] is True
    assert recorded["body"]["stream_options"] == {"include_usage": True}, "the relay asks for usage itself"
    assert_upstream_credentials(relay, lane, recorded)

    # The client saw no usage; the log has the upstream's (mock rule: text estimate, 10 words).
    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/chat/completions", model=MODEL, stream=True,
        input_tokens=INPUT_TOKENS, output_tokens=MOCK_OUTPUT_TOKENS,
    )
    assert row["first_token_time"]


def test_stream_with_include_usage_gets_usage_chunk(relay, lanes):
    lane = lanes.cached
    mark = relay.logs.mark()
    chunks = list(
        client(relay, lane).chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )

    assert len(chunks) == 6, [c.model_dump() for c in chunks]
    last = chunks[-1]
    assert last.choices == []
    assert all(c.choices != [] and c.usage is None for c in chunks[:-1])
    usage = last.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens, usage.completion_tokens, usage.total_tokens) == (
        INPUT_TOKENS + CACHED,
        CACHED,
        MOCK_OUTPUT_TOKENS,
        INPUT_TOKENS + CACHED + MOCK_OUTPUT_TOKENS,
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert text == mock_reply_text(reply_number(chunks[0].id))
    assert relay.mock.last_request()["body"]["stream_options"] == {"include_usage": True}

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/chat/completions", model=MODEL, stream=True,
        input_tokens=usage.prompt_tokens - usage.prompt_tokens_details.cached_tokens,
        output_tokens=usage.completion_tokens,
        cache_read=usage.prompt_tokens_details.cached_tokens,
    )


def test_tool_call(relay, lanes):
    lane = lanes.main
    mark = relay.logs.mark()
    prompt = "What is the weather in Paris?"
    completion = client(relay, lane).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}], tools=[WEATHER_TOOL]
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert len(calls) == 1
    call = calls[0]
    assert (call.type, call.id, call.function.name) == ("function", f"call_mock{reply_number(completion.id):020d}", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "mock"}
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        mock_input_tokens(prompt),
        math.ceil(len(call.function.arguments) / 4),
    )
    assert relay.mock.last_request()["body"]["tools"] == [WEATHER_TOOL]

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/chat/completions", model=MODEL, stream=False,
        input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
    )


def test_tool_call_streamed(relay, lanes):
    lane = lanes.main
    mark = relay.logs.mark()
    prompt = "What is the weather in Paris?"
    chunks = list(
        client(relay, lane).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], tools=[WEATHER_TOOL], stream=True
        )
    )

    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert deltas[0].tool_calls[0].function.name == "get_weather"
    arguments = "".join(tc.function.arguments or "" for d in deltas for tc in (d.tool_calls or []))
    assert json.loads(arguments) == {"city": "mock"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert all(c.usage is None for c in chunks)

    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint="/v1/chat/completions", model=MODEL, stream=True,
        input_tokens=mock_input_tokens(prompt), output_tokens=math.ceil(len(arguments) / 4),
    )


def test_upstream_400_is_bad_request(relay, lanes):
    lane = lanes.bad_request
    mark = relay.logs.mark()
    with pytest.raises(openai.BadRequestError) as caught:
        client(relay, lane).chat.completions.create(model=MODEL, messages=MESSAGES)

    error = caught.value
    assert error.status_code == 400
    assert error.body["message"] == "mock-upstream scenario: invalid request"
    assert error.body["type"] == "invalid_request_error"
    assert relay.mock.last_request()["path"] == "/s/status=400/v1/chat/completions"

    row = relay.logs.row_after(mark, lane)
    assert (row["status"], row["http_status"], row["channel_name"], row["client_id"], row["model"], float(row["price"])) == (
        "error",
        400,
        lane.channel_name,
        lane.key_id,
        MODEL,
        0,
    )


def test_upstream_429_is_rate_limit(relay, lanes):
    lane = lanes.limited
    mark = relay.logs.mark()
    with pytest.raises(openai.RateLimitError) as caught:
        client(relay, lane).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)

    error = caught.value
    assert error.status_code == 429
    assert error.response.headers.get("retry-after") == "1"
    assert lane.upstream_key not in error.response.text

    row = relay.logs.row_after(mark, lane)
    assert (row["status"], row["http_status"], row["channel_name"], row["stream"]) == ("error", 429, lane.channel_name, 1)


def test_bad_relaybox_key_is_authentication_error(relay, lanes):
    mark = relay.logs.mark()
    upstream_before = relay.mock.total_requests()
    bad = openai.OpenAI(api_key="cr_" + "1" * 64, base_url=f"{relay.url}/v1", max_retries=0, timeout=30)
    with pytest.raises(openai.AuthenticationError) as caught:
        bad.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert caught.value.status_code == 401
    assert caught.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    assert relay.mock.total_requests() == upstream_before
    relay.logs.assert_no_row_after(mark)


def test_models_list(relay, lanes):
    upstream_before = relay.mock.total_requests()
    models = client(relay, lanes.main).models.list()

    ids = [m.id for m in models.data]
    assert set(PRICES) <= set(ids), ids
    assert len(ids) == len(set(ids)), "no duplicates"
    assert all(m.object == "model" for m in models.data)
    assert relay.mock.total_requests() == upstream_before, "the model list is the relay's own"
