// Small DOM helpers shared by every page. No innerHTML with data anywhere: text goes in as text.

/** Builds an element. attrs: class, text, on: {event: fn}, style: {prop: value}, any attribute
 * (true → present, false/null/undefined → absent). children: nodes, strings, arrays, null. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    else if (name === "text") el.textContent = String(value);
    else if (name === "on") for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
    else if (name === "style") Object.assign(el.style, value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "value" && "value" in el) el.value = String(value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

const DASH = "—";

// Money arrives as a decimal string ("0.0008617"); it is rounded as text, never as a float.
function roundDecimal(whole, fraction, places) {
  const digits = (whole + fraction.padEnd(places + 1, "0")).split("").map(Number);
  const keep = whole.length + places;
  const roundUp = digits[keep] >= 5;
  const kept = digits.slice(0, keep);
  if (roundUp) {
    let i = kept.length - 1;
    while (i >= 0) {
      if (kept[i] === 9) {
        kept[i] = 0;
        i -= 1;
      } else {
        kept[i] += 1;
        break;
      }
    }
    if (i < 0) kept.unshift(1);
  }
  const text = kept.join("");
  const wholeLength = text.length - places;
  return { whole: text.slice(0, wholeLength).replace(/^0+(?=\d)/, ""), fraction: text.slice(wholeLength) };
}

function groupThousands(whole) {
  return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** "$0.0009" for small amounts (4 decimals, more until a digit shows), "$12.50" from $1 up. */
export function fmtMoney(value) {
  if (value === null || value === undefined || value === "") return DASH;
  // A number (an older API answer) is written out with the API's 9 decimals first.
  const text = typeof value === "number" ? value.toFixed(9) : String(value).trim();
  const match = /^(-?)(\d*)(?:\.(\d*))?$/.exec(text);
  if (!match) return text;
  const [, sign, rawWhole, rawFraction = ""] = match;
  const whole = rawWhole.replace(/^0+(?=\d)/, "") || "0";
  let places = 2;
  if (whole === "0") {
    const firstDigit = rawFraction.search(/[1-9]/);
    places = firstDigit < 0 ? 2 : Math.min(Math.max(4, firstDigit + 1), 9);
  }
  const rounded = roundDecimal(whole, rawFraction, places);
  const isZero = !/[1-9]/.test(rounded.whole + rounded.fraction);
  if (rounded.whole !== "0" && places > 2) return fmtMoney(`${sign}${rounded.whole}.${rounded.fraction}`);
  return `${sign && !isZero ? "-" : ""}$${groupThousands(rounded.whole)}.${rounded.fraction}`;
}

const intFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

export function fmtInt(n) {
  if (n === null || n === undefined || n === "" || Number.isNaN(Number(n))) return DASH;
  return intFormat.format(Number(n));
}

/** Compact figures for chart axes: 1.2k, 3.4M. */
export function fmtCompact(n) {
  if (n === null || n === undefined) return DASH;
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${trimZeros((n / 1e9).toFixed(1))}G`;
  if (abs >= 1e6) return `${trimZeros((n / 1e6).toFixed(1))}M`;
  if (abs >= 1e3) return `${trimZeros((n / 1e3).toFixed(1))}k`;
  return trimZeros(Number(n).toFixed(abs < 10 && abs !== Math.trunc(abs) ? 2 : 0));
}

function trimZeros(text) {
  return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
}

const pad = (n) => String(n).padStart(2, "0");

/** Local time, "2026-12-03 17:05:09". */
export function fmtTime(rfc3339) {
  if (!rfc3339) return DASH;
  const date = new Date(rfc3339);
  if (Number.isNaN(date.getTime())) return String(rfc3339);
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(
    date.getMinutes(),
  )}:${pad(date.getSeconds())}`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || ms === "") return DASH;
  const value = Number(ms);
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60_000) return `${trimZeros((value / 1000).toFixed(2))} s`;
  const minutes = Math.floor(value / 60_000);
  return `${minutes} min ${Math.round((value % 60_000) / 1000)} s`;
}

export function fmtPercent(ratio) {
  if (ratio === null || ratio === undefined) return DASH;
  return `${trimZeros((Number(ratio) * 100).toFixed(2))} %`;
}

/** A short message at the bottom of the screen; kind: "info" | "ok" | "error". */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts") || document.body;
  const item = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : null }, message);
  box.appendChild(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
  return item;
}

/** A modal dialog (Escape closes it). actions: nodes, or {label, class, onClick(close)}. */
export function openDialog({ title, body, actions = [], onClose } = {}) {
  const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
  const dialog = h("dialog", { class: "dialog", "aria-labelledby": titleId });
  const close = () => {
    if (dialog.open) dialog.close();
  };
  const closeButton = h("button", { type: "button", class: "icon-button", "aria-label": "Close", on: { click: close } }, "×");
  const actionNodes = actions.map((action) =>
    action instanceof Node
      ? action
      : h("button", { type: "button", class: action.class || "button", on: { click: () => action.onClick?.(close) } }, action.label),
  );
  dialog.append(
    h("header", { class: "dialog-head" }, h("h2", { id: titleId }, title), closeButton),
    h("div", { class: "dialog-body" }, body),
    actionNodes.length ? h("footer", { class: "dialog-actions" }, actionNodes) : null,
  );
  dialog.addEventListener("close", () => {
    dialog.remove();
    onClose?.();
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) close(); // a click on the backdrop
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  return { close, element: dialog };
}

let fieldCounter = 0;

/** A labelled input. type: text (default), password, number, email, url, datetime-local,
 * textarea, select (options: [{value, label}] or strings), checkbox. */
export function field({ label, name, type = "text", value, help, options = [], required, placeholder, attrs = {} }) {
  fieldCounter += 1;
  const id = `field-${name}-${fieldCounter}`.replace(/[^A-Za-z0-9_-]/g, "-");
  const helpId = help ? `${id}-help` : null;
  const errorId = `${id}-error`;
  const common = { id, name, required: !!required, "aria-describedby": [helpId, errorId].filter(Boolean).join(" "), ...attrs };
  let input;
  if (type === "select") {
    input = h(
      "select",
      common,
      options.map((option) => {
        const item = typeof option === "object" ? option : { value: option, label: option };
        return h("option", { value: item.value, selected: String(item.value) === String(value ?? "") }, item.label ?? item.value);
      }),
    );
  } else if (type === "textarea") {
    input = h("textarea", { ...common, rows: attrs.rows || 4, placeholder }, value ?? "");
  } else if (type === "checkbox") {
    input = h("input", { ...common, type: "checkbox", checked: !!value });
  } else {
    input = h("input", { ...common, type, value: value ?? "", placeholder, autocomplete: type === "password" ? "off" : attrs.autocomplete });
  }
  const labelNode = h("label", { for: id }, label, required ? h("span", { class: "required", "aria-hidden": "true" }, " *") : null);
  const wrapper = h(
    "div",
    { class: `field field-${type}`, dataset: { field: name } },
    type === "checkbox" ? h("div", { class: "check" }, input, labelNode) : [labelNode, input],
    help ? h("p", { class: "help", id: helpId }, help) : null,
    h("p", { class: "field-error", id: errorId, role: "alert", hidden: true }),
  );
  return wrapper;
}

/** The form's named fields as an object: checkboxes → booleans, numbers → numbers (empty → null),
 * everything else → strings. */
export function formValues(form) {
  const values = {};
  for (const element of form.elements) {
    if (!element.name || element.disabled) continue;
    if (element.type === "checkbox") values[element.name] = element.checked;
    else if (element.type === "number") values[element.name] = element.value === "" ? null : Number(element.value);
    else if (element.tagName === "SELECT" && element.multiple) values[element.name] = [...element.selectedOptions].map((o) => o.value);
    else if (element.type !== "submit" && element.type !== "button") values[element.name] = element.value;
  }
  return values;
}

/** Clears the errors shown by showErrors. */
export function clearErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) {
    node.textContent = "";
    node.hidden = true;
  }
  for (const node of form.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
  form.querySelector(":scope > .form-error")?.remove();
}

function inputNamed(form, name) {
  if (!name) return null;
  const all = [...form.elements].filter((element) => element.name);
  return (
    all.find((element) => element.name === name) ||
    all.find((element) => name.endsWith(`.${element.name}`) || element.name.endsWith(`.${name}`)) ||
    null
  );
}

/** Shows error.message next to the input named by error.field, else at the top of the form. */
export function showErrors(form, error) {
  clearErrors(form);
  const message = error?.message || String(error);
  const input = inputNamed(form, error?.field);
  const slot = input?.closest(".field")?.querySelector(".field-error");
  if (input && slot) {
    slot.textContent = message;
    slot.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  const label = error?.field ? `${error.field}: ${message}` : message;
  form.prepend(h("p", { class: "form-error", role: "alert" }, label));
}

/** "This record was changed by someone else." with a Reload button. */
export function conflictNotice(onReload) {
  return h(
    "div",
    { class: "notice notice-warn conflict", role: "alert" },
    h("span", {}, "This record was changed by someone else."),
    h("button", { type: "button", class: "button", on: { click: onReload } }, "Reload"),
  );
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Clipboard API refused (no permission, not a secure context): the older selection way.
    const area = h("textarea", { class: "offscreen", readonly: true }, text);
    document.body.appendChild(area);
    area.select();
    const done = document.execCommand("copy");
    area.remove();
    return done;
  }
}

export function copyButton(text, label = "Copy") {
  const button = h("button", { type: "button", class: "button button-small" }, label);
  button.addEventListener("click", async () => {
    const done = await copyText(typeof text === "function" ? text() : text);
    button.textContent = done ? "Copied" : "Copy failed";
    setTimeout(() => {
      button.textContent = label;
    }, 2000);
  });
  return button;
}

/** A table with a sticky header in a horizontally scrolling box. columns: [{label, value: row →
 * node|string, class}]; onRow(row) makes rows clickable and reachable with Tab + Enter;
 * stack: true lays rows out as cards on a phone; rowKey(row) → the row's data-key. The returned
 * box has addRows(rows). */
export function table({ columns, rows, empty = "Nothing here yet.", onRow, caption, stack = false, rowKey }) {
  const head = h("thead", {}, h("tr", {}, columns.map((column) => h("th", { scope: "col", class: column.class }, column.label))));
  const body = h("tbody");
  appendRows(body, columns, rows, onRow, rowKey);
  // stack: on a phone each row becomes a small card of "label value" lines.
  const tableEl = h("table", { class: ["table", onRow ? "table-clickable" : null, stack ? "table-stack" : null] }, caption ? h("caption", {}, caption) : null, head, body);
  const wrap = h("div", { class: "table-wrap" }, tableEl);
  if (!rows.length) wrap.appendChild(h("p", { class: "empty" }, empty));
  wrap.addRows = (more) => {
    wrap.querySelector(":scope > .empty")?.remove();
    appendRows(body, columns, more, onRow, rowKey);
  };
  return wrap;
}

function appendRows(body, columns, rows, onRow, rowKey) {
  for (const row of rows) {
    const tr = h(
      "tr",
      {},
      columns.map((column) => {
        const value = column.value(row);
        return h("td", { class: column.class, "data-label": column.label }, value ?? DASH);
      }),
    );
    if (rowKey) tr.dataset.key = rowKey(row);
    if (onRow) {
      tr.tabIndex = 0;
      tr.addEventListener("click", () => onRow(row, tr));
      tr.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          onRow(row, tr);
        }
      });
    }
    body.appendChild(tr);
  }
}

export function pageHeader(title, ...actions) {
  return h("header", { class: "page-header" }, h("h1", {}, title), h("div", { class: "page-actions" }, actions));
}

const BADGE_KIND = {
  up: "ok",
  ok: "ok",
  active: "ok",
  done: "ok",
  running: "info",
  pending: "muted",
  disabled: "muted",
  suspended: "warn",
  degraded: "warn",
  over_quota: "warn",
  expired: "muted",
  circuit_open: "bad",
  revoked: "bad",
  failed: "bad",
  down: "bad",
  error: "bad",
  caughtUp: "ok",
  shipping: "info",
  retrying: "warn",
  starting: "muted",
};

export function statusBadge(state) {
  const text = String(state ?? "unknown");
  const words = text.replace(/_/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  return h("span", { class: `badge badge-${BADGE_KIND[text] || "muted"}` }, words);
}

/** A muted "Loading…" placeholder. */
export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

/** An error box for a failed load. */
export function errorBox(error, onRetry) {
  return h(
    "div",
    { class: "notice notice-bad", role: "alert" },
    h("span", {}, error?.message || String(error)),
    onRetry ? h("button", { type: "button", class: "button", on: { click: onRetry } }, "Retry") : null,
  );
}
