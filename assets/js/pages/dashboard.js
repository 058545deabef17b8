// Dashboard: today's and this month's figures, usage over a range, top lists, latency, channel
// health and the config-file reload state. Every section loads on its own, so one failing API
// shows its error in its card and the rest still works. Refreshes every 30 s while visible.
import { api } from "../api.js";
import { barChart, lineChart } from "../chart.js";
import { errorBox, fmtCompact, fmtDuration, fmtInt, fmtMoney, fmtPercent, fmtTime, h, loading, pageHeader, statusBadge } from "../ui.js";

export const title = "Dashboard";

const RANGES = [
  { id: "24h", label: "24 h", hours: 24 },
  { id: "7d", label: "7 d", hours: 24 * 7 },
  { id: "30d", label: "30 d", hours: 24 * 30 },
  { id: "90d", label: "90 d", hours: 24 * 90 },
];
const REFRESH_MS = 30_000;
const TOP = 8;
const PREFS = "relaybox.dashboard"; // range and grouping only: nothing sensitive

function loadPrefs() {
  try {
    const saved = JSON.parse(localStorage.getItem(PREFS) || "{}");
    const range = RANGES.some((r) => r.id === saved.range) ? saved.range : "24h";
    const grouping = saved.grouping === "hour" || saved.grouping === "day" ? saved.grouping : null;
    return { range, grouping };
  } catch {
    return { range: "24h", grouping: null };
  }
}

function savePrefs(prefs) {
  try {
    localStorage.setItem(PREFS, JSON.stringify(prefs));
  } catch {
    // storage may be off (private mode): preferences then last for the visit
  }
}

const pad = (n) => String(n).padStart(2, "0");
const hourLabel = (ms) => {
  const d = new Date(ms);
  return `${pad(d.getHours())}:00`;
};
const dayLabel = (ms) => {
  const d = new Date(ms);
  return `${d.getMonth() + 1}/${d.getDate()}`;
};
// Axis ticks need two significant digits ($0.00015 next to $0.0002), not the table's rounding.
function moneyAxis(value) {
  if (!(value > 0 && value < 1)) return fmtMoney(value.toFixed(9));
  const digits = Math.min(9, Math.max(2, 1 - Math.floor(Math.log10(value))));
  return `$${value.toFixed(digits).replace(/0+$/, "")}`;
}
// Figures drawn in a chart may be floats (a chart is a picture); sums shown as text never are.
const toNumber = (text) => Number(text) || 0;

function card(titleText, ...children) {
  return h("section", { class: "card" }, h("h2", {}, titleText), children);
}

function figure(label, value, sub, id) {
  return h(
    "div",
    { class: "card figure", "data-figure": id },
    h("p", { class: "label" }, label),
    h("p", { class: "value" }, value),
    sub ? h("p", { class: "sub" }, sub) : null,
  );
}

function summaryCards(summary) {
  return h(
    "div",
    { class: "cards", "aria-label": "Summary" },
    figure("Requests today", fmtInt(summary.today_requests), `${fmtInt(summary.today_errors)} errors`, "today_requests"),
    figure("Tokens today", fmtInt(summary.today_tokens), null, "today_tokens"),
    figure("Cost today", fmtMoney(summary.today_cost), null, "today_cost"),
    figure("Error rate today", fmtPercent(summary.today_error_rate), null, "today_error_rate"),
    figure("Requests this month", fmtInt(summary.month_requests), `${fmtInt(summary.month_tokens)} tokens`, "month_requests"),
    figure("Cost this month", fmtMoney(summary.month_cost), `error rate ${fmtPercent(summary.month_error_rate)}`, "month_cost"),
    figure("Keys", `${fmtInt(summary.keys_active)} active`, `${fmtInt(summary.keys_total)} in all`, "keys"),
    figure(
      "Channels",
      `${fmtInt(summary.channels_up)} up`,
      `${fmtInt(summary.channels_down)} down · ${fmtInt(summary.channels_total)} in all`,
      "channels",
    ),
  );
}

function timeKey(row, grouping) {
  return grouping === "hour" ? Date.parse(row.hour) : Date.parse(`${row.day}T00:00:00Z`);
}

function timeCharts(usage, grouping) {
  const xFormat = grouping === "hour" ? hourLabel : dayLabel;
  const points = (pick) => usage.rows.map((row) => [timeKey(row, grouping), pick(row)]);
  return h(
    "div",
    { class: "grid-2" },
    card(
      "Requests",
      lineChart({
        label: "Requests over time",
        series: [
          { name: "requests", points: points((row) => row.requests) },
          { name: "errors", points: points((row) => row.errors) },
        ],
        yFormat: fmtCompact,
        xFormat,
        integer: true,
      }),
    ),
    card(
      "Cost",
      lineChart({ label: "Cost over time", series: [{ name: "cost", points: points((row) => toNumber(row.cost)) }], yFormat: moneyAxis, xFormat }),
    ),
    card(
      "Tokens",
      lineChart({
        label: "Tokens over time",
        series: [
          { name: "input", points: points((row) => row.input_tokens) },
          { name: "output", points: points((row) => row.output_tokens) },
          { name: "cache read", points: points((row) => row.cache_read_tokens) },
          { name: "cache write", points: points((row) => row.cache_creation_tokens) },
        ],
        yFormat: fmtCompact,
        xFormat,
        integer: true,
      }),
    ),
    card("Totals in this range", totalsList(usage.totals)),
  );
}

function ms(value) {
  return value === null || value === undefined ? "—" : fmtDuration(value);
}

function totalsList(totals) {
  const errorRate = totals.requests ? totals.errors / totals.requests : null;
  const rows = [
    ["Requests", fmtInt(totals.requests)],
    ["Errors", `${fmtInt(totals.errors)} (${fmtPercent(errorRate)})`],
    ["Tokens", fmtInt(totals.total_tokens)],
    ["Cost", fmtMoney(totals.cost)],
    ["Latency p50 / p95", `${ms(totals.latency_ms?.p50)} / ${ms(totals.latency_ms?.p95)}`],
    ["Time to first token p50 / p95", `${ms(totals.ttft_ms?.p50)} / ${ms(totals.ttft_ms?.p95)}`],
  ];
  return h("dl", { class: "details", "data-section": "totals" }, rows.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
}

function topBars(rows, labelOf, chartLabel) {
  const sorted = [...rows].sort((a, b) => b.requests - a.requests).slice(0, TOP);
  return barChart({
    label: chartLabel,
    bars: sorted.map((row) => ({ label: labelOf(row) || "(none)", value: row.requests })),
    format: fmtInt,
  });
}

async function channelHealth() {
  const { channels } = await api("GET", "/admin/api/channels");
  const quotas = new Map();
  const withQuota = channels.filter((channel) => channel.quotaType && Number(channel.quotaLimit) > 0).slice(0, 20);
  await Promise.all(
    withQuota.map(async (channel) => {
      try {
        const usage = await api("GET", `/admin/api/channels/${encodeURIComponent(channel.id)}/usage`);
        if (usage?.quota) quotas.set(channel.id, usage.quota);
      } catch {
        // the quota column stays empty; the health state is what matters here
      }
    }),
  );
  if (!channels.length) return h("p", { class: "empty" }, "No channels yet. ", h("a", { href: "#/channels" }, "Add one."));
  return h(
    "ul",
    { class: "health-list" },
    channels.map((channel) => {
      const state = channel.health?.state || channel.status || "unknown";
      const quota = quotas.get(channel.id);
      const quotaText = quota
        ? quota.kind === "credit"
          ? `${fmtMoney(quota.used.toFixed(9))} of ${fmtMoney(quota.limit.toFixed(9))}`
          : `${fmtInt(quota.used)} of ${fmtInt(quota.limit)} requests`
        : null;
      return h(
        "li",
        {},
        h("span", { class: "health-name" }, h("strong", {}, channel.name), h("span", { class: "muted" }, ` ${channel.pool}`)),
        statusBadge(state),
        channel.health?.detail ? h("span", { class: "muted health-detail" }, channel.health.detail) : null,
        quotaText ? h("span", { class: "health-quota" }, `quota ${quotaText}`) : null,
      );
    }),
  );
}

function reloadState(status) {
  const files = Object.entries(status.files || {});
  const error = status.last_error || status.lastError;
  return h(
    "div",
    { class: "reload-state" },
    error
      ? h("div", { class: "notice notice-bad", role: "alert" }, `Last reload failed: ${error.file}${error.line ? `:${error.line}` : ""}${error.field ? ` (${error.field})` : ""}: ${error.reason}`)
      : h("div", { class: "notice notice-ok" }, "Config files: applied, no error."),
    h(
      "dl",
      { class: "details" },
      h("dt", {}, "Last reload"),
      h("dd", {}, fmtTime(status.lastReloadAt || status.last_reload_at)),
      h("dt", {}, "Polling"),
      h("dd", {}, `every ${fmtDuration(status.pollIntervalMs || status.poll_interval_ms)}${status.fileEvents || status.file_events ? " + file events" : ""}`),
      files.map(([name, file]) => [
        h("dt", {}, name),
        h("dd", {}, file.present ? (file.error ? `error: ${file.error.reason}` : `applied ${fmtTime(file.appliedAt || file.applied_at)}`) : "not present"),
      ]),
    ),
  );
}

/** Fills `slot` with what `build` returns, or an error box; keeps the old content while loading. */
async function fill(slot, build) {
  try {
    const content = await build();
    slot.replaceChildren(content);
  } catch (error) {
    if (error?.status === 401) return;
    slot.replaceChildren(errorBox(error));
  }
}

export async function render(root) {
  const prefs = loadPrefs();
  const updated = h("span", { class: "muted", "aria-live": "polite" });
  const rangeButtons = RANGES.map((range) =>
    h("button", { type: "button", "aria-pressed": String(range.id === prefs.range), dataset: { range: range.id } }, range.label),
  );
  const grouping = h(
    "select",
    { id: "dashboard-grouping" },
    h("option", { value: "auto" }, "auto"),
    h("option", { value: "hour" }, "by hour"),
    h("option", { value: "day" }, "by day"),
  );
  grouping.value = prefs.grouping || "auto";

  const slots = {
    summary: h("div", {}, loading()),
    time: h("div", {}, loading()),
    keys: h("div", {}, loading()),
    models: h("div", {}, loading()),
    channels: h("div", {}, loading()),
    health: h("div", {}, loading()),
    reload: h("div", {}, loading()),
  };

  root.append(
    pageHeader(
      "Dashboard",
      updated,
      h("div", { class: "segmented", role: "group", "aria-label": "Range" }, rangeButtons),
      h("label", { class: "offscreen", for: "dashboard-grouping" }, "Group the charts by"),
      grouping,
      h("button", { type: "button", class: "button", on: { click: () => refresh() } }, "Refresh"),
    ),
    slots.summary,
    slots.time,
    h("div", { class: "grid-3" }, card("Top keys", slots.keys), card("Top models", slots.models), card("Top channels", slots.channels)),
    h("div", { class: "grid-2" }, card("Channel health", slots.health), card("Config files", slots.reload)),
  );

  const rangeParams = () => {
    const range = RANGES.find((r) => r.id === prefs.range) || RANGES[0];
    const to = new Date();
    const from = new Date(to.getTime() - range.hours * 3_600_000);
    const group = prefs.grouping || (range.hours <= 24 ? "hour" : "day");
    return { from: from.toISOString(), to: to.toISOString(), group };
  };

  let running = null;
  let again = false; // a refresh asked for while one runs (a new range) runs right after it
  async function refresh() {
    if (running) {
      again = true;
      return running;
    }
    const { from, to, group } = rangeParams();
    const usage = (groupBy) => api("GET", "/admin/api/usage", { query: { from, to, group_by: groupBy } });
    running = Promise.all([
      fill(slots.summary, async () => summaryCards(await api("GET", "/admin/api/summary"))),
      fill(slots.time, async () => timeCharts(await usage(group), group)),
      fill(slots.keys, async () => topBars((await usage("key")).rows, (row) => row.key_name || row.key_id, "Top keys by requests")),
      fill(slots.models, async () => topBars((await usage("model")).rows, (row) => row.model, "Top models by requests")),
      fill(slots.channels, async () =>
        topBars((await usage("channel")).rows, (row) => row.channel_name || row.channel_id, "Top channels by requests"),
      ),
      fill(slots.health, channelHealth),
      fill(slots.reload, async () => reloadState(await api("GET", "/admin/api/reload"))),
    ]).finally(() => {
      running = null;
      const now = new Date();
      updated.textContent = `Updated ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
      if (again && root.isConnected) {
        again = false;
        refresh();
      }
    });
    return running;
  }

  for (const button of rangeButtons) {
    button.addEventListener("click", () => {
      prefs.range = button.dataset.range;
      for (const other of rangeButtons) other.setAttribute("aria-pressed", String(other === button));
      savePrefs(prefs);
      refresh();
    });
  }
  grouping.addEventListener("change", () => {
    prefs.grouping = grouping.value === "auto" ? null : grouping.value;
    savePrefs(prefs);
    refresh();
  });

  let lastRefresh = Date.now();
  const tick = () => {
    if (!root.isConnected) return;
    if (document.visibilityState === "visible" && Date.now() - lastRefresh >= REFRESH_MS - 500) {
      lastRefresh = Date.now();
      refresh();
    }
  };
  const timer = setInterval(tick, REFRESH_MS);
  const onVisible = () => {
    if (document.visibilityState === "visible" && Date.now() - lastRefresh >= REFRESH_MS) tick();
  };
  document.addEventListener("visibilitychange", onVisible);

  await refresh();
  return () => {
    clearInterval(timer);
    document.removeEventListener("visibilitychange", onVisible);
  };
}
