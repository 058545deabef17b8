"""Browser stories of the keys and channels pages: a key created in the console, read from its
one-time dialog, copied, and used with the official SDK; limits edited (a bad one refused next
to its field); disable, enable, revoke and delete; a channel created, edited, tested, suspended
and resumed, with a stale second tab getting the conflict notice and the server keeping the
first edit.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from typing import Any

import anthropic
from playwright.sync_api import Page, expect

from harness import Relay

CONFLICT = "This record was changed by someone else."


def key_by_name(admin: Callable[..., Any], name: str) -> dict[str, Any] | None:
    return next((k for k in admin("GET", "/keys", expect=200)["keys"] if k["name"] == name), None)


def channel_by_name(admin: Callable[..., Any], name: str) -> dict[str, Any] | None:
    return next((c for c in admin("GET", "/channels", expect=200)["channels"] if c["name"] == name), None)


def dialog(page: Page):
    return page.locator("dialog[open]")


def row_of(page: Page, name: str):
    return page.locator("tbody tr").filter(has_text=name)


def test_create_key_copy_it_and_use_it_with_the_sdk(
    logged_in: Page, relay: Relay, admin: Callable[..., Any], shot: Callable[[Page, str], Any]
) -> None:
    page = logged_in
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=relay.url)
    # A channel of its own, so the new key's allowlist decides where its request goes.
    upstream = f"sk-ui-{secrets.token_hex(8)}"
    channel = admin(
        "POST",
        "/channels",
        {"pool": "messages", "name": "ui-key-lane", "serviceType": "claude", "baseUrl": relay.mock.url, "apiKeys": [upstream]},
        expect=201,
    )

    page.goto("/#/keys")
    expect(page.get_by_role("heading", name="Keys", level=1)).to_be_visible()
    page.get_by_role("button", name="New key").click()
    form = dialog(page)
    form.get_by_label("Name", exact=True).fill("ui-laptop")
    form.get_by_label("Requests per minute").fill("120")
    form.get_by_label("Cost per day (USD)").fill("2.5")
    form.get_by_role("group", name="Channels: messages pool").get_by_label("ui-key-lane").check()
    form.get_by_label("Expiry").select_option("afterFirstUse")
    form.get_by_label("Days after first use").fill("30")
    form.get_by_role("button", name="Create key").click()

    once = dialog(page)
    expect(once.get_by_role("heading", name='Key "ui-laptop" created')).to_be_visible()
    expect(once).to_contain_text("this is the only time it is shown")
    plaintext = once.locator(".one-time-key").inner_text().strip()
    assert re.fullmatch(r"cr_[0-9a-f]{64}", plaintext), plaintext
    once.get_by_role("button", name="Copy").click()
    expect(once.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == plaintext
    once.get_by_role("button", name="Done").click()
    expect(dialog(page)).to_have_count(0)

    # The server holds what the form said, and never the key itself.
    stored = key_by_name(admin, "ui-laptop")
    assert stored is not None
    assert stored["limits"] == {"requestsPerMinute": 120, "costPerDay": 2.5}
    assert stored["allow"] == {"channelsMessages": [channel["id"]]}
    assert stored["expiry"] == {"mode": "afterFirstUse", "days": 30}
    assert plaintext not in str(admin("GET", "/keys", expect=200))
    row = row_of(page, "ui-laptop")
    expect(row).to_contain_text("active")
    expect(row).to_contain_text("120/min")

    # The copied key works with the official SDK, through the channel its allowlist names.
    client = anthropic.Anthropic(api_key=page.evaluate("navigator.clipboard.readText()"), base_url=relay.url, max_retries=0)
    message = client.messages.create(
        model="claude-opus-4-6", max_tokens=32, messages=[{"role": "user", "content": "hello from the console"}]
    )
    assert message.content[0].text.startswith("Hello from the mock upstream.")
    assert relay.mock.last_request()["headers"] and any(
        k.lower() == "x-api-key" and v == upstream for k, v in relay.mock.last_request()["headers"]
    ), "the request went through the key's channel"

    page.reload()
    expect(row_of(page, "ui-laptop")).to_be_visible()
    shot(page, "keys")
    # Its own page: what it used, and the chart of its days.
    row_of(page, "ui-laptop").get_by_role("link", name="ui-laptop").click()
    expect(page.get_by_role("heading", name='Key "ui-laptop"', level=1)).to_be_visible()
    expect(page.locator("main")).to_contain_text("First used")
    expect(page.locator("main")).not_to_contain_text("First used never")
    usage = page.locator("section", has=page.get_by_role("heading", name="Last 30 days"))
    figures = usage.locator("dl.details").first
    expect(figures.locator("dt").first).to_have_text("Requests")
    expect(figures.locator("dd").first).to_have_text("1")
    expect(usage.locator("tbody tr")).to_have_count(1)
    shot(page, "key-usage")


def test_edit_key_limits_disable_enable_revoke_delete(logged_in: Page, admin: Callable[..., Any]) -> None:
    page = logged_in
    created = admin("POST", "/keys", {"name": "ui-edit-me", "limits": {"requestsPerMinute": 10}}, expect=201)
    key_id = created["key"]["id"]
    page.goto("/#/keys")
    row = row_of(page, "ui-edit-me")
    expect(row).to_contain_text("10/min")

    # A limit out of range: the server's message next to the field, and nothing changes.
    row.get_by_role("button", name="Edit").click()
    form = dialog(page)
    form.get_by_label("Requests per minute").fill("0")
    form.get_by_role("button", name="Save").click()
    field = form.locator(".field", has=page.get_by_label("Requests per minute"))
    expect(field.locator(".field-error")).to_contain_text("must be between 1 and 1000000")
    assert admin("GET", f"/keys/{key_id}", expect=200)["limits"] == {"requestsPerMinute": 10}
    assert admin("GET", f"/keys/{key_id}", expect=200)["version"] == created["key"]["version"]

    # A window limit needs its length too (said before anything is sent).
    form.get_by_label("Requests per minute").fill("30")
    form.get_by_label("Tokens per window").fill("100000")
    form.get_by_role("button", name="Save").click()
    expect(form).to_contain_text("give the window length in seconds too")
    form.locator("[name='limits.tokensPerWindow.windowSeconds']").fill("3600")
    form.get_by_label("Models").fill("claude-*, gpt-4o-mini")
    form.get_by_role("group", name="Endpoints").get_by_label("chat", exact=True).check()
    form.get_by_role("button", name="Save").click()
    expect(dialog(page)).to_have_count(0)
    saved = admin("GET", f"/keys/{key_id}", expect=200)
    assert saved["limits"] == {"requestsPerMinute": 30, "tokensPerWindow": {"limit": 100000, "windowSeconds": 3600}}
    assert saved["allow"] == {"models": ["claude-*", "gpt-4o-mini"], "endpoints": ["chat"]}
    expect(row).to_contain_text("30/min")

    # An edit form opened before someone else's change: the conflict notice, never an overwrite.
    row.get_by_role("button", name="Edit").click()
    form = dialog(page)
    form.get_by_label("Description").fill("from the stale form")
    changed = admin("PATCH", f"/keys/{key_id}", {"description": "changed elsewhere"}, expect=200)
    form.get_by_role("button", name="Save").click()
    expect(form).to_contain_text(CONFLICT)
    assert admin("GET", f"/keys/{key_id}", expect=200) == changed
    form.get_by_role("button", name="Reload").click()
    expect(dialog(page)).to_have_count(0)

    row.get_by_role("button", name="Disable").click()
    expect(row).to_contain_text("disabled")
    assert admin("GET", f"/keys/{key_id}", expect=200)["status"] == "disabled"
    row.get_by_role("button", name="Enable").click()
    expect(row.get_by_role("button", name="Disable")).to_be_visible()
    assert admin("GET", f"/keys/{key_id}", expect=200)["status"] == "active"

    # Revoke asks first; Cancel changes nothing.
    row.get_by_role("button", name="Revoke").click()
    dialog(page).get_by_role("button", name="Cancel").click()
    assert admin("GET", f"/keys/{key_id}", expect=200)["status"] == "active"
    row.get_by_role("button", name="Revoke").click()
    expect(dialog(page)).to_contain_text("cannot be enabled again")
    dialog(page).get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    assert admin("GET", f"/keys/{key_id}", expect=200)["status"] == "revoked"

    row.get_by_role("button", name="Delete").click()
    dialog(page).get_by_role("button", name="Delete").click()
    expect(row_of(page, "ui-edit-me")).to_have_count(0)
    admin("GET", f"/keys/{key_id}", expect=404)


def test_channel_created_edited_and_a_stale_tab_gets_the_conflict(
    logged_in: Page, relay: Relay, admin: Callable[..., Any], shot: Callable[[Page, str], Any]
) -> None:
    page = logged_in
    page.goto("/#/channels")
    page.get_by_role("button", name="New channel").click()
    form = dialog(page)
    form.get_by_label("Name", exact=True).fill("ui-chan")
    form.get_by_label("Service type").select_option("claude")
    form.get_by_label("Base URL").fill(relay.mock.url)
    form.get_by_label("Model mapping").fill("haiku=claude-haiku-4-5")
    # Without an upstream key the form says so, next to the field, and sends nothing.
    form.get_by_role("button", name="Create channel").click()
    keys_field = form.locator(".field", has=page.get_by_label("Upstream API keys"))
    expect(keys_field.locator(".field-error")).to_contain_text("at least one upstream API key")
    assert channel_by_name(admin, "ui-chan") is None
    form.get_by_label("Upstream API keys").fill("sk-ui-chan-0123456789abcdefghij")
    form.get_by_role("button", name="Create channel").click()
    expect(dialog(page)).to_have_count(0)

    stored = channel_by_name(admin, "ui-chan")
    assert stored is not None
    assert stored["modelMapping"] == {"haiku": "claude-haiku-4-5"}
    assert stored["apiKeys"] == ["sk-u…ghij"], "the list shows the key masked, as the API gives it"
    row = row_of(page, "ui-chan")
    expect(row).to_contain_text("sk-u…ghij")
    expect(row).not_to_contain_text("0123456789")
    expect(row.locator("td[data-label='State']")).to_have_text("up")

    # A second tab opens the same channel's edit form before the first tab saves.
    second = page.context.new_page()
    second.goto("/#/channels")
    row_of(second, "ui-chan").get_by_role("button", name="Edit").click()
    stale_form = dialog(second)
    expect(stale_form.get_by_label("Name", exact=True)).to_have_value("ui-chan")

    row.get_by_role("button", name="Edit").click()
    form = dialog(page)
    expect(form.get_by_label("Upstream API keys")).to_have_value("")
    expect(form.get_by_label("Upstream API keys")).to_have_attribute("placeholder", "unchanged")
    form.get_by_label("Priority").fill("7")
    form.get_by_label("Description").fill("first tab")
    form.get_by_label("Response header timeout (s)").fill("90")
    shot(page, "channel-edit")
    form.get_by_role("button", name="Save").click()
    expect(dialog(page)).to_have_count(0)
    expect(row).to_contain_text("first tab")
    first = channel_by_name(admin, "ui-chan")
    assert first is not None and first["priority"] == 7 and first["description"] == "first tab"
    assert first["responseHeaderTimeout"] == 90
    assert first["apiKeys"] == ["sk-u…ghij"], "an empty keys field keeps the stored key"

    stale_form.get_by_label("Priority").fill("1")
    stale_form.get_by_label("Description").fill("second tab")
    stale_form.get_by_role("button", name="Save").click()
    expect(stale_form).to_contain_text(CONFLICT)
    after = channel_by_name(admin, "ui-chan")
    assert after == first, "the stale save changed nothing"
    # Save again from the stale form: still refused, never sent over the first edit.
    stale_form.get_by_role("button", name="Save").click()
    assert channel_by_name(admin, "ui-chan") == first
    stale_form.get_by_role("button", name="Reload").click()
    expect(dialog(second)).to_have_count(0)
    expect(row_of(second, "ui-chan")).to_contain_text("first tab")
    second.close()

    shot(page, "channels")


def test_channel_test_suspend_resume_quota_and_delete(logged_in: Page, relay: Relay, admin: Callable[..., Any]) -> None:
    page = logged_in
    created = admin(
        "POST",
        "/channels",
        {
            "pool": "chat", "name": "ui-ops", "serviceType": "openai_chat", "baseUrl": relay.mock.url,
            "apiKeys": ["sk-ui-ops-0123456789abcdef"], "quotaType": "requests", "quotaLimit": 50,
            "quotaResetInterval": 1, "quotaResetUnit": "days",
        },
        expect=201,
    )
    page.goto("/#/channels")
    row = row_of(page, "ui-ops")
    expect(row).to_contain_text("0 of 50")

    row.get_by_role("button", name="Test").click()
    result = dialog(page)
    expect(result).to_contain_text("OK: HTTP 200")
    expect(result).to_contain_text("Hello from the mock upstream")
    result.locator(".dialog-actions").get_by_role("button", name="Close").click()

    row.get_by_role("button", name="Suspend").click()
    expect(row.get_by_role("button", name="Resume")).to_be_visible()
    expect(row).to_contain_text("suspended")
    suspended = admin("GET", f"/channels/{created['id']}", expect=200)
    assert suspended["status"] == "suspended"
    assert suspended["health"]["state"] == "suspended"
    row.get_by_role("button", name="Resume").click()
    expect(row.get_by_role("button", name="Suspend")).to_be_visible()
    resumed = admin("GET", f"/channels/{created['id']}", expect=200)
    assert resumed["status"] == "active" and resumed["health"]["state"] == "up"

    # A suspend from a page loaded before someone else's change is refused.
    admin("PATCH", f"/channels/{created['id']}", {"description": "changed elsewhere"}, expect=200)
    row.get_by_role("button", name="Suspend").click()
    expect(page.locator(".page-notice")).to_contain_text(CONFLICT)
    assert admin("GET", f"/channels/{created['id']}", expect=200)["status"] == "active"
    page.locator(".page-notice").get_by_role("button", name="Reload").click()
    expect(row).to_contain_text("changed elsewhere")

    # Used quota, then reset.
    _, client_key = relay.create_key("ui-ops-client", {"channelsChat": [created["id"]]})
    for _ in range(2):
        relay.http.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {client_key}"},
        ).raise_for_status()
    page.reload()
    expect(row).to_contain_text("2 of 50")
    row.get_by_role("button", name="Reset quota").click()
    dialog(page).get_by_role("button", name="Reset quota").click()
    expect(row).to_contain_text("0 of 50")
    assert admin("GET", f"/channels/{created['id']}/usage", expect=200)["quota"]["used"] == 0

    row.get_by_role("button", name="Delete").click()
    expect(dialog(page)).to_contain_text("removed for good")
    dialog(page).get_by_role("button", name="Delete").click()
    expect(row_of(page, "ui-ops")).to_have_count(0)
    admin("GET", f"/channels/{created['id']}", expect=404)
