// Logs: the log search as a table. The filters live in the hash query, so a filtered view is a
// link; "Load more" follows the API's cursor; a row opens its whole record in a dialog.
import { api } from "../api.js";
import { replaceQuery } from "../app.js";
import { clearErrors, errorBox, field, fmtDuration, fmtInt, fmtMoney, fmtTime, h, loading, openDialog, pageHeader, showErrors, statusBadge, table } from "../ui.js";

export const title = "Logs";

const FILTERS = ["from", "to", "key", "model", "channel", "endpoint", "status", "stream", "session", "error"];
const ENDPOINTS = [
  "/v1/messages",
  "/v1/messages/count_tokens",
  "/v1/chat/completions",
  "/v1/responses",
  "/v1beta/models:generateContent",
  "/v1beta/models:streamGenerateContent",
  "/v1beta/models:countTokens",
  "/v1/models",
];
const PAGE_SIZE = 50;

const pad = (n) => String(n).padStart(2, "0");

/** RFC 3339 → the value of a datetime-local input (local time). */
function toLocalInput(rfc3339) {
  const date = new Date(rfc3339 || "");
  if (Number.isNaN(date.getTime())) return "";
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A datetime-local value (local time) → RFC 3339 in UTC; "" stays "". */
function fromLocalInput(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : date.toISOString();
}

function filterForm(params, keys) {
  const keyOptions = [{ value: "", label: "any key" }, ...keys.map((key) => ({ value: key.id, label: key.name || key.id }))];
  const current = params.get("key") || "";
  if (current && !keys.some((key) => key.id === current || key.name === current)) keyOptions.push({ value: current, label: current });
  const active = FILTERS.filter((name) => params.get(name)).length;
  const wide = window.matchMedia("(min-width: 761px)").matches;
  const form = h(
    "form",
    { class: "card filters", "aria-label": "Filters" },
    h(
      "details",
      { open: wide },
      h("summary", {}, "Filters", active ? h("span", { class: "muted" }, ` · ${active} active`) : null),
      h(
      "div",
      { class: "form-grid" },
      field({ label: "From", name: "from", type: "datetime-local", value: toLocalInput(params.get("from")) }),
      field({ label: "To", name: "to", type: "datetime-local", value: toLocalInput(params.get("to")) }),
      field({ label: "Key", name: "key", type: "select", value: current, options: keyOptions }),
      field({ label: "Model", name: "model", value: params.get("model") || "" }),
      field({ label: "Channel", name: "channel", value: params.get("channel") || "", placeholder: "id or name" }),
      field({
        label: "Endpoint",
        name: "endpoint",
        type: "select",
        value: params.get("endpoint") || "",
        options: [{ value: "", label: "any endpoint" }, ...ENDPOINTS],
      }),
      field({
        label: "Status",
        name: "status",
        type: "select",
        value: params.get("status") || "",
        options: [
          { value: "", label: "any status" },
          { value: "2xx", label: "2xx success" },
          { value: "4xx", label: "4xx client error" },
          { value: "5xx", label: "5xx server error" },
          ...(params.get("status") && !/^[245]xx$/.test(params.get("status")) ? [params.get("status")] : []),
        ],
      }),
      field({
        label: "Stream",
        name: "stream",
        type: "select",
        value: params.get("stream") || "",
        options: [
          { value: "", label: "both" },
          { value: "true", label: "streamed" },
          { value: "false", label: "not streamed" },
        ],
      }),
      field({ label: "Session", name: "session", value: params.get("session") || "" }),
      field({ label: "Error text", name: "error", value: params.get("error") || "" }),
    ),
    h(
      "div",
      { class: "form-actions" },
      h("button", { type: "submit", class: "button button-primary" }, "Search"),
      h("button", { type: "reset", class: "button" }, "Clear filters"),
    ),
    ),
  );
  return form;
}

function paramsFromForm(form) {
  const params = new URLSearchParams();
  for (const name of FILTERS) {
    const input = form.elements.namedItem(name);
    if (!input) continue;
    let value = input.value.trim();
    if (input.type === "datetime-local") value = fromLocalInput(value);
    if (value) params.set(name, value);
  }
  return params;
}

function statusCell(row) {
  const outcome = row.status === "success" ? null : statusBadge(row.status);
  const code = row.http_status;
  const kind = code >= 500 ? "bad" : code >= 400 ? "warn" : code >= 200 ? "ok" : "muted";
  return h("span", { class: "status-cell" }, h("span", { class: `badge badge-${kind}` }, String(code || "—")), outcome ? " " : null, outcome);
}

function columns(keyNames) {
  return [
    { label: "Time", value: (row) => fmtTime(row.initial_time) },
    { label: "Key", value: (row) => keyNames.get(row.client_id) || row.client_id || "—" },
    { label: "Model", value: (row) => row.model || "—" },
    { label: "Channel", value: (row) => row.channel_name || row.channel_id || "—" },
    { label: "Endpoint", value: (row) => h("code", {}, row.endpoint) },
    { label: "Status", value: statusCell },
    { label: "Tokens", class: "num", value: (row) => fmtInt(row.total_tokens) },
    { label: "Cost", class: "num", value: (row) => (row.unpriced ? "unpriced" : fmtMoney(row.price)) },
    { label: "Duration", class: "num", value: (row) => fmtDuration(row.duration_ms) },
  ];
}

function prettyJson(text) {
  if (text === null || text === undefined || text === "") return null;
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

const DETAIL_FIELDS = [
  ["id", "ID"],
  ["status", "Outcome"],
  ["http_status", "HTTP status"],
  ["initial_time", "Started", fmtTime],
  ["first_token_time", "First token", fmtTime],
  ["complete_time", "Completed", fmtTime],
  ["duration_ms", "Duration", fmtDuration],
  ["client_id", "Key"],
  ["session_id", "Session"],
  ["endpoint", "Endpoint"],
  ["stream", "Stream", (v) => (v ? "yes" : "no")],
  ["model", "Model"],
  ["response_model", "Response model"],
  ["channel_id", "Channel ID"],
  ["channel_name", "Channel"],
  ["provider", "Provider"],
  ["provider_name", "Provider name"],
  ["input_tokens", "Input tokens", fmtInt],
  ["output_tokens", "Output tokens", fmtInt],
  ["cache_creation_input_tokens", "Cache write tokens", fmtInt],
  ["cache_read_input_tokens", "Cache read tokens", fmtInt],
  ["total_tokens", "Total tokens", fmtInt],
  ["price", "Cost", fmtMoney],
  ["input_cost", "Input cost", fmtMoney],
  ["output_cost", "Output cost", fmtMoney],
  ["cache_creation_cost", "Cache write cost", fmtMoney],
  ["cache_read_cost", "Cache read cost", fmtMoney],
  ["unpriced", "Unpriced", (v) => (v ? "yes: the model has no price" : "no")],
];
const BLOCK_FIELDS = [
  ["error", "Error"],
  ["upstream_error", "Upstream error"],
  ["failover_info", "Failover info"],
];

function detailBody(row, keyNames) {
  const known = new Set([...DETAIL_FIELDS, ...BLOCK_FIELDS].map(([name]) => name));
  const items = DETAIL_FIELDS.filter(([name]) => name in row).map(([name, label, format]) => {
    let value = row[name];
    if (name === "client_id" && keyNames.get(value)) value = `${keyNames.get(value)} (${value})`;
    else if (format) value = format(value);
    return [h("dt", {}, label), h("dd", { "data-field": name }, value === "" || value === null || value === undefined ? "—" : String(value))];
  });
  // Fields a newer server adds are shown too, as they come.
  for (const [name, value] of Object.entries(row)) {
    if (known.has(name)) continue;
    items.push([h("dt", {}, name), h("dd", { "data-field": name }, typeof value === "object" ? JSON.stringify(value) : String(value ?? "—"))]);
  }
  const blocks = BLOCK_FIELDS.map(([name, label]) => {
    const text = prettyJson(row[name]);
    const block = h("section", { class: "detail-block", "data-field": name }, h("h3", {}, label), text ? h("pre", { class: "code-block" }, text) : h("p", { class: "muted" }, "none"));
    return { block, filled: !!text };
  });
  // What went wrong comes first; empty blocks go last.
  return [
    blocks.filter((b) => b.filled).map((b) => b.block),
    h("dl", { class: "details details-wide" }, items),
    blocks.filter((b) => !b.filled).map((b) => b.block),
  ];
}

async function openDetail(row, keyNames) {
  const body = h("div", {}, loading());
  openDialog({ title: "Request details", body });
  try {
    const full = await api("GET", `/admin/api/logs/${encodeURIComponent(row.id)}`);
    body.replaceChildren(...detailBody(full, keyNames).flat());
  } catch (error) {
    body.replaceChildren(errorBox(error));
  }
}

export async function render(root, params) {
  let keys = [];
  try {
    keys = (await api("GET", "/admin/api/keys")).keys || [];
  } catch (error) {
    if (error?.status === 401) return;
    keys = []; // names are a nicety: the search still works with ids
  }
  const keyNames = new Map(keys.map((key) => [key.id, key.name]));
  const form = filterForm(params, keys);
  const results = h("div", { class: "results" });
  const more = h("button", { type: "button", class: "button", hidden: true }, "Load more");
  const count = h("span", { class: "muted", "aria-live": "polite" });
  root.append(pageHeader("Logs", count), form, results, h("div", { class: "form-actions" }, more));

  let cursor = null;
  let shown = 0;
  let tableEl = null;
  let search = paramsFromForm(form);

  async function load(next) {
    more.disabled = true;
    const query = new URLSearchParams(search);
    query.set("limit", String(PAGE_SIZE));
    if (next) query.set("cursor", next);
    else results.replaceChildren(loading());
    try {
      const page = await api("GET", "/admin/api/logs", { query });
      clearErrors(form);
      if (!next) {
        shown = 0;
        tableEl = table({ columns: columns(keyNames), rows: page.logs, empty: "No request matches these filters.", onRow: (row) => openDetail(row, keyNames), stack: true, rowKey: (row) => row.id });
        results.replaceChildren(tableEl);
      } else {
        tableEl.addRows(page.logs);
      }
      shown += page.logs.length;
      cursor = page.next_cursor || null;
      more.hidden = !cursor;
      count.textContent = `${fmtInt(shown)} ${shown === 1 ? "request" : "requests"} shown${cursor ? ", more below" : ""}`;
    } catch (error) {
      if (error?.status === 401) return;
      if (error?.field && FILTERS.includes(error.field)) {
        showErrors(form, error);
        results.replaceChildren();
      } else if (next) {
        results.appendChild(errorBox(error));
      } else {
        results.replaceChildren(errorBox(error, () => load(null)));
      }
    } finally {
      more.disabled = false;
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    search = paramsFromForm(form);
    replaceQuery(search);
    load(null);
  });
  form.addEventListener("reset", () => {
    // After the browser's reset (which restores the initial values), empty every filter.
    setTimeout(() => {
      for (const name of FILTERS) {
        const input = form.elements.namedItem(name);
        if (input) input.value = "";
      }
      search = new URLSearchParams();
      replaceQuery(search);
      clearErrors(form);
      load(null);
    });
  });
  more.addEventListener("click", () => load(cursor));

  await load(null);
}
