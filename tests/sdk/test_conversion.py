"""Every client protocol on every upstream protocol: the official SDK of the client's protocol
against relaybox, with a channel whose ``serviceType`` is the upstream's protocol, on the mock.

Clients (the pool a key calls): the ``anthropic`` SDK on /v1/messages (pool messages), the
``openai`` SDK's Chat Completions (pool chat) and Responses (pool responses), and the
``google-genai`` SDK on /v1beta/models/… (pool gemini; its client takes a base URL, so no
network is needed). Upstreams (a channel's ``serviceType``): ``claude`` (Anthropic Messages),
``openai`` (OpenAI Chat), ``responses`` (OpenAI Responses), ``gemini``.

Each (client, upstream) pair — 12 conversions and the 4 same-protocol pairs — runs every story:
plain text, streamed text (the SDK's stream helper), a tool round trip (call → result →
answer quoting the result), parallel tool calls streamed and answered, an image (base64; the
answer names its MIME type and byte count), reasoning (plain and streamed: the client sees it
in its protocol's shape), upstream errors (429 → the SDK's rate-limit error, 400 → its
bad-request error) and the log row (tokens and cost exactly as the upstream's usage implies).
Each story also checks what the mock RECEIVED: a body in the upstream's own protocol.

A pair the relay cannot convert yet is skipped, and only while the relay itself says so ("needs
a protocol conversion relaybox does not do yet", the reason routing gives for such a channel);
any other failure fails.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from harness import (
    MOCK_OUTPUT_TOKENS,
    Lane,
    assert_log_row,
    assert_upstream_key,
    estimate_input_tokens,
    requests_of,
)

# The anthropic SDK warns that `thinking.type=enabled` is deprecated for this model; the
# budgeted form is what these stories convert (a budget ↔ an effort), so it stays.
pytestmark = pytest.mark.filterwarnings("ignore:Using Claude with .* is deprecated:UserWarning")

# ---- fixtures of the stories ------------------------------------------------------------------

PROMPT = "Say hello to the relay, please."
IMAGE_PROMPT = "What is in this picture?"
# A 1×1 PNG, 70 bytes.
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
PNG = base64.b64decode(PNG_B64)
PNG_DATA_URL = f"data:image/png;base64,{PNG_B64}"
IMAGE_SEEN = f"I see 1 image (image/png, {len(PNG)} bytes)."

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CLOCK = {
    "name": "get_time",
    "description": "The time in a time zone.",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
}
# The mock fills a call's arguments from the schema's required properties.
ARGUMENTS = {"get_weather": {"city": "mock"}, "get_time": {"zone": "mock"}}
RESULTS = {"get_weather": "18 C and sunny in Paris", "get_time": "half past nine in Paris"}

REPLY = re.compile(r"Hello from the mock upstream\. This is reply number \d+\.")
REASONING = re.compile(r"Let me think about this step by step\. Reply number \d+ needs a friendly answer\.")
SIGNATURE_PREFIX = b"mock-signature-"
CONVERSION_PENDING = "needs a protocol conversion relaybox does not do yet"

# Usage the mock reports when told (directives), for the log-row stories.
USAGE_DIRECTIVES = "input_tokens=11,output_tokens=7,cache_read=5,cache_creation=3"
REASONING_DIRECTIVES = "input_tokens=11,output_tokens=7,reasoning_tokens=20"


@dataclass(frozen=True)
class Tokens:
    """Token figures in relaybox's normalised meaning (input excludes the cache figures; output
    includes reasoning)."""

    input: int
    output: int
    cache_read: int = 0
    cache_creation: int = 0


def upstream_tokens(service_type: str, *, input: int, output: int, cache_read: int = 0, cache_creation: int = 0) -> Tokens:
    """What the upstream's usage implies, given the mock's figures: Anthropic reports the cache
    figures apart; OpenAI Chat, Responses and Gemini report one prompt figure that includes
    them, with only the cache reads named (so cache writes count as plain input there)."""
    if service_type == "claude":
        return Tokens(input, output, cache_read, cache_creation)
    return Tokens(input + cache_creation, output, cache_read, 0)


# ---- what a client saw --------------------------------------------------------------------------


@dataclass
class Call:
    id: str | None
    name: str
    args: dict[str, Any]
    raw: str = ""


@dataclass
class Answer:
    text: str
    pieces: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    reasoning: str | None = None
    # The opaque reasoning signature as bytes (base64-decoded where the protocol sends text).
    signature: bytes | None = None
    # Usage in the client protocol's own terms (see each client's ``usage_for``).
    usage: dict[str, int] = field(default_factory=dict)
    # Reasoning tokens as the client's protocol reports them, where it does.
    reasoning_tokens: int | None = None
    # What a follow-up turn needs (the request and the SDK's answer).
    state: Any = None


def b64_signature(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return text.encode()


# ---- the four clients ---------------------------------------------------------------------------


class AnthropicClient:
    name = "anthropic"
    pool = "messages"
    native = "claude"
    model = "claude-opus-4-6"
    has_signature = True
    reports_reasoning_tokens = False

    def endpoint(self, stream: bool) -> str:
        return "/v1/messages"

    def sdk(self, relay, lane: Lane) -> anthropic.Anthropic:
        return anthropic.Anthropic(api_key=lane.key, base_url=relay.url, max_retries=0, timeout=30)

    def ask(self, relay, lane, *, stream=False, tools=(), image=False, thinking=False) -> Answer:
        content: Any = PROMPT
        if image:
            content = [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                {"type": "text", "text": IMAGE_PROMPT},
            ]
        request: dict[str, Any] = {"model": self.model, "max_tokens": 4096, "messages": [{"role": "user", "content": content}]}
        if tools:
            request["tools"] = [{"name": t["name"], "description": t["description"], "input_schema": t["parameters"]} for t in tools]
        if thinking:
            request["thinking"] = {"type": "enabled", "budget_tokens": 2048}
        client = self.sdk(relay, lane)
        pieces: list[str] = []
        if stream:
            with client.messages.stream(**request) as events:
                pieces = [e.text for e in events if e.type == "text" and e.text]
                message = events.get_final_message()
        else:
            message = client.messages.create(**request)
        return self._answer(request, message, pieces)

    def _answer(self, request, message, pieces) -> Answer:
        thinking = [b for b in message.content if b.type == "thinking"]
        usage = message.usage
        return Answer(
            text="".join(b.text for b in message.content if b.type == "text"),
            pieces=pieces,
            calls=[Call(b.id, b.name, b.input) for b in message.content if b.type == "tool_use"],
            reasoning=thinking[0].thinking if thinking else None,
            signature=b64_signature(thinking[0].signature) if thinking else None,
            usage={
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_read_input_tokens": usage.cache_read_input_tokens or 0,
                "cache_creation_input_tokens": usage.cache_creation_input_tokens or 0,
            },
            state=(request, message),
        )

    def answer_tools(self, relay, lane, first: Answer) -> Answer:
        request, message = first.state
        results = [{"type": "tool_result", "tool_use_id": c.id, "content": RESULTS[c.name]} for c in first.calls]
        follow_up = dict(
            request,
            messages=[*request["messages"], {"role": "assistant", "content": message.content}, {"role": "user", "content": results}],
        )
        return self._answer(follow_up, self.sdk(relay, lane).messages.create(**follow_up), [])

    def expect_error(self, relay, lane, status: int) -> tuple[int, str]:
        error = {429: anthropic.RateLimitError, 400: anthropic.BadRequestError}[status]
        with pytest.raises(error) as caught:
            self.sdk(relay, lane).messages.create(model=self.model, max_tokens=64, messages=[{"role": "user", "content": PROMPT}])
        body = caught.value.body
        assert isinstance(body, dict) and body["type"] == "error", body
        return caught.value.status_code, body["error"]["message"]

    @staticmethod
    def usage_for(tokens: Tokens) -> dict[str, int]:
        return {
            "input_tokens": tokens.input,
            "output_tokens": tokens.output,
            "cache_read_input_tokens": tokens.cache_read,
            "cache_creation_input_tokens": tokens.cache_creation,
        }

    def probe(self, relay, lane) -> httpx.Response:
        return relay.http.post(
            "/v1/messages",
            json={"model": self.model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
            headers={"x-api-key": lane.key, "anthropic-version": "2023-06-01"},
        )


class OpenAIClient:
    """What the two OpenAI clients share."""

    model = "gpt-4o-mini"

    def sdk(self, relay, lane: Lane) -> openai.OpenAI:
        return openai.OpenAI(api_key=lane.key, base_url=f"{relay.url}/v1", max_retries=0, timeout=30)

    def expect_error(self, relay, lane, status: int) -> tuple[int, str]:
        error = {429: openai.RateLimitError, 400: openai.BadRequestError}[status]
        with pytest.raises(error) as caught:
            self._minimal(self.sdk(relay, lane))
        body = caught.value.body
        assert isinstance(body, dict), body
        return caught.value.status_code, body["message"]

    def probe(self, relay, lane) -> httpx.Response:
        return relay.http.post(self.endpoint(False), json=self._probe_body(), headers={"authorization": f"Bearer {lane.key}"})


class ChatClient(OpenAIClient):
    name = "chat"
    pool = "chat"
    native = "openai"
    has_signature = False
    reports_reasoning_tokens = True

    def endpoint(self, stream: bool) -> str:
        return "/v1/chat/completions"

    def ask(self, relay, lane, *, stream=False, tools=(), image=False, thinking=False) -> Answer:
        content: Any = PROMPT
        if image:
            content = [{"type": "image_url", "image_url": {"url": PNG_DATA_URL}}, {"type": "text", "text": IMAGE_PROMPT}]
        request: dict[str, Any] = {"model": self.model, "messages": [{"role": "user", "content": content}]}
        if tools:
            request["tools"] = [{"type": "function", "function": t} for t in tools]
        if thinking:
            request["reasoning_effort"] = "low"
        client = self.sdk(relay, lane)
        pieces: list[str] = []
        if stream:
            with client.chat.completions.stream(**request, stream_options={"include_usage": True}) as events:
                pieces = [e.delta for e in events if e.type == "content.delta" and e.delta]
                completion = events.get_final_completion()
        else:
            completion = client.chat.completions.create(**request)
        return self._answer(request, completion, pieces)

    def _answer(self, request, completion, pieces) -> Answer:
        message = completion.choices[0].message
        usage = completion.usage
        assert usage is not None, completion
        details = usage.completion_tokens_details
        return Answer(
            text=message.content or "",
            pieces=pieces,
            calls=[
                Call(c.id, c.function.name, json.loads(c.function.arguments), c.function.arguments)
                for c in message.tool_calls or []
            ],
            reasoning=(message.model_extra or {}).get("reasoning_content"),
            usage={
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cached_tokens": (usage.prompt_tokens_details.cached_tokens or 0) if usage.prompt_tokens_details else 0,
            },
            reasoning_tokens=details.reasoning_tokens if details else None,
            state=request,
        )

    def answer_tools(self, relay, lane, first: Answer) -> Answer:
        request = first.state
        assistant = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.raw}} for c in first.calls],
        }
        results = [{"role": "tool", "tool_call_id": c.id, "content": RESULTS[c.name]} for c in first.calls]
        follow_up = dict(request, messages=[*request["messages"], assistant, *results])
        return self._answer(follow_up, self.sdk(relay, lane).chat.completions.create(**follow_up), [])

    def _minimal(self, client):
        client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": PROMPT}])

    def _probe_body(self):
        return {"model": self.model, "messages": [{"role": "user", "content": "hi"}]}

    @staticmethod
    def usage_for(tokens: Tokens) -> dict[str, int]:
        return {
            "prompt_tokens": tokens.input + tokens.cache_read + tokens.cache_creation,
            "completion_tokens": tokens.output,
            "cached_tokens": tokens.cache_read,
        }


class ResponsesClient(OpenAIClient):
    name = "responses"
    pool = "responses"
    native = "responses"
    model = "gpt-5-mini"
    has_signature = True
    reports_reasoning_tokens = True

    def endpoint(self, stream: bool) -> str:
        return "/v1/responses"

    def ask(self, relay, lane, *, stream=False, tools=(), image=False, thinking=False) -> Answer:
        content: Any = PROMPT
        if image:
            content = [{"type": "input_image", "image_url": PNG_DATA_URL}, {"type": "input_text", "text": IMAGE_PROMPT}]
        request: dict[str, Any] = {"model": self.model, "input": [{"role": "user", "content": content}]}
        if tools:
            request["tools"] = [{"type": "function", **t} for t in tools]
        if thinking:
            request["reasoning"] = {"effort": "low", "summary": "auto"}
            request["include"] = ["reasoning.encrypted_content"]
        client = self.sdk(relay, lane)
        pieces: list[str] = []
        if stream:
            with client.responses.stream(**request) as events:
                pieces = [e.delta for e in events if e.type == "response.output_text.delta" and e.delta]
                response = events.get_final_response()
        else:
            response = client.responses.create(**request)
        return self._answer(request, response, pieces)

    def _answer(self, request, response, pieces) -> Answer:
        reasoning = [item for item in response.output if item.type == "reasoning"]
        usage = response.usage
        assert usage is not None, response
        return Answer(
            text=response.output_text,
            pieces=pieces,
            calls=[
                Call(item.call_id, item.name, json.loads(item.arguments), item.arguments)
                for item in response.output
                if item.type == "function_call"
            ],
            reasoning="".join(s.text for item in reasoning for s in item.summary) if reasoning else None,
            signature=b64_signature(reasoning[0].encrypted_content) if reasoning else None,
            usage={
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cached_tokens": usage.input_tokens_details.cached_tokens if usage.input_tokens_details else 0,
            },
            reasoning_tokens=usage.output_tokens_details.reasoning_tokens if usage.output_tokens_details else None,
            state=request,
        )

    def answer_tools(self, relay, lane, first: Answer) -> Answer:
        request = first.state
        calls = [{"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.raw} for c in first.calls]
        outputs = [{"type": "function_call_output", "call_id": c.id, "output": RESULTS[c.name]} for c in first.calls]
        follow_up = dict(request, input=[*request["input"], *calls, *outputs])
        return self._answer(follow_up, self.sdk(relay, lane).responses.create(**follow_up), [])

    def _minimal(self, client):
        client.responses.create(model=self.model, input=PROMPT)

    def _probe_body(self):
        return {"model": self.model, "input": "hi"}

    @staticmethod
    def usage_for(tokens: Tokens) -> dict[str, int]:
        return {
            "input_tokens": tokens.input + tokens.cache_read + tokens.cache_creation,
            "output_tokens": tokens.output,
            "cached_tokens": tokens.cache_read,
        }


class GeminiClient:
    name = "gemini"
    pool = "gemini"
    native = "gemini"
    model = "gemini-2.5-flash"
    has_signature = True
    reports_reasoning_tokens = True

    def endpoint(self, stream: bool) -> str:
        return "/v1beta/models:streamGenerateContent" if stream else "/v1beta/models:generateContent"

    def sdk(self, relay, lane: Lane) -> genai.Client:
        options = genai_types.HttpOptions(base_url=relay.url, api_version="v1beta", timeout=30_000)
        return genai.Client(api_key=lane.key, http_options=options)

    def ask(self, relay, lane, *, stream=False, tools=(), image=False, thinking=False) -> Answer:
        parts = [genai_types.Part(text=PROMPT)]
        if image:
            parts = [genai_types.Part.from_bytes(data=PNG, mime_type="image/png"), genai_types.Part(text=IMAGE_PROMPT)]
        contents = [genai_types.Content(role="user", parts=parts)]
        config = genai_types.GenerateContentConfig(
            automatic_function_calling=genai_types.AutomaticFunctionCallingConfig(disable=True),
        )
        if tools:
            config.tools = [
                genai_types.Tool(
                    function_declarations=[
                        genai_types.FunctionDeclaration(name=t["name"], description=t["description"], parameters=t["parameters"])
                        for t in tools
                    ]
                )
            ]
        if thinking:
            config.thinking_config = genai_types.ThinkingConfig(include_thoughts=True, thinking_budget=2048)
        return self._generate(relay, lane, contents, config, stream)

    def _generate(self, relay, lane, contents, config, stream: bool) -> Answer:
        sdk = self.sdk(relay, lane)  # held: the client closes its connections when collected
        if stream:
            chunks = list(sdk.models.generate_content_stream(model=self.model, contents=contents, config=config))
        else:
            chunks = [sdk.models.generate_content(model=self.model, contents=contents, config=config)]
        parts = [p for c in chunks for cand in (c.candidates or [])[:1] if cand.content for p in cand.content.parts or []]
        usage = chunks[-1].usage_metadata
        assert usage is not None, chunks[-1]
        thoughts = [p.text for p in parts if p.thought and p.text is not None]
        texts = [p.text for p in parts if not p.thought and p.text]
        return Answer(
            text="".join(texts),
            pieces=texts if stream else [],
            calls=[
                Call(p.function_call.id, p.function_call.name, dict(p.function_call.args or {}))
                for p in parts
                if p.function_call is not None
            ],
            reasoning="".join(thoughts) if thoughts else None,
            signature=next((p.thought_signature for p in parts if p.thought_signature), None),
            usage={
                "prompt_token_count": usage.prompt_token_count or 0,
                # Gemini reports reasoning apart from the answer: together they are the output.
                "output": (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0),
                "cached_content_token_count": usage.cached_content_token_count or 0,
            },
            reasoning_tokens=usage.thoughts_token_count,
            state=(contents, config, parts),
        )

    def answer_tools(self, relay, lane, first: Answer) -> Answer:
        contents, config, parts = first.state
        model_turn = genai_types.Content(role="model", parts=[p for p in parts if p.function_call is not None or p.thought])
        results = genai_types.Content(
            role="user",
            parts=[
                genai_types.Part(
                    function_response=genai_types.FunctionResponse(id=c.id, name=c.name, response={"result": RESULTS[c.name]})
                )
                for c in first.calls
            ],
        )
        return self._generate(relay, lane, [*contents, model_turn, results], config, stream=False)

    def expect_error(self, relay, lane, status: int) -> tuple[int, str]:
        sdk = self.sdk(relay, lane)
        with pytest.raises(genai_errors.ClientError) as caught:
            sdk.models.generate_content(model=self.model, contents=PROMPT)
        return caught.value.code, caught.value.message or ""

    @staticmethod
    def usage_for(tokens: Tokens) -> dict[str, int]:
        return {
            "prompt_token_count": tokens.input + tokens.cache_read + tokens.cache_creation,
            "output": tokens.output,
            "cached_content_token_count": tokens.cache_read,
        }

    def probe(self, relay, lane) -> httpx.Response:
        return relay.http.post(
            f"/v1beta/models/{self.model}:generateContent",
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
            headers={"x-goog-api-key": lane.key},
        )


CLIENTS = [AnthropicClient(), ChatClient(), ResponsesClient(), GeminiClient()]
SERVICE_TYPES = ["claude", "openai", "responses", "gemini"]
PAIRS = [(client, service_type) for client in CLIENTS for service_type in SERVICE_TYPES]


def pair_id(pair: tuple[Any, str]) -> str:
    client, service_type = pair
    return f"{client.name}-on-{service_type}"


_pending: dict[tuple[str, str], str | None] = {}


@pytest.fixture(params=PAIRS, ids=[pair_id(p) for p in PAIRS])
def pair(request: pytest.FixtureRequest, relay):
    """One (client, upstream serviceType) pair; a conversion the relay says it does not do yet
    is skipped (probed once per pair)."""
    client, service_type = request.param
    if service_type != client.native:
        key = (client.pool, service_type)
        if key not in _pending:
            lane = relay.lane(client.pool, service_type, name=f"probe-{client.name}-{service_type}")
            response = client.probe(relay, lane)
            _pending[key] = response.text if CONVERSION_PENDING in response.text else None
        if _pending[key] is not None:
            pytest.skip(f"{client.name} on a {service_type} upstream: the relay {CONVERSION_PENDING}")
    return client, service_type


# ---- what the upstream received ---------------------------------------------------------------


def api_path(recorded: dict[str, Any]) -> str:
    """The recorded path without the lane's ``/s/{directives}`` prefix."""
    return re.sub(r"^/s/[^/]*", "", recorded["path"])


def assert_upstream_protocol(relay, lane: Lane, client, recorded: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """The upstream got a request in ITS protocol, for the client's model, with the channel's key."""
    body = recorded["body"]
    path = api_path(recorded)
    service_type = lane.service_type
    if service_type == "claude":
        assert path == "/v1/messages", path
        assert isinstance(body.get("messages"), list) and isinstance(body.get("max_tokens"), int), body
        assert body["model"] == client.model
        assert bool(body.get("stream")) is stream, body
    elif service_type == "openai":
        assert path == "/v1/chat/completions", path
        assert isinstance(body.get("messages"), list), body
        assert body["model"] == client.model
        assert bool(body.get("stream")) is stream, body
        if stream:
            assert body.get("stream_options", {}).get("include_usage") is True, "the relay asks a Chat upstream for usage"
    elif service_type == "responses":
        assert path == "/v1/responses", path
        assert "input" in body and "messages" not in body, body
        assert body["model"] == client.model
        assert bool(body.get("stream")) is stream, body
    else:
        method = r"streamGenerateContent\?alt=sse" if stream else "generateContent"
        assert re.fullmatch(rf"/v1(beta)?/models/{re.escape(client.model)}:{method}", path), path
        assert isinstance(body.get("contents"), list) and "model" not in body, body
    assert_upstream_key(relay, lane, recorded)
    return body


def upstream_tool_names(service_type: str, body: dict[str, Any]) -> list[str]:
    """The names of the tools the upstream was offered; their schemas are JSON Schema (lower-case
    type names) where the upstream requires it, as a Gemini client's SDK sends `OBJECT`."""
    tools = body.get("tools") or []
    if service_type == "claude":
        schemas = [t["input_schema"] for t in tools]
        names = [t["name"] for t in tools]
    elif service_type == "openai":
        assert all(t["type"] == "function" for t in tools), tools
        schemas = [t["function"]["parameters"] for t in tools]
        names = [t["function"]["name"] for t in tools]
    elif service_type == "responses":
        functions = [t for t in tools if t["type"] == "function"]
        schemas = [t["parameters"] for t in functions]
        names = [t["name"] for t in functions]
    else:
        return [d["name"] for t in tools for d in t.get("functionDeclarations", t.get("function_declarations", []))]
    for schema in schemas:
        assert schema["type"] == "object" and schema["properties"], schema
        assert schema_types(schema) <= JSON_SCHEMA_TYPES, schema
    return names


JSON_SCHEMA_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}


def schema_types(schema: Any) -> set[str]:
    """Every type name a JSON schema uses (enum and default values aside)."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "type":
                found.update([value] if isinstance(value, str) else [v for v in value if isinstance(v, str)])
            elif key not in ("enum", "const", "default", "examples"):
                found |= schema_types(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= schema_types(item)
    return found


def upstream_tool_results(service_type: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(call id or name, result text as JSON) of each tool result in the request's last turn,
    checked against the calls of the turn before it."""
    if service_type == "claude":
        *_, assistant, last = body["messages"]
        calls = {b["id"] for b in assistant["content"] if b["type"] == "tool_use"}
        results = [b for b in last["content"] if b["type"] == "tool_result"]
        assert {r["tool_use_id"] for r in results} == calls, body["messages"][-2:]
        return [(r["tool_use_id"], json.dumps(r.get("content"))) for r in results]
    if service_type == "openai":
        messages = body["messages"]
        results = []
        while messages and messages[-1]["role"] == "tool":
            results.insert(0, messages.pop())
        calls = {c["id"] for c in messages[-1].get("tool_calls") or []}
        assert {r["tool_call_id"] for r in results} == calls, body["messages"]
        return [(r["tool_call_id"], json.dumps(r["content"])) for r in results]
    if service_type == "responses":
        items = body["input"]
        calls = {i["call_id"] for i in items if i.get("type") == "function_call"}
        results = [i for i in items if i.get("type") == "function_call_output"]
        assert {r["call_id"] for r in results} == calls, items
        return [(r["call_id"], json.dumps(r["output"])) for r in results]
    *_, model_turn, last = body["contents"]
    calls = [p.get("functionCall", p.get("function_call")) for p in model_turn["parts"]]
    responses = [p.get("functionResponse", p.get("function_response")) for p in last["parts"]]
    assert model_turn["role"] == "model" and last["role"] == "user", body["contents"][-2:]
    assert sorted(c["name"] for c in calls if c) == sorted(r["name"] for r in responses if r), body["contents"][-2:]
    return [(r["name"], json.dumps(r["response"])) for r in responses if r]


def upstream_images(service_type: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(MIME type, base64 data) of every inline image the request carries."""
    found: list[tuple[str, str]] = []

    def data_url(url: str) -> None:
        match = re.fullmatch(r"data:([^;,]+);base64,(.*)", url, re.S)
        assert match, f"not a base64 data URL: {url[:60]}"
        found.append((match.group(1), match.group(2)))

    if service_type == "claude":
        for message in body["messages"]:
            for block in message["content"] if isinstance(message["content"], list) else []:
                if block["type"] == "image":
                    source = block["source"]
                    assert source["type"] == "base64", source
                    found.append((source["media_type"], source["data"]))
    elif service_type == "openai":
        for message in body["messages"]:
            for part in message["content"] if isinstance(message.get("content"), list) else []:
                if part["type"] == "image_url":
                    data_url(part["image_url"]["url"])
    elif service_type == "responses":
        for item in body["input"] if isinstance(body["input"], list) else []:
            for part in item.get("content") if isinstance(item.get("content"), list) else []:
                if part["type"] == "input_image":
                    data_url(part["image_url"])
    else:
        for content in body["contents"]:
            for part in content["parts"]:
                inline = part.get("inlineData", part.get("inline_data"))
                if inline:
                    found.append((inline.get("mimeType", inline.get("mime_type")), inline["data"]))
    return found


def upstream_asks_for_reasoning(service_type: str, body: dict[str, Any]) -> bool:
    if service_type == "claude":
        return body.get("thinking", {}).get("type") in ("enabled", "adaptive")
    if service_type == "openai":
        return body.get("reasoning_effort") not in (None, "none")
    if service_type == "responses":
        return (body.get("reasoning") or {}).get("effort") not in (None, "none")
    config = body.get("generationConfig", body.get("generation_config", {}))
    thinking = config.get("thinkingConfig", config.get("thinking_config", {}))
    # Thoughts must be asked for, or the client would see none.
    return thinking.get("includeThoughts", thinking.get("include_thoughts")) is True


def only_request(relay, lane: Lane) -> dict[str, Any]:
    recorded = requests_of(relay.mock, lane)
    assert len(recorded) == 1, [r["path"] for r in recorded]
    return recorded[0]


# ---- the stories -------------------------------------------------------------------------------


def test_text(relay, pair):
    client, service_type = pair
    lane = relay.lane(client.pool, service_type)
    mark = relay.logs.mark()
    answer = client.ask(relay, lane)

    assert REPLY.fullmatch(answer.text), answer.text
    recorded = only_request(relay, lane)
    body = assert_upstream_protocol(relay, lane, client, recorded, stream=False)
    assert PROMPT in json.dumps(body), body
    # The mock counts the text of the body it got; its reply is 10 words.
    tokens = upstream_tokens(service_type, input=estimate_input_tokens(body), output=MOCK_OUTPUT_TOKENS)
    assert answer.usage == client.usage_for(tokens)
    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint=client.endpoint(False), model=client.model, stream=False,
        input_tokens=tokens.input, output_tokens=tokens.output,
    )


def test_stream(relay, pair):
    client, service_type = pair
    lane = relay.lane(client.pool, service_type, "input_tokens=11,output_tokens=7,cache_read=5")
    mark = relay.logs.mark()
    answer = client.ask(relay, lane, stream=True)

    assert REPLY.fullmatch(answer.text), answer.text
    # Event by event: the mock's 3 text deltas arrive as 3 (non-empty) deltas.
    assert len(answer.pieces) == 3 and "".join(answer.pieces) == answer.text, answer.pieces
    assert_upstream_protocol(relay, lane, client, only_request(relay, lane), stream=True)
    tokens = upstream_tokens(service_type, input=11, output=7, cache_read=5)
    assert answer.usage == client.usage_for(tokens)
    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint=client.endpoint(True), model=client.model, stream=True,
        input_tokens=tokens.input, output_tokens=tokens.output, cache_read=tokens.cache_read,
    )
    assert row["first_token_time"]


def test_tool_round_trip(relay, pair):
    client, service_type = pair
    lane = relay.lane(client.pool, service_type)
    first = client.ask(relay, lane, tools=[WEATHER])

    assert [(c.name, c.args) for c in first.calls] == [("get_weather", ARGUMENTS["get_weather"])]
    assert first.text == ""
    final = client.answer_tools(relay, lane, first)

    assert final.calls == []
    assert final.text.startswith("The tool said: ") and RESULTS["get_weather"] in final.text, final.text
    call, answer = requests_of(relay.mock, lane)
    assert upstream_tool_names(service_type, assert_upstream_protocol(relay, lane, client, call, stream=False)) == ["get_weather"]
    results = upstream_tool_results(service_type, assert_upstream_protocol(relay, lane, client, answer, stream=False))
    assert len(results) == 1 and RESULTS["get_weather"] in results[0][1], results


def test_parallel_tools_streamed(relay, pair):
    client, service_type = pair
    lane = relay.lane(client.pool, service_type, "parallel_tools=2")
    first = client.ask(relay, lane, tools=[WEATHER, CLOCK], stream=True)

    assert [(c.name, c.args) for c in first.calls] == [(n, ARGUMENTS[n]) for n in ("get_weather", "get_time")]
    if client.name != "gemini":  # Gemini's calls carry no id of their own
        assert len({c.id for c in first.calls}) == 2 and all(first.calls[i].id for i in range(2))
    final = client.answer_tools(relay, lane, first)

    weather, time = (final.text.find(RESULTS[n]) for n in ("get_weather", "get_time"))
    assert final.text.startswith("The tool said: ") and 0 < weather < time, final.text
    call, answer = requests_of(relay.mock, lane)
    names = upstream_tool_names(service_type, assert_upstream_protocol(relay, lane, client, call, stream=True))
    assert names == ["get_weather", "get_time"]
    results = upstream_tool_results(service_type, assert_upstream_protocol(relay, lane, client, answer, stream=False))
    assert len(results) == 2, results


def test_image(relay, pair):
    client, service_type = pair
    lane = relay.lane(client.pool, service_type)
    answer = client.ask(relay, lane, image=True)

    assert answer.text == IMAGE_SEEN
    body = assert_upstream_protocol(relay, lane, client, only_request(relay, lane), stream=False)
    assert upstream_images(service_type, body) == [("image/png", PNG_B64)]
    assert IMAGE_PROMPT in json.dumps(body)


def _check_reasoning(relay, client, service_type, lane, mark, answer, *, stream: bool) -> None:
    assert answer.reasoning is not None and REASONING.fullmatch(answer.reasoning), answer.reasoning
    assert REPLY.fullmatch(answer.text), answer.text
    if client.has_signature and service_type in ("claude", "responses", "gemini"):
        # Signatures and encrypted reasoning pass through where both sides carry them.
        assert answer.signature is not None and answer.signature.startswith(SIGNATURE_PREFIX), answer.signature
    body = assert_upstream_protocol(relay, lane, client, only_request(relay, lane), stream=stream)
    assert upstream_asks_for_reasoning(service_type, body), body
    # 7 answer tokens and 20 reasoning tokens: every protocol's output figure is 27.
    tokens = upstream_tokens(service_type, input=11, output=27)
    assert answer.usage == client.usage_for(tokens)
    if client.reports_reasoning_tokens and service_type != "claude":  # Anthropic does not count them apart
        assert answer.reasoning_tokens == 20
    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint=client.endpoint(stream), model=client.model, stream=stream,
        input_tokens=tokens.input, output_tokens=tokens.output,
    )


def test_reasoning(relay, pair):
    client, service_type = pair
    lane = relay.lane(client.pool, service_type, REASONING_DIRECTIVES)
    mark = relay.logs.mark()
    answer = client.ask(relay, lane, thinking=True)
    _check_reasoning(relay, client, service_type, lane, mark, answer, stream=False)


def test_reasoning_streamed(relay, pair):
    client, service_type = pair
    lane = relay.lane(client.pool, service_type, REASONING_DIRECTIVES)
    mark = relay.logs.mark()
    answer = client.ask(relay, lane, thinking=True, stream=True)
    _check_reasoning(relay, client, service_type, lane, mark, answer, stream=True)


def test_upstream_429_is_a_rate_limit_error(relay, pair):
    client, service_type = pair
    # QUOTA_EXHAUSTED: the default failover rule suspends the channel at once (a plain 429 is
    # retried first); the key's only channel is then gone → 429 to the client.
    lane = relay.lane(client.pool, service_type, "status=429,retry_after=1,error_code=QUOTA_EXHAUSTED")
    mark = relay.logs.mark()
    status, _message = client.expect_error(relay, lane, 429)

    assert status == 429
    recorded = only_request(relay, lane)
    assert recorded["status"] == 429
    assert_upstream_protocol(relay, lane, client, recorded, stream=False)
    row = relay.logs.row_after(mark, lane)
    assert (row["status"], row["http_status"], row["channel_name"], float(row["price"])) == ("error", 429, lane.channel_name, 0)
    assert "QUOTA_EXHAUSTED" in row["upstream_error"]


def test_upstream_400_is_a_bad_request_error(relay, pair):
    client, service_type = pair
    lane = relay.lane(client.pool, service_type, "status=400")
    mark = relay.logs.mark()
    status, message = client.expect_error(relay, lane, 400)

    assert status == 400
    # The upstream's own explanation reaches the client, in the client's protocol.
    assert "invalid request" in message, message
    recorded = only_request(relay, lane)
    assert recorded["status"] == 400
    assert_upstream_protocol(relay, lane, client, recorded, stream=False)
    row = relay.logs.row_after(mark, lane)
    assert (row["status"], row["http_status"], row["channel_name"], row["model"], float(row["price"])) == (
        "error", 400, lane.channel_name, client.model, 0,
    )


def test_log_row_tokens_and_cost(relay, pair):
    client, service_type = pair
    lane = relay.lane(client.pool, service_type, USAGE_DIRECTIVES)
    mark = relay.logs.mark()
    answer = client.ask(relay, lane)

    assert REPLY.fullmatch(answer.text), answer.text
    tokens = upstream_tokens(service_type, input=11, output=7, cache_read=5, cache_creation=3)
    # The client sees the upstream's usage in its own protocol's terms…
    assert answer.usage == client.usage_for(tokens)
    # …and the row has it exactly, priced with the model's four prices.
    row = relay.logs.row_after(mark, lane)
    assert_log_row(
        row, lane, endpoint=client.endpoint(False), model=client.model, stream=False,
        input_tokens=tokens.input, output_tokens=tokens.output,
        cache_read=tokens.cache_read, cache_creation=tokens.cache_creation,
    )
    assert float(row["price"]) > 0


# ---- the mock's own count endpoint, as the SDK reads it ----------------------------------------


def test_mock_responses_input_tokens_as_the_openai_sdk_reads_it(mock):
    """``POST /v1/responses/input_tokens`` (the count a Responses upstream is asked for)."""
    client = openai.OpenAI(api_key="sk-mock", base_url=f"{mock.url}/v1", max_retries=0, timeout=30)
    counted = client.responses.input_tokens.count(model="gpt-5-mini", input=PROMPT)
    assert (counted.object, counted.input_tokens) == ("response.input_tokens", estimate_input_tokens({"input": PROMPT}))
