"""Session fixtures of the SDK end-to-end tests: one mock upstream and one relaybox per run.

- ``mock``  — ``target/debug/mock-upstream --listen 127.0.0.1:0`` (or ``$MOCK_UPSTREAM_BIN``);
- ``relay`` — ``target/debug/relaybox serve --listen 127.0.0.1:0`` (or ``$RELAYBOX_BIN``) on a fresh
  data dir with ``RELAYBOX_ADMIN_KEY``, configured through the admin API with the prices in
  ``harness.PRICES``; stopped with SIGTERM at the end, which must exit 0 within 15 s.

See ``harness.py`` for lanes (a channel plus a key that may use only it) and the log helpers.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from harness import ADMIN_KEY, PRICES, START_TIMEOUT, STOP_TIMEOUT, Mock, Relay, binary_path, clean_env


@pytest.fixture(scope="session")
def mock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mock]:
    binary = binary_path("MOCK_UPSTREAM_BIN", "mock-upstream")
    stderr_path = tmp_path_factory.mktemp("mock-upstream") / "mock-upstream.stderr.log"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [str(binary), "--listen", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=clean_env(),
        )
    first_line: list[str] = []

    def read_stdout() -> None:
        # The readiness line, then keep draining so the mock can never block on a full pipe.
        assert proc.stdout is not None
        first_line.append(proc.stdout.readline())
        for _ in proc.stdout:
            pass

    threading.Thread(target=read_stdout, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while not first_line and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    line = first_line[0] if first_line else ""
    match = re.search(r"listening on (http://\S+)", line)
    if not match:
        proc.kill()
        pytest.exit(
            f"mock-upstream did not start: stdout={line!r} stderr={stderr_path.read_text(errors='replace')!r}",
            returncode=1,
        )
    mock = Mock(proc, match.group(1))
    yield mock
    mock.http.close()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def relay(mock: Mock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    binary = binary_path("RELAYBOX_BIN", "relaybox")
    base = tmp_path_factory.mktemp("relaybox")
    data_dir = base / "data"
    data_dir.mkdir()
    stderr_path = base / "relaybox.stderr.log"
    env = clean_env()
    env["RELAYBOX_ADMIN_KEY"] = ADMIN_KEY
    env["RELAYBOX_LOG_LEVEL"] = "info"
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            cwd=base,
        )

    def log() -> str:
        return stderr_path.read_text(errors="replace")

    url = None
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.exit(f"relaybox exited with {proc.returncode} during start:\n{log()}", returncode=1)
        try:
            control = json.loads((data_dir / "control.json").read_text())
            candidate = control["url"]
            if httpx.get(f"{candidate}/health", timeout=2, trust_env=False).status_code == 200:
                url = candidate
                break
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            pass
        time.sleep(0.05)
    if url is None:
        proc.kill()
        pytest.exit(f"relaybox did not answer /health within {START_TIMEOUT} s:\n{log()}", returncode=1)

    relay = Relay(proc, url.rstrip("/"), data_dir, stderr_path, mock)
    for model, price in PRICES.items():
        relay.admin("POST", "/pricing", {"model": model, **price}, expect=201)
    yield relay

    relay.http.close()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"relaybox did not exit within {STOP_TIMEOUT} s of SIGTERM:\n{relay.stderr_tail()}")
    assert code == 0, f"relaybox exited with {code} after SIGTERM:\n{relay.stderr_tail()}"


# ---- show the relay's log of a failed test ----------------------------------------------------


@pytest.fixture(autouse=True)
def _relay_log_on_failure(request: pytest.FixtureRequest):
    """Remember where the relay's log stood when the test began (see the hook below)."""
    if "relay" in request.fixturenames:
        relay = request.getfixturevalue("relay")
        request.node._relay_log = (relay, relay.stderr_size())  # type: ignore[attr-defined]
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """A failed test's report carries the relay's log lines written during the test."""
    report = yield
    relay_log = getattr(item, "_relay_log", None)
    if report.when == "call" and report.failed and relay_log is not None:
        relay, start = relay_log
        text = relay.stderr_tail(start)
        if text:
            report.sections.append(("relaybox log during this test", text))
    return report
