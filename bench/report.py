#!/usr/bin/env python3
"""Render the results of one bench/run.sh run as a Markdown report.

Usage: report.py WORK_DIR   (the run's scratch dir: runs.txt, wrk-*.txt, meta.env, rows.json)

wrk output is read from the WRK_RESULT line that bench/*.lua print in done() (exact
microseconds); when that line is missing, the human-readable output is parsed instead
(latencies there come in us / ms / s).
"""

import json
import re
import statistics
import sys
from pathlib import Path

TARGETS = [("direct", "direct → mock"), ("proxy", "pass-through proxy → mock"), ("relaybox", "relaybox → mock")]
MODES = [
    ("messages", "/v1/messages"),
    ("messages-stream", "/v1/messages stream"),
    ("chat", "/v1/chat/completions"),
]
TARGET_THROUGHPUT_RATIO = 0.75
TARGET_ADDED_P50_US = 150
TARGET_ADDED_P99_US = 400
TARGET_IDLE_MB = 30
TARGET_LOAD_MB = 80
TARGET_WRITER_ROWS = 100_000
# Above this share of CPU in use just before the load (our servers idle), the report warns.
BUSY_BEFORE_LOAD_PCT = 20

UNIT_US = {"us": 1.0, "ms": 1_000.0, "s": 1_000_000.0, "m": 60_000_000.0, "h": 3_600_000_000.0}


def parse_wrk(text):
    """One wrk run → dict with requests, rps, p50_us, p99_us, non2xx, socket_errors."""
    result = {}
    match = re.search(r"^WRK_RESULT (.*)$", text, re.M)
    if match:
        for pair in match.group(1).split():
            key, _, value = pair.partition("=")
            result[key] = float(value)
        result["rps"] = result["requests"] / (result["duration_us"] / 1e6) if result["duration_us"] else 0.0
    else:  # fall back to the text wrk prints
        match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text)
        if match:
            result["requests"] = float(match.group(1))
            result["duration_us"] = float(match.group(2)) * UNIT_US[match.group(3)]
        match = re.search(r"Requests/sec:\s*([\d.]+)", text)
        if match:
            result["rps"] = float(match.group(1))
        for pct, key in (("50", "p50_us"), ("90", "p90_us"), ("99", "p99_us")):
            match = re.search(rf"^\s*{pct}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
            if match:
                result[key] = float(match.group(1)) * UNIT_US[match.group(2)]
        match = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", text)
        result["non2xx"] = float(match.group(1)) if match else 0.0
        match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        for i, key in enumerate(("connect", "read", "write", "timeout")):
            result[key] = float(match.group(i + 1)) if match else 0.0
    result["socket_errors"] = sum(result.get(k, 0.0) for k in ("connect", "read", "write", "timeout"))
    return result if "requests" in result else None


def load_meta(path):
    meta = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                meta[key.strip()] = value.strip()
    return meta


def fmt_rps(value):
    return "—" if value is None else f"{value:,.0f}"


def fmt_us(value):
    if value is None:
        return "—"
    return f"{value:,.0f} µs" if value < 10_000 else f"{value / 1000:,.1f} ms"


def fmt_added(value):
    return "—" if value is None else f"{value:+,.0f} µs"


def ratio(a, b):
    return None if a is None or not b else a / b


def fmt_ratio(value):
    return "—" if value is None else f"{value * 100:.0f} %"


def verdict(ok):
    if ok is None:
        return "n/a"
    return "✅ met" if ok else "❌ missed"


def mb(kb_text):
    try:
        return int(kb_text) / 1024.0
    except (TypeError, ValueError):
        return None


def main():
    work = Path(sys.argv[1])
    meta = load_meta(work / "meta.env")
    runs = {}  # (target, mode, kind) -> {round: parsed}
    relayed_by_wrk = 0
    problems = []
    for line in (work / "runs.txt").read_text().splitlines() if (work / "runs.txt").exists() else []:
        fields = line.split("|")
        target, mode, kind, file = fields[:4]
        round_no = fields[6] if len(fields) >= 7 else "1"
        text = (work / file).read_text(errors="replace") if (work / file).exists() else ""
        parsed = parse_wrk(text)
        if parsed is None:
            problems.append(f"could not parse wrk output of {target} {mode} {kind} ({file})")
            continue
        if target == "relaybox":
            relayed_by_wrk += int(parsed["requests"])
        if parsed.get("non2xx", 0) or parsed.get("socket_errors", 0):
            problems.append(
                f"{target} {mode} {kind}: {int(parsed.get('non2xx', 0))} non-2xx responses, "
                f"{int(parsed.get('socket_errors', 0))} socket errors "
                f"(connect {int(parsed.get('connect', 0))}, read {int(parsed.get('read', 0))}, "
                f"write {int(parsed.get('write', 0))}, timeout {int(parsed.get('timeout', 0))}) of {int(parsed['requests'])}"
            )
        if len(fields) >= 6 and parsed["requests"]:
            tick_us = 1e6 / float(meta.get("clk_tck", "100") or 100)
            # CPU time of the server process per answered request; the mock's share is separate.
            parsed["cpu_us"] = int(fields[4]) * tick_us / parsed["requests"]
            parsed["mock_cpu_us"] = int(fields[5]) * tick_us / parsed["requests"]
        runs.setdefault((target, mode, kind), {})[round_no] = parsed

    def per_round(target, mode, kind, key):
        """round -> value, for the rounds that have one."""
        by_round = runs.get((target, mode, kind), {})
        return {r: run[key] for r, run in by_round.items() if run.get(key) is not None}

    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    def get(target, mode, kind, key):
        """The median over the rounds."""
        return median(per_round(target, mode, kind, key).values())

    def paired(a, b, mode, kind, key, combine):
        """combine(a, b) per round (runs of the same round were made minutes apart)."""
        va, vb = per_round(a, mode, kind, key), per_round(b, mode, kind, key)
        return [combine(va[r], vb[r]) for r in sorted(va) if r in vb]

    def ratio_median(a, b, mode, kind="throughput"):
        return median(paired(a, b, mode, kind, "rps", ratio))

    out = []
    out.append("# relaybox benchmark results")
    out.append("")
    out.append(
        f"{meta.get('date', '?')} · commit `{meta.get('commit', '?')}` · {meta.get('cpus', '?')} CPUs "
        f"({meta.get('cpu_model', '?')}) · wrk {meta.get('wrk_threads', '?')} threads × "
        f"{meta.get('connections', '?')} connections, {meta.get('duration', '?')} s per run after a "
        f"{meta.get('warmup', '?')} s warm-up · load tool, mock, proxy and relaybox share the CPUs · "
        f"CPUs in use just before the load: {meta.get('cpu_busy_before_load_pct', '?')} % · "
        f"load average before / after the load: {meta.get('loadavg_start', '?')} / {meta.get('loadavg_end', '?')}"
    )
    out.append("")

    # ---- throughput --------------------------------------------------------------------------
    modes = [(m, label) for m, label in MODES if any((t, m, "throughput") in runs for t, _ in TARGETS)]
    out.append(f"## Throughput, {meta.get('connections', '?')} connections (req/s)")
    out.append("")
    out.append("| target | " + " | ".join(label for _, label in modes) + " |")
    out.append("|---|" + "---:|" * len(modes))
    for target, label in TARGETS:
        out.append(f"| {label} | " + " | ".join(fmt_rps(get(target, m, "throughput", "rps")) for m, _ in modes) + " |")
    for base, label in (("direct", "relaybox / direct"), ("proxy", "relaybox / proxy")):
        cells = [fmt_ratio(ratio_median("relaybox", base, m)) for m, _ in modes]
        out.append(f"| **{label}** | " + " | ".join(cells) + " |")
    cells = [fmt_ratio(ratio_median("proxy", "direct", m)) for m, _ in modes]
    out.append("| proxy / direct (the physical limit) | " + " | ".join(cells) + " |")
    cells = [
        ", ".join(fmt_ratio(x) for x in paired("relaybox", "proxy", m, "throughput", "rps", ratio)) or "—"
        for m, _ in modes
    ]
    out.append("| relaybox / proxy, round by round | " + " | ".join(cells) + " |")
    out.append("")
    out.append(
        f"Medians of {meta.get('rounds', '1')} rounds; a ratio is the median of the ratios of runs "
        "made in the same round."
    )
    out.append("")
    out.append("CPU time per request of the server process during the throughput runs (utime + stime; ")
    out.append("for direct that is the mock itself, for the proxy and relaybox their own process without the mock):")
    out.append("")
    out.append("| process | " + " | ".join(label for _, label in modes) + " |")
    out.append("|---|" + "---:|" * len(modes))
    for target, label in (("direct", "mock-upstream"), ("proxy", "passthrough-proxy"), ("relaybox", "relaybox")):
        cells = []
        for m, _ in modes:
            value = get(target, m, "throughput", "cpu_us")
            cells.append("—" if value is None else f"{value:,.0f} µs")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("")

    # ---- latency -----------------------------------------------------------------------------
    out.append("## Latency, 1 connection, non-streaming /v1/messages")
    out.append("")
    out.append("| target | req/s | p50 | p99 | added p50 over direct | added p99 over direct |")
    out.append("|---|---:|---:|---:|---:|---:|")
    d50 = get("direct", "messages", "latency", "p50_us")
    d99 = get("direct", "messages", "latency", "p99_us")
    added = {}
    minus = lambda a, b: a - b  # noqa: E731
    for target, label in TARGETS:
        p50 = get(target, "messages", "latency", "p50_us")
        p99 = get(target, "messages", "latency", "p99_us")
        # Added latency: the median over rounds of (target − direct) in the same round.
        a50 = None if target == "direct" else median(paired(target, "direct", "messages", "latency", "p50_us", minus))
        a99 = None if target == "direct" else median(paired(target, "direct", "messages", "latency", "p99_us", minus))
        added[target] = (a50, a99)
        out.append(
            f"| {label} | {fmt_rps(get(target, 'messages', 'latency', 'rps'))} | {fmt_us(p50)} | {fmt_us(p99)} "
            f"| {fmt_added(a50)} | {fmt_added(a99)} |"
        )
    out.append("")
    noisy_tail = bool(d50 and d99 and (d99 > 10 * d50 or any(a is not None and a < 0 for _, a in added.values())))
    if noisy_tail:
        out.append(
            f"Note: direct-to-mock p99 is {d99 / d50:.0f}× its p50"
            + (" and an added p99 is negative" if any(a is not None and a < 0 for _, a in added.values()) else "")
            + ": the 1-connection tail is dominated by scheduling noise (other processes on these CPUs), "
            "so the p99 comparison is not meaningful in this run; rerun on an idle machine."
        )
        out.append("")

    # ---- memory, log writer, rows --------------------------------------------------------------
    idle_mb = mb(meta.get("rss_idle_kb"))
    hwm_mb = mb(meta.get("hwm_after_load_kb"))
    after_mb = mb(meta.get("rss_after_load_kb"))
    out.append("## relaybox memory")
    out.append("")
    out.append("| measure | MB |")
    out.append("|---|---:|")
    out.append(f"| VmRSS idle (after setup, before any relayed request) | {'—' if idle_mb is None else f'{idle_mb:.1f}'} |")
    out.append(f"| VmHWM (peak RSS) after the load | {'—' if hwm_mb is None else f'{hwm_mb:.1f}'} |")
    out.append(f"| VmRSS right after the load | {'—' if after_mb is None else f'{after_mb:.1f}'} |")
    out.append("")

    writer = {}
    for pair in meta.get("writer_result", "").split():
        key, _, value = pair.partition("=")
        try:
            writer[key] = float(value)
        except ValueError:
            pass
    writer_rps = writer.get("rows_per_sec")
    out.append("## Request log")
    out.append("")
    out.append("| measure | value |")
    out.append("|---|---:|")
    if writer:
        out.append(f"| log writer alone (`examples/log_writer_bench.rs`), rows/s | {writer_rps:,.0f} |")
        out.append(
            f"| … rows / written / dropped / failed | {int(writer.get('rows', 0)):,} / {int(writer.get('written', 0)):,}"
            f" / {int(writer.get('dropped', 0)):,} / {int(writer.get('failed', 0)):,} |"
        )
        out.append(f"| … producer pauses (queue > 50 000) | {int(writer.get('pauses', 0)):,} |")
    else:
        out.append("| log writer alone | did not run |")
        problems.append("the log writer bench did not produce a RESULT line")
    rows = None
    rows_info = {}
    if (work / "rows.json").exists():
        rows_info = json.loads((work / "rows.json").read_text())
        rows = rows_info.get("total")
    curl_requests = int(meta.get("relay_curl_requests", "0") or 0)
    relayed = relayed_by_wrk + curl_requests
    out.append(f"| requests relaybox answered (wrk, all runs incl. warm-ups) + curl checks | {relayed_by_wrk:,} + {curl_requests} = {relayed:,} |")
    out.append(f"| rows in `request_log` after SIGTERM | {'—' if rows is None else f'{rows:,}'} |")
    if rows is not None:
        out.append(f"| rows − requests | {rows - relayed:+,} |")
        by_status = ", ".join(f"{k} {v:,}" for k, v in rows_info.get("by_status", {}).items())
        out.append(f"| rows by status | {by_status or '—'} |")
        by_http = ", ".join(f"{k} {v:,}" for k, v in rows_info.get("by_http_status", {}).items())
        out.append(f"| rows by http_status | {by_http or '—'} |")
        by_endpoint = ", ".join(f"{k} {v:,}" for k, v in rows_info.get("by_endpoint", {}).items())
        out.append(f"| rows by endpoint | {by_endpoint or '—'} |")
    out.append("")
    out.append(
        "wrk counts only completed responses; the requests still in flight when a run ends "
        "(up to one per connection) are logged by relaybox as well (usually `client_disconnect`), "
        "so rows may exceed requests by up to connections × runs."
    )
    out.append("")

    # ---- targets -----------------------------------------------------------------------------
    r_proxy = ratio_median("relaybox", "proxy", "messages")
    r_proxy_s = ratio_median("relaybox", "proxy", "messages-stream")
    a50, a99 = added.get("relaybox", (None, None))
    in_flight_slack = int(meta.get("connections", "0") or 0) * sum(
        len(by_round) for k, by_round in runs.items() if k[0] == "relaybox"
    )
    rows_ok = None if rows is None else (relayed <= rows <= relayed + in_flight_slack)
    out.append("## Targets")
    out.append("")
    out.append("| target | measured | verdict |")
    out.append("|---|---:|---|")
    out.append(
        f"| throughput ≥ 75 % of the pass-through proxy (messages / stream) | {fmt_ratio(r_proxy)} / {fmt_ratio(r_proxy_s)} "
        f"| {verdict(None if r_proxy is None else (r_proxy >= TARGET_THROUGHPUT_RATIO and (r_proxy_s is None or r_proxy_s >= TARGET_THROUGHPUT_RATIO)))} |"
    )
    out.append(f"| added latency p50 ≤ 150 µs | {fmt_added(a50)} | {verdict(None if a50 is None else a50 <= TARGET_ADDED_P50_US)} |")
    p99_verdict = "⚠️ not meaningful (noisy tail, see note)" if noisy_tail else verdict(None if a99 is None else a99 <= TARGET_ADDED_P99_US)
    out.append(f"| added latency p99 ≤ 400 µs | {fmt_added(a99)} | {p99_verdict} |")
    out.append(
        f"| memory idle ≤ 30 MB | {'—' if idle_mb is None else f'{idle_mb:.1f} MB'} | {verdict(None if idle_mb is None else idle_mb <= TARGET_IDLE_MB)} |"
    )
    out.append(
        f"| memory under load ≤ 80 MB | {'—' if hwm_mb is None else f'{hwm_mb:.1f} MB'} | {verdict(None if hwm_mb is None else hwm_mb <= TARGET_LOAD_MB)} |"
    )
    out.append(
        f"| log writer ≥ 100 000 rows/s | {fmt_rps(writer_rps)} | {verdict(None if writer_rps is None else writer_rps >= TARGET_WRITER_ROWS)} |"
    )
    out.append(
        f"| one log row per relayed request | {'—' if rows is None else f'{rows:,} rows / {relayed:,} requests'} | {verdict(rows_ok)} |"
    )
    out.append("")

    try:
        busy = int(meta.get("cpu_busy_before_load_pct", ""))
        if busy > BUSY_BEFORE_LOAD_PCT:
            problems.append(
                f"the machine was busy just before the load started ({busy} % of the CPUs in use "
                "over 3 s, with the benchmark's servers idle): absolute numbers and tails are "
                "pessimistic and noisy"
            )
    except ValueError:
        pass
    smoke = meta.get("smoke", "")
    if smoke and smoke != "ok":
        problems.insert(0, f"relaybox smoke test: {smoke} (see relaybox-sample.txt and relaybox.log in bench/results/last-run/)")
    if meta.get("writer_dropped_warning"):
        problems.append(meta["writer_dropped_warning"])
    out.append("## Problems seen")
    out.append("")
    if problems:
        out.extend(f"- {p}" for p in problems)
    else:
        out.append("none")
    out.append("")
    out.append(f"Script run time: {meta.get('elapsed_s', '?')} s (of which build {meta.get('build_s', '?')} s).")
    print("\n".join(out))


if __name__ == "__main__":
    main()
