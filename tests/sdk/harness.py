"""Helpers of the SDK end-to-end tests: the running mock upstream and relaybox (started by the
session fixtures in ``conftest.py``), the request log, and the shared assertions.

Tests never share a channel: a module asks ``relay.lane(...)`` for a channel of one pool pointing
at the mock (optionally with a scenario such as ``status=400``) plus a client key whose
allowlist admits only that channel. So what one test does (a failing channel, a suspended
channel, round-robin state) cannot change what another sees, in any order.

Every relayed request writes one row into ``<data dir>/logs.sqlite``; ``relay.logs`` finds the
row of a call (``mark()`` before, ``row_after(mark, lane)`` after).
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

# Loopback only; make sure no proxy setting of the machine gets in the way.
for _name in ("NO_PROXY", "no_proxy"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name, ""), "127.0.0.1", "localhost"]))

ADMIN_KEY = "sdk-admin-" + secrets.token_hex(20)  # 50 characters

# Model → price per million tokens (USD). Each model has all four prices, all different, so a
# cost computed with the wrong price (or the wrong token kind) cannot come out right by chance.
PRICES: dict[str, dict[str, float]] = {
    "claude-opus-4-6": {"inputPrice": 3.0, "outputPrice": 15.0, "cacheCreationPrice": 3.75, "cacheReadPrice": 0.3},
    "gpt-4o-mini": {"inputPrice": 0.15, "outputPrice": 0.6, "cacheCreationPrice": 0.2, "cacheReadPrice": 0.075},
    "gpt-5-mini": {"inputPrice": 0.25, "outputPrice": 2.0, "cacheCreationPrice": 0.3, "cacheReadPrice": 0.025},
    "gemini-2.5-flash": {"inputPrice": 0.3, "outputPrice": 2.5, "cacheCreationPrice": 0.4, "cacheReadPrice": 0.03},
}

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
LOG_ROW_TIMEOUT = 3.0


def binary_path(env_name: str, name: str) -> Path:
    path = Path(os.environ.get(env_name) or ROOT / "target" / "debug" / name)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.exit(
            f"{name} binary not found at {path}: run `cargo build --workspace --bins` first "
            f"(or set {env_name})",
            returncode=1,
        )
    return path


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("RELAYBOX_")}


# ---- mock upstream ----------------------------------------------------------------------------


class Mock:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10, trust_env=False)

    def scenario_url(self, directives: str) -> str:
        return f"{self.url}/s/{directives}"

    def requests(self) -> list[dict[str, Any]]:
        """Recorded requests, oldest first."""
        response = self.http.get("/_mock/requests")
        response.raise_for_status()
        return response.json()

    def last_request(self) -> dict[str, Any]:
        recorded = self.requests()
        assert recorded, "the mock upstream received no request"
        return recorded[-1]

    def total_requests(self) -> int:
        return int(self.http.get("/_mock/stats").json()["total_requests"])


def header(recorded: dict[str, Any], name: str) -> str | None:
    """First value of a header of a recorded mock request (names are lower case)."""
    for key, value in recorded["headers"]:
        if key.lower() == name.lower():
            return value
    return None


# ---- relaybox ---------------------------------------------------------------------------------


@dataclass
class Lane:
    """A channel of one pool plus a client key that may use only that channel."""

    pool: str
    channel_id: str
    channel_name: str
    upstream_key: str
    base_url: str
    key_id: str
    key: str
    # The channel's serviceType: which protocol its upstream speaks (the pool's own one, or
    # another one through a conversion).
    service_type: str = ""


class Logs:
    """Read-only access to ``logs.sqlite`` (group-committed by the relay within ~100 ms)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        if not self.path.exists():
            return []
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            conn.row_factory = sqlite3.Row
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def mark(self) -> int:
        """The newest row's seq now; rows written later have a larger seq."""
        rows = self._query("SELECT COALESCE(MAX(seq), 0) AS m FROM request_log")
        return int(rows[0]["m"]) if rows else 0

    def rows_after(self, mark: int, client_id: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT * FROM request_log WHERE seq > ? AND client_id = ? ORDER BY seq", (mark, client_id)
        )
        return [dict(r) for r in rows]

    def row_after(self, mark: int, lane: Lane, timeout: float = LOG_ROW_TIMEOUT) -> dict[str, Any]:
        """The single row the lane's key produced after ``mark`` (waits for the writer)."""
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = self.rows_after(mark, lane.key_id)
            if rows:
                break
            time.sleep(0.02)
        assert rows, f"no request_log row for key {lane.key_id} within {timeout} s"
        # A second row for the same call would be a bug too: give the writer one more batch.
        time.sleep(0.15)
        rows = self.rows_after(mark, lane.key_id)
        assert len(rows) == 1, f"expected exactly one request_log row, got {len(rows)}: {rows}"
        return rows[0]

    def assert_no_row_after(self, mark: int, wait: float = 0.3) -> None:
        """No request was logged after ``mark`` (waits a few writer batches first)."""
        time.sleep(wait)
        rows = self._query("SELECT * FROM request_log WHERE seq > ?", (mark,))
        assert [dict(r) for r in rows] == [], "a request refused at authentication must not be logged"


class Relay:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, data_dir: Path, stderr_path: Path, mock: Mock):
        self.proc = proc
        self.url = url
        self.data_dir = data_dir
        self.stderr_path = stderr_path
        self.mock = mock
        self.logs = Logs(data_dir / "logs.sqlite")
        self.http = httpx.Client(base_url=url, timeout=30, trust_env=False)
        self.all_client_keys: list[str] = []
        self._counter = 0

    # -- admin API --

    def admin(self, method: str, path: str, body: Any = None, expect: int | None = None) -> Any:
        response = self.http.request(
            method,
            f"/admin/api{path}",
            json=body,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        if expect is not None:
            assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def create_key(self, name: str, allow: dict[str, Any] | None = None) -> tuple[str, str]:
        body: dict[str, Any] = {"name": name}
        if allow:
            body["allow"] = allow
        created = self.admin("POST", "/keys", body, expect=201)
        plaintext = created["plaintext"]
        self.all_client_keys.append(plaintext)
        return created["key"]["id"], plaintext

    def lane(self, pool: str, service_type: str, directives: str | None = None, name: str | None = None) -> Lane:
        """A new channel in ``pool`` pointing at the mock (through ``/s/{directives}`` when
        given), and a key whose allowlist admits only that channel."""
        self._counter += 1
        name = name or f"{pool}-{self._counter}"
        upstream_key = f"upstream-{name}-{secrets.token_hex(8)}"
        base_url = self.mock.scenario_url(directives) if directives else self.mock.url
        channel = self.admin(
            "POST",
            "/channels",
            {"pool": pool, "name": name, "serviceType": service_type, "baseUrl": base_url, "apiKeys": [upstream_key]},
            expect=201,
        )
        allow_field = {"messages": "channelsMessages", "chat": "channelsChat", "responses": "channelsResponses", "gemini": "channelsGemini"}[pool]
        key_id, key = self.create_key(f"sdk-{name}", {allow_field: [channel["id"]]})
        return Lane(pool, channel["id"], name, upstream_key, base_url, key_id, key, service_type)

    def stderr_tail(self, start: int = 0, lines: int = 60) -> str:
        try:
            data = self.stderr_path.read_bytes()[start:]
        except OSError:
            return ""
        text = re.sub(r"\x1b\[[0-9;]*m", "", data.decode("utf-8", "replace"))
        return "\n".join(text.splitlines()[-lines:])

    def stderr_size(self) -> int:
        try:
            return self.stderr_path.stat().st_size
        except OSError:
            return 0


# ---- shared assertions ------------------------------------------------------------------------


def mock_input_tokens(*texts: str) -> int:
    """The mock's input estimate: ceil(UTF-8 bytes of the counted text / 4), at least 1."""
    total = sum(len(t.encode("utf-8")) for t in texts)
    return max(1, math.ceil(total / 4))


def mock_reply_text(number: int) -> str:
    return f"Hello from the mock upstream. This is reply number {number}."


def reply_number(response_id: str) -> int:
    """The mock's ids end in the 20-digit reply number (``msg_mock000…0042``)."""
    match = re.search(r"mock(\d{20})$", response_id)
    assert match, f"not a mock-upstream id: {response_id!r}"
    return int(match.group(1))


MOCK_OUTPUT_TOKENS = 10  # "Hello from the mock upstream. This is reply number K." is 10 words


def assert_log_row(
    row: dict[str, Any],
    lane: Lane,
    *,
    endpoint: str,
    model: str,
    stream: bool,
    input_tokens: int,
    output_tokens: int,
    cache_creation: int = 0,
    cache_read: int = 0,
    status: str = "success",
    http_status: int = 200,
) -> None:
    """A request_log row: who, where, how, and the exact tokens and costs."""
    facts = {
        "status": row["status"],
        "http_status": row["http_status"],
        "stream": row["stream"],
        "endpoint": row["endpoint"],
        "model": row["model"],
        "channel_id": row["channel_id"],
        "channel_name": row["channel_name"],
        "client_id": row["client_id"],
        "input_tokens": row["input_tokens"],
        "output_tokens": row["output_tokens"],
        "cache_creation_input_tokens": row["cache_creation_input_tokens"],
        "cache_read_input_tokens": row["cache_read_input_tokens"],
        "total_tokens": row["total_tokens"],
    }
    assert facts == {
        "status": status,
        "http_status": http_status,
        "stream": 1 if stream else 0,
        "endpoint": endpoint,
        "model": model,
        "channel_id": lane.channel_id,
        "channel_name": lane.channel_name,
        "client_id": lane.key_id,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "total_tokens": input_tokens + output_tokens + cache_creation + cache_read,
    }, f"log row: {row}"
    assert_costs(row, model)


def assert_costs(row: dict[str, Any], model: str) -> None:
    price = PRICES[model]
    expected = {
        "input_cost": row["input_tokens"] * price["inputPrice"] / 1e6,
        "output_cost": row["output_tokens"] * price["outputPrice"] / 1e6,
        "cache_creation_cost": row["cache_creation_input_tokens"] * price["cacheCreationPrice"] / 1e6,
        "cache_read_cost": row["cache_read_input_tokens"] * price["cacheReadPrice"] / 1e6,
    }
    expected["price"] = sum(expected.values())
    for column, value in expected.items():
        # Costs are decimal strings rounded to nano-dollars.
        assert math.isclose(float(row[column]), value, rel_tol=1e-9, abs_tol=1e-9), (
            f"{column}: expected {value!r}, got {row[column]!r} (row {row})"
        )


def assert_upstream_credentials(relay: Relay, lane: Lane, recorded: dict[str, Any]) -> None:
    """The upstream saw the channel's key in the protocol's header, and no relaybox key anywhere."""
    expected = {
        "messages": ("x-api-key", lane.upstream_key),
        "chat": ("authorization", f"Bearer {lane.upstream_key}"),
        "responses": ("authorization", f"Bearer {lane.upstream_key}"),
        "gemini": ("x-goog-api-key", lane.upstream_key),
    }[lane.pool]
    assert header(recorded, expected[0]) == expected[1], f"upstream headers: {recorded['headers']}"
    assert_no_relaybox_key(relay, [recorded])


# The header each upstream protocol (a channel's serviceType) carries the channel's key in.
UPSTREAM_KEY_HEADER: dict[str, tuple[str, str]] = {
    "claude": ("x-api-key", "{key}"),
    "openai": ("authorization", "Bearer {key}"),
    "responses": ("authorization", "Bearer {key}"),
    "gemini": ("x-goog-api-key", "{key}"),
}


def assert_upstream_key(relay: Relay, lane: Lane, recorded: dict[str, Any]) -> None:
    """Like ``assert_upstream_credentials``, by the lane's serviceType (the upstream's protocol,
    which a converted channel does not share with its pool)."""
    name, template = UPSTREAM_KEY_HEADER[lane.service_type]
    assert header(recorded, name) == template.format(key=lane.upstream_key), f"upstream headers: {recorded['headers']}"
    assert_no_relaybox_key(relay, [recorded])


def requests_of(mock: Mock, lane: Lane) -> list[dict[str, Any]]:
    """The requests the mock recorded for ``lane`` (told apart by the lane's own upstream key),
    oldest first."""
    return [r for r in mock.requests() if any(lane.upstream_key in value for _, value in r["headers"])]


def estimate_input_tokens(body: Any) -> int:
    """The mock upstream's input estimate of a request body (``estimate_input_tokens`` in
    tools/mock-upstream): ceil(UTF-8 bytes / 4), at least 1, of the text under the prompt
    fields — the strings that are such a field, or the value of a ``text``/``content`` key."""
    roots = ("system", "systemInstruction", "system_instruction", "instructions", "messages", "input", "contents")
    if isinstance(body, dict) and isinstance(body.get("generateContentRequest"), dict):
        body = body["generateContentRequest"]

    def walk(value: Any, counts: bool) -> int:
        if isinstance(value, str):
            return len(value.encode("utf-8")) if counts else 0
        if isinstance(value, list):
            return sum(walk(v, counts) for v in value)
        if isinstance(value, dict):
            return sum(walk(v, k in ("text", "content")) for k, v in value.items())
        return 0

    total = sum(walk(body[root], True) for root in roots if isinstance(body, dict) and root in body)
    return max(1, math.ceil(total / 4))


def assert_no_relaybox_key(relay: Relay, recorded: list[dict[str, Any]]) -> None:
    secrets_ = [ADMIN_KEY, *relay.all_client_keys]
    for request in recorded:
        text = json.dumps([request["path"], request["headers"], request["body"]])
        for secret in secrets_:
            assert secret not in text, f"a relaybox key reached the upstream: {request['path']} {request['headers']}"


