"""JSON checks for tests/agents.sh: one subcommand per question, the JSON on stdin.

    check.py field PATH               print the field at PATH (dotted: key.id) of a JSON object
    check.py upstream KIND CANARY     the mock's recorded requests (GET /_mock/requests):
                                      every one went to KIND's endpoint (claude, openai,
                                      gemini, responses), and the canary (the tool's output)
                                      reached the upstream in a later request
    check.py rows CONVERSION          relaybox's log rows of one run (GET /admin/api/logs?key=):
                                      at least one, all successes, each naming CONVERSION in
                                      failover_info ("-" = pass-through: none names one)

Prints one line of findings; exits 1 (after printing why) when a check fails.
"""

import json
import sys

# The request paths of each upstream protocol (answers and token counts), as relaybox sends them.
UPSTREAM_PATHS = {
    "claude": ("/v1/messages", "/v1/messages/count_tokens"),
    "openai": ("/v1/chat/completions",),
    "responses": ("/v1/responses", "/v1/responses/input_tokens"),
    "gemini": (":generateContent", ":streamGenerateContent", ":countTokens"),
}


def fail(message):
    print(message)
    sys.exit(1)


def field(path):
    value = json.load(sys.stdin)
    for name in path.split("."):
        value = value[name]
    print(value if isinstance(value, str) else json.dumps(value))


def upstream(kind, canary):
    requests = json.load(sys.stdin)
    if not requests:
        fail("the upstream got no request")
    wanted = UPSTREAM_PATHS[kind]
    paths = [r["path"].split("?", 1)[0] for r in requests]
    strays = [p for p in paths if not any(p.endswith(w) for w in wanted)]
    if strays:
        fail(f"the {kind} upstream got requests of another protocol: {strays}")
    carrying = [i for i, r in enumerate(requests) if canary in json.dumps(r.get("body"))]
    if not carrying:
        fail(f"{len(requests)} upstream requests, none carries the tool's output")
    if carrying[0] == 0:
        fail("the first upstream request already carries the canary: it proves no round trip")
    print(f"{len(requests)} upstream requests ({paths[0]}), tool output in request {carrying[0] + 1}")


def rows(conversion):
    logs = json.load(sys.stdin)["logs"]
    if not logs:
        fail("no log row")
    problems = {}  # the same problem on several rows is told once, with a count
    for row in logs:
        if row["status"] != "success":
            problem = f"{row['status']} {row['http_status']}: {row['error'] or row['upstream_error']}"
        else:
            notes = json.loads(row["failover_info"]) if row["failover_info"] else []
            used = sorted({note.get("conversion") for note in notes} - {None})
            if conversion == "-" and used:
                problem = f"conversion {used} on a pass-through channel"
            elif conversion != "-" and (not notes or notes[-1].get("conversion") != conversion):
                problem = f"failover_info does not name {conversion}: {row['failover_info']!r}"
            else:
                continue
        problems[problem] = problems.get(problem, 0) + 1
    if problems:
        told = "; ".join(f"{n} × {problem}" for problem, n in problems.items())
        fail(f"{len(logs)} rows, bad: {told}")
    tokens = sum(row["input_tokens"] + row["output_tokens"] for row in logs)
    print(f"{len(logs)} success rows, {tokens} tokens")


def main():
    command, *args = sys.argv[1:]
    {"field": field, "upstream": upstream, "rows": rows}[command](*args)


if __name__ == "__main__":
    main()
