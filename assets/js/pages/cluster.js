// Cluster: this instance's part in a cluster (GET /admin/api/cluster): the config copy, the
// instances, jobs, budget sync and log shipping. Single mode says so.
import { api } from "../api.js";
import { fmtDuration, fmtInt, fmtTime, h, pageHeader, statusBadge, table } from "../ui.js";

export const title = "Cluster";

const dash = (value) => (value === null || value === undefined || value === "" ? "—" : String(value));
const ago = (ms) => (ms === null || ms === undefined ? "—" : `${fmtDuration(ms)} ago`);

function details(rows) {
  return h(
    "dl",
    { class: "details" },
    rows.filter(Boolean).map(([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "—")]),
  );
}

function card(titleText, ...children) {
  return h("section", { class: "card" }, h("h2", {}, titleText), children);
}

function singleMode() {
  return card(
    "Single instance",
    h("p", { "data-mode": "single" }, "This relaybox runs in single mode: its configuration and logs live in its own data folder, and no other instance shares them."),
    h(
      "p",
      { class: "muted" },
      "Cluster mode starts with ",
      h("code", {}, "relaybox serve --postgres-url …"),
      ": instances then share the configuration, budgets and request logs through PostgreSQL.",
    ),
  );
}

function instancesTable(report) {
  const nodes = report.nodes || {};
  const head = report.config?.headRevision ?? report.config?.appliedRevision;
  return table({
    caption: `${fmtInt(nodes.liveInstances)} live`,
    columns: [
      { label: "Instance", value: (row) => h("span", {}, h("code", {}, row.instanceId), row.instanceId === report.instanceId ? h("span", { class: "muted" }, " (this one)") : null) },
      { label: "Host", value: (row) => row.hostname },
      { label: "Listen", value: (row) => h("code", {}, row.listen) },
      { label: "Version", value: (row) => row.version },
      { label: "State", value: (row) => statusBadge(row.stopped ? "stopped" : row.live ? "up" : "down") },
      { label: "Applied revision", class: "num", value: (row) => fmtInt(row.appliedRev) },
      { label: "Lag", class: "num", value: (row) => (head === undefined || row.appliedRev === undefined ? "—" : `${fmtInt(Math.max(0, head - row.appliedRev))} rev`) },
      { label: "Last seen", value: (row) => ago(row.lastSeenMsAgo) },
      { label: "Started", value: (row) => fmtTime(row.startedAt) },
    ],
    rows: nodes.instances || [],
    empty: "No instance has reported yet.",
  });
}

function clusterMode(report) {
  const config = report.config || {};
  const nodes = report.nodes || {};
  const shipping = report.logShipping;
  const budgets = report.budgets;
  const lag = config.headRevision !== undefined && config.appliedRevision !== undefined ? config.headRevision - config.appliedRevision : null;
  return [
    h(
      "div",
      { class: "cards" },
      h("div", { class: "card figure" }, h("p", { class: "label" }, "Live instances"), h("p", { class: "value" }, fmtInt(nodes.liveInstances))),
      h("div", { class: "card figure" }, h("p", { class: "label" }, "Applied revision"), h("p", { class: "value" }, fmtInt(config.appliedRevision)), h("p", { class: "sub" }, `head ${fmtInt(config.headRevision)}`)),
      h("div", { class: "card figure" }, h("p", { class: "label" }, "Config lag"), h("p", { class: "value" }, lag === null ? "—" : `${fmtInt(lag)} rev`)),
      h("div", { class: "card figure" }, h("p", { class: "label" }, "Log backlog"), h("p", { class: "value" }, shipping ? fmtInt(shipping.backlogRows) : "—"), h("p", { class: "sub" }, shipping ? `rows to ship · ${shipping.state}` : "not shipping")),
    ),
    card("Instances", instancesTable(report)),
    h(
      "div",
      { class: "grid-2" },
      card(
        "This instance",
        details([
          ["Instance", h("code", {}, dash(report.instanceId))],
          ["PostgreSQL", h("code", {}, dash(report.postgres))],
          ["Cluster", h("code", {}, dash(config.clusterId))],
          ["Confirmed", fmtTime(config.confirmedAt)],
          config.unreachableSince ? ["Unreachable since", fmtTime(config.unreachableSince)] : null,
          config.lastError ? ["Last error", config.lastError] : null,
          ["Resyncs", `${fmtInt(config.resyncs)}${config.lastResync ? ` (last ${fmtTime(config.lastResync)})` : ""}`],
          ["Clock skew", nodes.clockSkewMs === null || nodes.clockSkewMs === undefined ? "—" : `${fmtInt(nodes.clockSkewMs)} ms${nodes.clockSkewAlarm ? " (too far off)" : ""}`],
          ["Heartbeat", ago(nodes.lastHeartbeatMsAgo)],
          nodes.lastError ? ["Heartbeat error", nodes.lastError] : null,
        ]),
      ),
      card(
        "Log shipping",
        shipping
          ? details([
              ["State", statusBadge(shipping.state)],
              ["Backlog", `${fmtInt(shipping.backlogRows)} rows`],
              ["Oldest unshipped", fmtTime(shipping.oldestUnshippedAt)],
              ["Last shipped", fmtTime(shipping.lastShippedAt)],
              ["Shipped", `${fmtInt(shipping.shippedRows)} rows`],
              shipping.lastError ? ["Last error", `${shipping.lastError} (${fmtInt(shipping.consecutiveErrors)} in a row)`] : null,
            ])
          : h("p", { class: "muted" }, "Not started yet."),
      ),
      card(
        "Budget sync",
        budgets
          ? details([
              ["Last sync", fmtTime(budgets.lastSync)],
              ["Unpublished rows", fmtInt(budgets.unpublishedRows)],
              ["Other instances' rows", fmtInt(budgets.remoteRows)],
              budgets.lastError ? ["Last error", `${budgets.lastError} (${fmtTime(budgets.lastErrorAt)})`] : null,
            ])
          : h("p", { class: "muted" }, "Not started yet."),
      ),
      card(
        "Jobs",
        table({
          columns: [
            { label: "Job", value: (job) => job.name },
            { label: "Held here", value: (job) => (job.held ? `yes (epoch ${job.epoch})` : "no") },
            { label: "Runs", class: "num", value: (job) => fmtInt(job.runs) },
            { label: "Last run", value: (job) => ago(job.lastRunMsAgo) },
            { label: "Last error", value: (job) => dash(job.lastError) },
          ],
          rows: report.jobs || [],
          empty: "No singleton job runs here.",
        }),
      ),
    ),
  ];
}

export async function render(root) {
  const report = await api("GET", "/admin/api/cluster");
  const mode = report.mode === "cluster" ? "cluster" : "single";
  root.append(pageHeader("Cluster", statusBadge(mode === "cluster" ? "cluster mode" : "single mode")), ...(mode === "cluster" ? clusterMode(report) : [singleMode()]));
}
