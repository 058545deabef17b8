#!/usr/bin/env python3
"""Dump every key of a Redis database to JSON (type, TTL, value).

Output format:
{
  "meta": {"host":..., "port":..., "db":..., "dumpedAt": ISO-8601 UTC, "redisVersion":..., "keyCount": N},
  "keys": {
    "<key>": {"type": "string"|"hash"|"list"|"set"|"zset"|"stream",
              "ttl": <seconds, -1 = no expiry>,
              "pttl": <milliseconds, -1 = no expiry>,
              "value": ...}
  }
}
value encodings:
  string -> the string
  hash   -> {field: value}
  list   -> [items...]            (index 0 = head, i.e. LRANGE 0 -1 order)
  set    -> [members...]          (sorted for stable output)
  zset   -> [[member, score], ...] (ascending score, ZRANGE 0 -1 WITHSCORES)
  stream -> [[id, {field: value}], ...]
Bytes that are not valid UTF-8 are written as {"$base64": "..."}.
Keys are emitted in sorted order.

Usage: python3 tools/redis_dump_json.py --port 6390 --out dump.json
Needs only Python 3.8+ (it speaks the Redis protocol itself). For relaybox:
  relaybox import claude-relay-service --dump dump.json ...   (see the README)
"""
import argparse
import base64
import datetime
import json
import socket
import sys


class RedisError(Exception):
    pass


class Redis:
    """The few Redis commands this tool needs, over RESP2 on a plain TCP socket."""

    def __init__(self, host, port, db=0, password=None):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.file = self.sock.makefile("rb")
        if password:
            self.call("AUTH", password)
        if db:
            self.call("SELECT", str(db))

    def call(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))
        return self.reply()

    def reply(self):
        line = self.file.readline()
        if not line:
            raise RedisError("connection closed by the server")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.file.read(size + 2)
            return data[:-2]
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self.reply() for _ in range(size)]
        raise RedisError("unexpected reply %r" % line)

    def scan_iter(self, count=1000):
        cursor = b"0"
        while True:
            cursor, keys = self.call("SCAN", cursor, "COUNT", str(count))
            yield from keys
            if cursor == b"0":
                return

    def type(self, key):
        return self.call("TYPE", key)

    def pttl(self, key):
        return self.call("PTTL", key)

    def get(self, key):
        return self.call("GET", key)

    def hgetall(self, key):
        flat = self.call("HGETALL", key)
        return dict(zip(flat[0::2], flat[1::2]))

    def lrange(self, key, start, end):
        return self.call("LRANGE", key, str(start), str(end))

    def smembers(self, key):
        return set(self.call("SMEMBERS", key))

    def zrange(self, key, start, end, withscores=False):
        flat = self.call("ZRANGE", key, str(start), str(end), "WITHSCORES")
        return [(m, float(s)) for m, s in zip(flat[0::2], flat[1::2])]

    def xrange(self, key):
        entries = self.call("XRANGE", key, "-", "+")
        return [(i, dict(zip(f[0::2], f[1::2]))) for i, f in entries]

    def info(self, section):
        text = self.call("INFO", section).decode("utf-8", "replace")
        pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
        return {k: v for k, v in pairs}


def dec(b):
    if b is None:
        return None
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"$base64": base64.b64encode(b).decode()}


def main():
    p = argparse.ArgumentParser(
        description="Dump every key of a Redis database to JSON, e.g. claude-relay-service's "
        "for `relaybox import claude-relay-service --dump FILE`."
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=6379)
    p.add_argument("--db", type=int, default=0)
    p.add_argument("--password", default=None)
    p.add_argument("--out", default="-")
    a = p.parse_args()

    try:
        r = Redis(a.host, a.port, a.db, a.password)
    except (OSError, RedisError) as e:
        sys.exit("cannot reach Redis at %s:%d: %s" % (a.host, a.port, e))
    keys = sorted(r.scan_iter(count=1000))
    out = {}
    for k in keys:
        t = r.type(k).decode()
        pttl = r.pttl(k)
        if pttl == -2:  # vanished meanwhile
            continue
        if t == "string":
            v = dec(r.get(k))
        elif t == "hash":
            v = {dec(f): dec(x) for f, x in sorted(r.hgetall(k).items())}
        elif t == "list":
            v = [dec(x) for x in r.lrange(k, 0, -1)]
        elif t == "set":
            v = sorted((dec(x) for x in r.smembers(k)), key=lambda s: json.dumps(s))
        elif t == "zset":
            v = [[dec(m), s] for m, s in r.zrange(k, 0, -1, withscores=True)]
        elif t == "stream":
            v = [[dec(i), {dec(f): dec(x) for f, x in d.items()}] for i, d in r.xrange(k)]
        else:
            v = None
        out[dec(k)] = {
            "type": t,
            "ttl": -1 if pttl == -1 else (pttl + 999) // 1000,
            "pttl": pttl,
            "value": v,
        }
    info = r.info("server")
    doc = {
        "meta": {
            "host": a.host,
            "port": a.port,
            "db": a.db,
            "dumpedAt": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "redisVersion": info.get("redis_version"),
            "keyCount": len(out),
        },
        "keys": out,
    }
    text = json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False)
    if a.out == "-":
        sys.stdout.write(text + "\n")
    else:
        with open(a.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print("dumped %d keys" % len(out), file=sys.stderr)


if __name__ == "__main__":
    main()
