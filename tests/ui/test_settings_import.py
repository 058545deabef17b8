"""Browser stories of the settings, pricing/aliases and import pages: a bad setting is shown
next to its field and changes nothing, a good one is saved; prices and aliases added, edited and
deleted; a cc-bridge folder imported (dry run first, then the import) with its progress and
report — into a relaybox of its own, so the imported channels and settings never reach the
other stories.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from harness import ADMIN_KEY, ROOT, START_TIMEOUT, STOP_TIMEOUT, Mock, Relay, binary_path, clean_env

CC_BRIDGE_FIXTURE = ROOT / "tests" / "fixtures" / "cc-bridge" / ".config"
CONFLICT = "This record was changed by someone else."


def dialog(page: Page):
    return page.locator("dialog[open]")


def field_of(page: Page, label: str):
    """The labelled field's wrapper (its input, help and error slot)."""
    return page.locator(".field", has=page.get_by_label(label, exact=True))


def test_settings_bad_value_is_shown_next_to_the_field_and_changes_nothing(
    logged_in: Page, admin: Callable[..., Any], shot: Callable[[Page, str], Any]
) -> None:
    page = logged_in
    before = admin("GET", "/settings", expect=200)
    page.goto("/#/settings")
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible()
    shot(page, "settings")

    body = field_of(page, "Largest request body (bytes)")
    body.locator("input").fill("10")
    page.get_by_role("button", name="Save settings").click()
    expect(body.locator(".field-error")).to_contain_text("maxBodyBytes must be between 1024 and 1073741824")
    expect(body.locator("input")).to_have_attribute("aria-invalid", "true")
    assert admin("GET", "/settings", expect=200) == before, "a refused value changes nothing"

    # A bad strategy in the rules box: the server's message lands next to the rules.
    body.locator("input").fill(str(before["maxBodyBytes"]))
    rules = field_of(page, "Rules (JSON)")
    rules.locator("textarea").fill('[{"errorCodes": "429", "actionChain": [{"action": "retry", "waitSeconds": 999999}]}]')
    page.get_by_role("button", name="Save settings").click()
    expect(rules.locator(".field-error")).to_contain_text("waitSeconds")
    assert admin("GET", "/settings", expect=200) == before
    rules.locator("textarea").fill("not json")
    page.get_by_role("button", name="Save settings").click()
    expect(rules.locator(".field-error")).to_contain_text("not valid JSON")

    # A good change is saved, and only that field is sent.
    rules.locator("textarea").fill(json.dumps(before["failover"].get("rules", [])))
    threshold = field_of(page, "Circuit breaker: failures to open")
    threshold.locator("input").fill("7")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text(f"version {before['version'] + 1}")).to_be_visible()
    after = admin("GET", "/settings", expect=200)
    assert after["circuitBreakerThreshold"] == 7
    assert {k: v for k, v in after.items() if k not in ("circuitBreakerThreshold", "version")} == {
        k: v for k, v in before.items() if k not in ("circuitBreakerThreshold", "version")
    }

    # A page loaded before someone else's change gets the conflict notice, not an overwrite.
    admin("PUT", "/settings", {"suspendSeconds": 120}, expect=200)
    field_of(page, "Suspend time (s)").locator("input").fill("60")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("form")).to_contain_text(CONFLICT)
    assert admin("GET", "/settings", expect=200)["suspendSeconds"] == 120
    page.get_by_role("button", name="Reload").click()
    expect(field_of(page, "Suspend time (s)").locator("input")).to_have_value("120")

    admin("PUT", "/settings", {"circuitBreakerThreshold": before["circuitBreakerThreshold"], "suspendSeconds": before["suspendSeconds"]}, expect=200)


def test_prices_and_aliases(logged_in: Page, admin: Callable[..., Any], shot: Callable[[Page, str], Any]) -> None:
    page = logged_in
    page.goto("/#/pricing")
    page.get_by_role("button", name="New price").click()
    form = dialog(page)
    form.get_by_label("Model (id or prefix)").fill("ui-model-x")
    form.get_by_label("Input (USD / M tokens)").fill("1.25")
    form.get_by_label("Output (USD / M tokens)").fill("-3")
    form.get_by_role("button", name="Add price").click()
    # The server's range check, next to the field; nothing is stored.
    output = form.locator(".field", has=page.get_by_label("Output (USD / M tokens)"))
    expect(output.locator(".field-error")).to_contain_text("outputPrice")
    admin("GET", "/pricing/ui-model-x", expect=404)
    form.get_by_label("Output (USD / M tokens)").fill("10")
    form.get_by_label("Description").fill("console price")
    form.get_by_role("button", name="Add price").click()
    expect(dialog(page)).to_have_count(0)
    row = page.locator("tbody tr").filter(has_text="ui-model-x")
    expect(row).to_contain_text("$1.25")
    expect(row).to_contain_text("$10")
    stored = admin("GET", "/pricing/ui-model-x", expect=200)
    assert (stored["inputPrice"], stored["outputPrice"], stored["description"]) == (1.25, 10, "console price")

    # Cache prices it does not name are shown as relaybox computes them: from the input price.
    expect(row.locator("td[data-label='Cache read']")).to_have_text("$0.125 (derived)")
    row.get_by_role("button", name="Edit").click()
    dialog(page).get_by_label("Cache read (USD / M tokens)").fill("0.2")
    dialog(page).get_by_role("button", name="Save").click()
    expect(dialog(page)).to_have_count(0)
    expect(row.locator("td[data-label='Cache read']")).to_have_text("$0.2")
    assert admin("GET", "/pricing/ui-model-x", expect=200)["cacheReadPrice"] == 0.2

    pool = page.locator(".alias-pool").filter(has=page.get_by_role("heading", name="Chat"))
    pool.get_by_label("New chat alias").fill("ui-alias-model")
    pool.get_by_role("button", name="Add").click()
    expect(pool.locator(".alias-list")).to_contain_text("ui-alias-model")
    assert any(a["value"] == "ui-alias-model" for a in admin("GET", "/aliases", expect=200).get("chatModels", []))
    # The same alias again: the server's refusal is shown, nothing doubles.
    pool = page.locator(".alias-pool").filter(has=page.get_by_role("heading", name="Chat"))
    pool.get_by_label("New chat alias").fill("ui-alias-model")
    pool.get_by_role("button", name="Add").click()
    expect(pool).to_contain_text("already offers")
    assert [a["value"] for a in admin("GET", "/aliases", expect=200).get("chatModels", [])].count("ui-alias-model") == 1
    shot(page, "pricing")

    pool.get_by_role("button", name="Delete alias ui-alias-model").click()
    expect(page.locator(".alias-pool").filter(has=page.get_by_role("heading", name="Chat"))).not_to_contain_text("ui-alias-model")
    assert not any(a["value"] == "ui-alias-model" for a in admin("GET", "/aliases", expect=200).get("chatModels", []))

    row.get_by_role("button", name="Delete").click()
    dialog(page).get_by_role("button", name="Delete").click()
    expect(page.locator("tbody tr").filter(has_text="ui-model-x")).to_have_count(0)
    admin("GET", "/pricing/ui-model-x", expect=404)


# ---- import, into a relaybox of its own ---------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_relay(mock: Mock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    """A second relaybox on an empty data dir (stopped with SIGTERM at the end)."""
    base = tmp_path_factory.mktemp("relaybox-import")
    data_dir = base / "data"
    data_dir.mkdir()
    stderr_path = base / "relaybox.stderr.log"
    env = clean_env()
    env["RELAYBOX_ADMIN_KEY"] = ADMIN_KEY
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            [str(binary_path("RELAYBOX_BIN", "relaybox")), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env, cwd=base,
        )
    url = None
    deadline = time.monotonic() + START_TIMEOUT
    while url is None and time.monotonic() < deadline and proc.poll() is None:
        try:
            candidate = json.loads((data_dir / "control.json").read_text())["url"].rstrip("/")
            if httpx.get(f"{candidate}/health", timeout=2, trust_env=False).status_code == 200:
                url = candidate
        except (OSError, ValueError, KeyError, httpx.HTTPError):
            time.sleep(0.05)
    if url is None:
        proc.kill()
        pytest.fail(f"the second relaybox did not start:\n{stderr_path.read_text(errors='replace')}")
    relay = Relay(proc, url, data_dir, stderr_path, mock)
    yield relay
    relay.http.close()
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(STOP_TIMEOUT) == 0
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def import_page(browser: Browser, fresh_relay: Relay, login: Callable[..., Page]) -> Iterator[Page]:
    context = browser.new_context(base_url=fresh_relay.url, viewport={"width": 1280, "height": 800}, locale="en-US", timezone_id="UTC")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield login(page)
    context.close()
    assert not errors, errors


def test_import_cc_bridge_dry_run_then_import(
    import_page: Page, fresh_relay: Relay, shot: Callable[[Page, str], Any]
) -> None:
    page, relay = import_page, fresh_relay
    config = json.loads((CC_BRIDGE_FIXTURE / "config.json").read_text())
    pools = ("upstream", "responsesUpstream", "geminiUpstream", "chatUpstream")
    names = {c["name"] for pool in pools for c in config.get(pool, [])}
    assert names, "the fixture lists channels"
    page.goto("/#/import")
    expect(page.get_by_role("heading", name="Import", level=1)).to_be_visible()

    # A folder that does not exist: refused at once, next to the field.
    page.get_by_label("cc-bridge folder").fill("/no/such/cc-bridge/folder")
    page.get_by_role("button", name="Dry run").click()
    path_field = page.locator(".field", has=page.get_by_label("cc-bridge folder"))
    expect(path_field.locator(".field-error")).to_be_visible()

    page.get_by_label("cc-bridge folder").fill(str(CC_BRIDGE_FIXTURE))
    page.get_by_role("button", name="Dry run").click()
    job = page.locator(".import-job")
    expect(job).to_contain_text("done — nothing was changed", timeout=30_000)
    expect(job.locator(".steps li").first).to_contain_text("done")
    report = job.locator(".report")
    expect(report).to_contain_text("config.json")
    expect(report).to_contain_text("would apply")
    channels = report.locator(".report-counts tbody tr").filter(has=page.get_by_role("rowheader", name="Channels"))
    expect(channels.locator("td[data-label='Found']")).to_have_text(str(len(names)))
    expect(channels.locator("td[data-label='Imported']")).to_have_text(str(len(names)))
    assert relay.admin("GET", "/channels", expect=200)["channels"] == [], "a dry run writes nothing"
    shot(page, "import")

    page.get_by_role("button", name="Import", exact=True).click()
    dialog(page).get_by_role("button", name="Import").click()
    job = page.locator(".import-job")
    expect(job.get_by_role("link", name="channels")).to_be_visible(timeout=30_000)
    expect(job).not_to_contain_text("nothing was changed")
    imported = {c["name"] for c in relay.admin("GET", "/channels", expect=200)["channels"]}
    assert names <= imported, f"{names} not all in {imported}"

    job.get_by_role("link", name="channels").click()
    expect(page.get_by_role("heading", name="Channels", level=1)).to_be_visible()
    for name in names:
        expect(page.locator("main")).to_contain_text(name)


CRS_DUMP = ROOT.parent / "shared" / "fixtures" / "claude-relay-service" / "redis-dump.json"
CRS_ENCRYPTION_KEY = "CRS-fixture-encryption-key-32chr"  # the fixture deployment's (its README)


@pytest.mark.skipif(not CRS_DUMP.is_file(), reason="the shared claude-relay-service fixture is not next to the repository")
def test_import_claude_relay_service_dump_wrong_key_then_dry_run(import_page: Page, fresh_relay: Relay) -> None:
    page, relay = import_page, fresh_relay
    keys_before = relay.admin("GET", "/keys", expect=200)
    page.goto("/#/import")
    page.get_by_label("Import from").select_option("claude-relay-service")
    expect(page.get_by_label("cc-bridge folder")).to_be_hidden()

    # Both sources at once: said before anything is sent.
    page.get_by_label("Redis URL").fill("redis://127.0.0.1:6379/0")
    page.get_by_label("or a dump file").fill(str(CRS_DUMP))
    page.get_by_label("Its ENCRYPTION_KEY").fill("not-the-deployment-key-000000000")
    page.get_by_role("button", name="Dry run").click()
    dump_field = page.locator(".field", has=page.get_by_label("or a dump file"))
    expect(dump_field.locator(".field-error")).to_contain_text("not both")

    # The wrong key: the job fails, says why, and nothing is written.
    page.get_by_label("Redis URL").fill("")
    page.get_by_role("button", name="Dry run").click()
    job = page.locator(".import-job")
    expect(job).to_contain_text("failed", timeout=30_000)
    expect(job).to_contain_text("ENCRYPTION_KEY")
    assert relay.admin("GET", "/keys", expect=200) == keys_before

    page.get_by_label("Its ENCRYPTION_KEY").fill(CRS_ENCRYPTION_KEY)
    page.get_by_role("button", name="Dry run").click()
    expect(job).to_contain_text("done — nothing was changed", timeout=30_000)
    keys_row = job.locator(".report-counts tbody tr").filter(has=page.get_by_role("rowheader", name="Keys"))
    expect(keys_row.locator("td[data-label='Found']")).to_have_text("13")
    expect(keys_row.locator("td[data-label='New']")).to_have_text("13")
    expect(job.locator(".report-remarks")).to_contain_text("imported disabled")
    assert relay.admin("GET", "/keys", expect=200) == keys_before, "a dry run writes nothing"
