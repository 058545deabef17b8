"""Browser stories: log in (a wrong key first), a request through the relay with the official
`anthropic` SDK seen in the logs page, its detail and the dashboard, logout ending the session,
CSRF refusals, and the cluster page in single mode. Screenshots: login, dashboard, logs, the log
detail and cluster, each at desktop and phone width."""

from __future__ import annotations

import re
import time
from decimal import ROUND_HALF_UP, Decimal

import anthropic
import httpx
import pytest
from playwright.sync_api import Page, expect

from harness import ADMIN_KEY, MOCK_OUTPUT_TOKENS, mock_input_tokens

MODEL = "claude-opus-4-6"
PROMPT = "Hello from the browser story."


def money(text: str) -> str:
    """The console's money rule: under $1 at least 4 decimals (more until a digit shows), from
    $1 up 2 decimals; computed here with Decimal, independently of the page's JavaScript."""
    value = Decimal(text)
    places = 2
    if value < 1:
        digits = format(value, "f").split(".")[1] if "." in format(value, "f") else ""
        first = next((i for i, d in enumerate(digits) if d != "0"), None)
        places = 2 if first is None else min(max(4, first + 1), 9)
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    if rounded >= 1 and places > 2:
        rounded = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"${rounded:,}"


def session_cookie(page: Page) -> dict:
    cookies = [c for c in page.context.cookies() if c["name"] == "relaybox_session"]
    assert len(cookies) == 1, f"expected one session cookie, got {page.context.cookies()}"
    return cookies[0]


def test_wrong_key_is_refused_then_login_reaches_the_wanted_page_and_logout_ends_the_session(page: Page, relay, shot):
    # A visitor without a session who opens a deep link is sent to the login page.
    page.goto("/#/logs")
    expect(page).to_have_url(re.compile(r"#/login\?next="))
    key_field = page.get_by_label("Admin key")
    expect(key_field).to_have_attribute("type", "password")
    expect(key_field).to_have_attribute("autocomplete", "off")
    shot(page, "login")

    # The wrong key: refused in words, no session, still on the login page.
    key_field.fill("not-an-admin-key-" + "x" * 20)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong admin key")
    expect(page).to_have_url(re.compile(r"#/login"))
    assert not [c for c in page.context.cookies() if c["name"] == "relaybox_session"]

    # The right key (Enter submits): the page the visitor wanted, with the nav.
    key_field.fill(ADMIN_KEY)
    key_field.press("Enter")
    expect(page.get_by_role("heading", name="Logs", level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(r"#/logs$"))
    cookie = session_cookie(page)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # Nothing of the session in the page's storage.
    stored = page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert ADMIN_KEY not in stored and cookie["value"] not in stored

    cookies = {"relaybox_session": cookie["value"]}
    with httpx.Client(base_url=relay.url, trust_env=False, timeout=10, cookies=cookies) as http:
        alive = http.get("/admin/api/keys")
        assert alive.status_code == 200, alive.text

        # Logout: back to the login page; the old cookie no longer opens the API.
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_label("Admin key")).to_be_visible()
        expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
        refused = http.get("/admin/api/keys")
        assert refused.status_code == 401, refused.text
        assert http.get("/admin/session").status_code == 401

    # The console itself sends a logged-out visitor to the login page.
    page.goto("/#/dashboard")
    expect(page.get_by_label("Admin key")).to_be_visible()


def test_a_change_without_the_csrf_token_is_refused_and_creates_nothing(logged_in: Page, relay):
    request = logged_in.context.request  # carries the session cookie, like the browser would
    name = "csrf-probe"

    for headers in ({}, {"X-CSRF-Token": "not-the-token"}):
        refused = request.post("/admin/api/keys", data={"name": name}, headers=headers)
        assert refused.status == 403, refused.text()
        assert refused.json()["error"]["code"] == "csrf"
    names = [key["name"] for key in relay.admin("GET", "/keys", expect=200)["keys"]]
    assert name not in names

    # The same request with the session's token is accepted: the refusal was the token's.
    token = request.get("/admin/session").json()["csrf_token"]
    created = request.post("/admin/api/keys", data={"name": name}, headers={"X-CSRF-Token": token})
    assert created.status == 201, created.text()
    key_id = created.json()["key"]["id"]
    relay.admin("DELETE", f"/keys/{key_id}", expect=204)


@pytest.fixture
def relayed(relay):
    """One request through the relay with the official SDK, by a key created with the admin API;
    returns (lane, the log row as the admin API shows it)."""
    lane = relay.lane("messages", "claude", name="ui-logs")
    mark = relay.logs.mark()
    client = anthropic.Anthropic(api_key=lane.key, base_url=relay.url, max_retries=0, timeout=30)
    reply = client.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": PROMPT}])
    assert reply.usage.output_tokens == MOCK_OUTPUT_TOKENS
    row = relay.logs.row_after(mark, lane)
    shown = relay.admin("GET", f"/logs/{row['id']}", expect=200)
    assert shown["input_tokens"] == mock_input_tokens(PROMPT)
    return lane, shown


def test_a_relayed_request_appears_in_the_logs_its_detail_and_the_dashboard(logged_in: Page, relay, relayed, shot):
    lane, row = relayed
    page = logged_in
    key_name = f"sdk-{lane.channel_name}"
    total = row["input_tokens"] + row["output_tokens"]

    # The logs page, filtered by the key through the form; the filter lands in the link.
    page.goto("/#/logs")
    expect(page.get_by_role("heading", name="Logs", level=1)).to_be_visible()
    page.get_by_label("Key").select_option(label=key_name)
    page.get_by_label("Model").fill(MODEL)
    page.get_by_label("Model").press("Enter")
    expect(page).to_have_url(re.compile(rf"#/logs\?.*key={lane.key_id}"))
    expect(page).to_have_url(re.compile(rf"model={MODEL}"))
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(1)
    first = rows.first
    expect(first).to_contain_text(key_name)
    expect(first).to_contain_text(MODEL)
    expect(first).to_contain_text(lane.channel_name)
    expect(first).to_contain_text("/v1/messages")
    expect(first.locator("td[data-label=Status]")).to_have_text("200")
    expect(first.locator("td[data-label=Tokens]")).to_have_text(str(total))
    expect(first.locator("td[data-label=Cost]")).to_have_text(money(str(row["price"])))

    # The filtered view is a link: opened afresh, it shows the same row.
    link = page.url
    page.goto("/#/dashboard")
    page.goto(link)
    expect(page.locator("table tbody tr")).to_have_count(1)
    expect(page.get_by_label("Model")).to_have_value(MODEL)
    shot(page, "logs")

    # The detail (Enter on the focused row): every field, failover_info included.
    page.locator("table tbody tr").first.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Request details")).to_be_visible()
    expect(dialog.locator("[data-field=id]")).to_have_text(row["id"])
    expect(dialog.locator("[data-field=input_tokens]")).to_have_text(str(row["input_tokens"]))
    expect(dialog.locator("[data-field=output_tokens]")).to_have_text(str(row["output_tokens"]))
    expect(dialog.locator("[data-field=client_id]")).to_contain_text(lane.key_id)
    expect(dialog.locator("[data-field=http_status]")).to_have_text("200")
    expect(dialog.locator("[data-field=failover_info]")).to_contain_text("Failover info")
    shot(page, "logs-detail")
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)

    # A filter the API refuses is shown next to its field, in words.
    page.goto("/#/logs?status=999")
    expect(page.get_by_role("alert").filter(has_text="status")).to_be_visible()

    # The dashboard counts it today, with the cost.
    page.goto("/#/dashboard")
    summary = relay.admin("GET", "/summary", expect=200)
    assert summary["today_requests"] >= 1
    today = page.locator("[data-figure=today_requests] .value")
    expect(today).to_have_text(f"{summary['today_requests']:,}")
    expect(page.locator("[data-figure=today_cost] .value")).to_have_text(money(summary["today_cost"]))
    expect(page.get_by_label(re.compile("Top models by requests"))).to_have_attribute("aria-label", re.compile(MODEL))
    expect(page.get_by_label(re.compile("Top keys by requests"))).to_have_attribute("aria-label", re.compile(key_name))
    shot(page, "dashboard")


def test_the_cluster_page_says_single_mode(logged_in: Page, relay, shot):
    assert relay.admin("GET", "/cluster", expect=200) == {"mode": "single"}
    page = logged_in
    page.get_by_role("link", name="Cluster").click()
    expect(page.get_by_role("heading", name="Cluster", level=1)).to_be_visible()
    expect(page.locator("[data-mode=single]")).to_contain_text("single mode")
    shot(page, "cluster")


def test_the_nav_collapses_into_a_menu_on_a_phone(logged_in: Page):
    page = logged_in
    page.set_viewport_size({"width": 390, "height": 844})
    nav = page.get_by_role("navigation", name="Main")
    expect(nav).to_be_hidden()
    menu = page.get_by_role("button", name="Menu")
    menu.click()
    expect(nav).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "true")
    page.keyboard.press("Escape")
    expect(nav).to_be_hidden()
    menu.click()
    page.get_by_role("link", name="Logs").click()
    expect(page.get_by_role("heading", name="Logs", level=1)).to_be_visible()
    expect(nav).to_be_hidden()


def test_a_throttled_login_says_when_to_retry(page: Page):
    # The server's throttle is shared by every story of this run (one client address), so the
    # 429 comes from a stand-in answer here; the throttle itself is tested against the server.
    page.route(
        "**/admin/session",
        lambda route: route.fulfill(
            status=429,
            headers={"Retry-After": "17", "Content-Type": "application/json"},
            body='{"error": {"code": "throttled", "message": "too many failed attempts"}}',
        )
        if route.request.method == "POST"
        else route.continue_(),
    )
    page.goto("/#/login")
    page.get_by_label("Admin key").fill("any-key-at-all")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Too many attempts, retry in 17 s.")
    expect(page).to_have_url(re.compile(r"#/login"))


def test_the_dashboard_follows_its_range_and_refreshes_every_30_seconds_while_visible(logged_in: Page):
    page = logged_in
    page.clock.install()
    page.reload()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page.locator("[data-figure=today_requests] .value")).not_to_have_text("—")

    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))

    # The range switch asks for days over 7 days (the 24 h view groups by hour).
    with page.expect_request(lambda request: "/admin/api/usage" in request.url and "group_by=day" in request.url):
        page.get_by_role("button", name="7 d").click()
    expect(page.get_by_role("button", name="7 d")).to_have_attribute("aria-pressed", "true")

    # 30 s later, with the page visible, it asks again on its own.
    before = sum("/admin/api/summary" in url for url in asked)
    with page.expect_request(lambda request: "/admin/api/summary" in request.url, timeout=5_000):
        page.clock.run_for("00:31")
    assert sum("/admin/api/summary" in url for url in asked) >= before + 1

    # The choice of range is kept for the next visit (a preference, not a secret).
    page.reload()
    expect(page.get_by_role("button", name="7 d")).to_have_attribute("aria-pressed", "true")


def test_load_more_follows_the_cursor_to_the_last_row(logged_in: Page, relay):
    lane = relay.lane("messages", "claude", name="ui-more")
    client = anthropic.Anthropic(api_key=lane.key, base_url=relay.url, max_retries=0, timeout=30)
    sent = 55  # one page (50) and a part of the next
    mark = relay.logs.mark()
    for n in range(sent):
        client.messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": f"row {n}"}])
    deadline = time.monotonic() + 5
    while len(relay.logs.rows_after(mark, lane.key_id)) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(relay.logs.rows_after(mark, lane.key_id)) == sent

    page = logged_in
    page.goto(f"/#/logs?key={lane.key_id}")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(50)
    more = page.get_by_role("button", name="Load more")
    expect(more).to_be_visible()
    more.click()
    expect(rows).to_have_count(sent)
    expect(more).to_be_hidden()
    expect(page.get_by_text(f"{sent} requests shown")).to_be_visible()
    # Each request once, and newest first: the times shown never go up.
    shown = [row.get_attribute("data-key") for row in rows.all()]
    assert sorted(shown) == sorted(row["id"] for row in relay.logs.rows_after(mark, lane.key_id))
    times = rows.locator("td[data-label=Time]").all_inner_texts()
    assert times == sorted(times, reverse=True)
