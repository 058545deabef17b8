#!/usr/bin/env python3
"""What one config write costs as the store grows, through the admin API of a release build.

    python3 bench/config_writes.py RELAYBOX_BINARY

Starts relaybox on a fresh data dir, then, in turn with 300, 3,000 and (CONFIG_BENCH_BULK)
100,000 keys in the store: fills the store up to that size with bulk creates (4 keep-alive
connections), then times CONFIG_BENCH_SAMPLES single key creates one after another and reports
their median (after CONFIG_BENCH_SETTLE seconds of quiet, so the background seeding of the
bulk's limit counters is not what is measured). Finally stops relaybox (SIGTERM) and times a start with the full store until
/health answers. Prints one line per figure and the 3,000 / 300 ratio. Standard library only.
"""

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ADMIN_KEY = "bench-admin-key-0123456789abcdef"
SAMPLES = int(os.environ.get("CONFIG_BENCH_SAMPLES", "50"))
BULK = int(os.environ.get("CONFIG_BENCH_BULK", "100000"))
SETTLE = float(os.environ.get("CONFIG_BENCH_SETTLE", "3"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Admin:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def create_key(self, name):
        body = json.dumps({"name": name})
        self.conn.request(
            "POST",
            "/admin/api/keys",
            body=body,
            headers={"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"},
        )
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 201:
            raise RuntimeError(f"create answered {response.status}: {data[:200]!r}")


def start(binary, data_dir, port):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYBOX_")}
    env.update(
        RELAYBOX_DATA_DIR=data_dir,
        RELAYBOX_ADMIN_KEY=ADMIN_KEY,
        RELAYBOX_LOG_LEVEL="warn",
    )
    began = time.monotonic()
    process = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    deadline = began + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"relaybox exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return process, time.monotonic() - began
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError("relaybox did not answer /health")


def fill(port, have, want):
    """Create keys until the store holds `want` (4 clients at once)."""
    todo = want - have
    if todo <= 0:
        return
    per_thread = [todo // 4 + (1 if i < todo % 4 else 0) for i in range(4)]

    def work(index, count):
        admin = Admin(port)
        for n in range(count):
            admin.create_key(f"bulk-{have}-{index}-{n}")

    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(per_thread)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def single_creates(port, label):
    admin = Admin(port)
    times = []
    for n in range(SAMPLES):
        began = time.perf_counter()
        admin.create_key(f"single-{label}-{n}")
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench/config_writes.py RELAYBOX_BINARY")
    binary = os.path.realpath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = os.path.join(tmp, "data")
        port = free_port()
        process, _ = start(binary, data_dir, port)
        keys = 1  # the admin key
        medians = {}
        try:
            for size in [300, 3000, BULK]:
                began = time.monotonic()
                fill(port, keys, size)
                filled = time.monotonic() - began
                keys = max(keys, size)
                # New keys get their limit counters seeded in the background (once each);
                # measure a create on a quiet server, not one still seeding the bulk.
                time.sleep(SETTLE)
                medians[size] = single_creates(port, size)
                keys += SAMPLES
                print(
                    f"{size:>7} keys: single create median {medians[size]:.2f} ms"
                    f" ({SAMPLES} samples; filled in {filled:.1f} s)",
                    flush=True,
                )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        process, started = start(binary, data_dir, port)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        print(f"start with {keys} keys until /health answers: {started:.2f} s")
        print(f"ratio 3000 / 300 keys: {medians[3000] / medians[300]:.2f}")


if __name__ == "__main__":
    main()
