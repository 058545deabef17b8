// Import from cc-bridge (its .config folder) or claude-relay-service (live Redis or a JSON dump
// + its encryption key): a dry run shows the report, the import runs it; the job's steps are
// polled until it ends, then its report and links to the keys and channels.
import { api } from '../api.js';
import { h, pageHeader, statusBadge, showErrors, clearErrors, toast } from '../ui.js';
import { control, raw, confirmAction, facts, InputError, sleep, usePageStyles } from '../forms.js';

export const title = 'Import';

const POLL_MS = 400;

export async function render(root) {
  usePageStyles();
  // Polling stops when the user leaves the page (the router calls what render returns).
  const life = { left: false };
  const progress = h('div', { class: 'import-progress', 'aria-live': 'polite' });
  const source = control({
    label: 'Import from', name: 'source', kind: 'select', value: 'cc-bridge',
    options: [['cc-bridge', 'cc-bridge (.config folder)'], ['claude-relay-service', 'claude-relay-service']],
  });
  const ccBridge = h('div', { class: 'source-fields' },
    control({ label: 'cc-bridge folder', name: 'path', placeholder: '/srv/cc-bridge/.config', help: 'The folder with config.json (its .config folder), as the server sees it.' }));
  const crs = h('div', { class: 'source-fields grid-2' },
    control({ label: 'Redis URL', name: 'redis_url', placeholder: 'redis://127.0.0.1:6379/0', help: 'A live claude-relay-service Redis…' }),
    control({ label: 'or a dump file', name: 'dump_path', placeholder: '/srv/crs/redis-dump.json', help: '…or a JSON dump of it, as the server sees it.' }),
    control({ label: 'Its ENCRYPTION_KEY', name: 'encryption_key', kind: 'password', help: 'claude-relay-service’s own key, to open its secrets. Not stored.' }));
  const showSource = () => {
    const which = source.querySelector('select').value;
    ccBridge.hidden = which !== 'cc-bridge';
    crs.hidden = which === 'cc-bridge';
  };
  source.querySelector('select').addEventListener('change', showSource);
  showSource();

  const dryRun = h('button', { type: 'submit', class: 'button button-primary', text: 'Dry run', value: 'dry' });
  const run = h('button', { type: 'button', class: 'button', text: 'Import', value: 'run' });
  const form = h('form', { class: 'import-form', novalidate: '' },
    h('p', { class: 'muted', text: 'A dry run reads everything and reports what an import would do, without changing anything. Then import.' }),
    source, ccBridge, crs,
    h('div', { class: 'form-actions' }, dryRun, run));
  form.noValidate = true;

  const buttons = [dryRun, run];
  const start = async (dry) => {
    clearErrors(form);
    let body;
    try {
      body = requestBody(form);
    } catch (error) {
      showErrors(form, error);
      return;
    }
    if (!dry) {
      const ok = await confirmAction({
        title: 'Import now?',
        message: 'The keys, channels, prices and settings of the report are written into relaybox.',
        confirmLabel: 'Import', danger: false,
      });
      if (!ok) return;
    }
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const { job } = await api('POST', '/admin/api/import', { body: { ...body, dry_run: dry } });
      await follow(job, progress, form, life, () => { if (dry) run.focus(); });
    } catch (error) {
      showErrors(form, error);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  };
  form.addEventListener('submit', (event) => { event.preventDefault(); start(true); });
  run.addEventListener('click', () => start(false));

  root.replaceChildren(pageHeader('Import'), h('section', { class: 'card' }, form), progress);
  return () => { life.left = true; };
}

function requestBody(form) {
  const source = raw(form, 'source');
  if (source === 'cc-bridge') {
    const path = raw(form, 'path');
    if (!path) throw new InputError('path', 'give the cc-bridge folder (the one with config.json)');
    return { source, path };
  }
  const body = { source };
  const redis = raw(form, 'redis_url');
  const dump = raw(form, 'dump_path');
  if (redis && dump) throw new InputError('dump_path', 'give either a Redis URL or a dump file, not both');
  if (!redis && !dump) throw new InputError('redis_url', 'give the Redis URL or a dump file');
  if (redis) body.redis_url = redis;
  else body.dump_path = dump;
  const key = raw(form, 'encryption_key');
  if (!key) throw new InputError('encryption_key', 'give claude-relay-service’s ENCRYPTION_KEY');
  body.encryption_key = key;
  return body;
}

/** Poll the job until it ends, showing its steps; then its report (or its error). */
async function follow(job, progress, form, life, onDone) {
  let status = null;
  for (;;) {
    if (life.left) return;
    status = await api('GET', `/admin/api/import/${encodeURIComponent(job)}`);
    progress.replaceChildren(jobView(status));
    if (status.state !== 'running') break;
    await sleep(POLL_MS);
  }
  if (status.state === 'failed' && status.error) {
    showErrors(form, { message: status.error.message, field: status.error.field, status: 400 });
  } else if (status.state === 'done') {
    toast(status.dry_run ? 'Dry run finished: nothing was changed' : 'Import finished', 'ok');
  }
  onDone();
}

function jobView(status) {
  const heading = status.dry_run ? 'Dry run' : 'Import';
  const stateText = { running: 'running…', done: status.dry_run ? 'done — nothing was changed' : 'done', failed: 'failed' }[status.state] || status.state;
  return h('section', { class: 'card import-job' },
    h('h2', {}, `${heading}: `, h('span', { class: `job-state job-${status.state}`, text: stateText })),
    h('ol', { class: 'steps' }, (status.steps || []).map((step) => h('li', { class: `step step-${step.state}` },
      statusBadge(step.state), ' ', h('strong', { text: step.name }),
      step.detail ? h('span', { class: 'muted', text: ` — ${step.detail}` }) : null))),
    status.error ? h('p', { class: 'form-error', role: 'alert', text: status.error.message }) : null,
    status.report ? h('div', { class: 'report' }, h('h3', { text: 'Report' }), reportView(status.report)) : null,
    status.state === 'done' && !status.dry_run
      ? h('p', { class: 'next-links' }, 'See the ', h('a', { href: '#/keys', text: 'keys' }), ' and ', h('a', { href: '#/channels', text: 'channels' }), '.')
      : null);
}

const label = (name) => name.replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, '$1 $2').replace(/^./, (c) => c.toUpperCase());

// The importers report each kind of record as counts (cc-bridge: found/imported/…,
// claude-relay-service: found/new/changed/…) plus lists of what was skipped and why.
const COUNT_ORDER = ['found', 'new', 'imported', 'changed', 'unchanged', 'removed', 'skipped', 'failed', 'target'];
const isCounts = (v) => v && typeof v === 'object' && !Array.isArray(v) && typeof v.found === 'number';
const text = (item) => (typeof item === 'string' ? item : JSON.stringify(item));

/**
 * The importers' report: one row of counts per kind of record, then what was skipped and the
 * notes, then everything else (files, source, …) as it comes.
 */
function reportView(report) {
  if (!report || typeof report !== 'object' || Array.isArray(report)) return valueView(report);
  const kinds = Object.entries(report).filter(([, v]) => isCounts(v));
  const rest = Object.entries(report).filter(([, v]) => !isCounts(v));
  const numeric = new Set(kinds.flatMap(([, v]) => Object.keys(v).filter((k) => typeof v[k] === 'number')));
  const columns = [...COUNT_ORDER.filter((c) => numeric.has(c)), ...[...numeric].filter((c) => !COUNT_ORDER.includes(c))];
  const remarks = kinds.flatMap(([kind, v]) => Object.entries(v)
    .filter(([, list]) => Array.isArray(list))
    .flatMap(([, list]) => list.map((item) => `${label(kind)}: ${text(item)}`)));
  return h('div', { class: 'report-parts' },
    kinds.length ? h('div', { class: 'table-wrap' }, h('table', { class: 'table report-counts' },
      h('thead', {}, h('tr', {}, h('th', { text: 'Records' }), columns.map((c) => h('th', { class: 'num', text: label(c) })))),
      h('tbody', {}, kinds.map(([kind, v]) => h('tr', {},
        h('th', { scope: 'row', text: label(kind) }),
        columns.map((c) => h('td', { class: 'num', 'data-label': label(c), text: v[c] ?? '—' }))))))) : null,
    remarks.length ? h('ul', { class: 'report-remarks' }, remarks.map((r) => h('li', { text: r }))) : null,
    rest.length ? valueView(Object.fromEntries(rest)) : null);
}

/** Any JSON value as nested facts, lists and tables. */
function valueView(value, depth = 0) {
  if (value === null || value === undefined) return '—';
  if (Array.isArray(value)) {
    if (!value.length) return h('span', { class: 'muted', text: 'none' });
    if (value.every((v) => v === null || typeof v !== 'object')) return value.join(', ');
    if (depth > 2) return h('code', { text: JSON.stringify(value) });
    const columns = [...new Set(value.flatMap((v) => (v && typeof v === 'object' ? Object.keys(v) : [])))];
    const shown = value.slice(0, 200);
    return h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { text: label(c) })))),
      h('tbody', {}, shown.map((row) => h('tr', {}, columns.map((c) => h('td', {}, valueView(row ? row[c] : null, depth + 1))))))),
    value.length > shown.length ? h('p', { class: 'muted', text: `and ${value.length - shown.length} more` }) : null);
  }
  if (typeof value === 'object') {
    if (depth > 3) return h('code', { text: JSON.stringify(value) });
    return facts(Object.entries(value).map(([k, v]) => [label(k), valueView(v, depth + 1)]));
  }
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}
