// Client keys: the list with today's usage, create (the key shown once), edit limits,
// allowlists and expiry, disable/enable, revoke, delete, and a per-key usage page
// (`#/keys?id=…`) with a chart of the last 30 days.
import { api } from '../api.js';
import {
  h, fmtMoney, fmtInt, fmtCompact, fmtTime, toast, openDialog, table, pageHeader, statusBadge, copyButton,
  conflictNotice,
} from '../ui.js';
import { lineChart } from '../chart.js';
import {
  control, raw, numberOf, listOf, formDialog, confirmAction, facts, isStale, InputError,
  usePageStyles,
} from '../forms.js';

export const title = 'Keys';

const WINDOWS = [
  ['tokensPerWindow', 'Tokens per window'],
  ['requestsPerWindow', 'Requests per window'],
  ['costPerWindow', 'Cost per window (USD)'],
];
const ENDPOINTS = ['messages', 'responses', 'gemini', 'chat'];
const ALLOW = [
  ['models', 'Models', 'globs such as claude-*'],
  ['userAgents', 'User agents', 'substrings the client must send'],
];
// The per-pool channel allowlists hold channel ids; the form offers the pool's channels by name.
const CHANNEL_ALLOW = [
  ['messages', 'channelsMessages', 'Channels: messages pool'],
  ['responses', 'channelsResponses', 'Channels: responses pool'],
  ['gemini', 'channelsGemini', 'Channels: gemini pool'],
  ['chat', 'channelsChat', 'Channels: chat pool'],
];

const path = (id) => `/admin/api/keys/${encodeURIComponent(id)}`;

export async function render(root, params) {
  usePageStyles();
  const id = params && params.get('id');
  if (id) return renderDetail(root, id);
  return renderList(root);
}

function isExpired(key) {
  const expiry = key.expiry;
  if (!expiry) return false;
  if (expiry.mode === 'fixedAt') return Date.parse(expiry.expiresAt) <= Date.now();
  if (expiry.mode === 'afterFirstUse' && key.firstUsedAt) {
    return Date.parse(key.firstUsedAt) + expiry.days * 86400000 <= Date.now();
  }
  return false;
}

function badges(key) {
  return h('span', { class: 'badges' },
    statusBadge(key.status),
    isExpired(key) ? statusBadge('expired') : null,
    key.isAdmin ? h('span', { class: 'badge badge-info', text: 'admin' }) : null);
}

/** The key's first characters as stored (already ending in "…"). */
function shownPrefix(key) {
  const prefix = key.displayPrefix || '';
  return prefix.endsWith('…') ? prefix : `${prefix}…`;
}

function expiryText(key) {
  const expiry = key.expiry;
  if (!expiry) return 'never';
  if (expiry.mode === 'fixedAt') return fmtTime(expiry.expiresAt);
  return `${expiry.days} d after first use`;
}

function limitsText(limits) {
  const parts = [];
  if (limits.requestsPerMinute) parts.push(`${fmtInt(limits.requestsPerMinute)}/min`);
  if (limits.concurrentRequests) parts.push(`${fmtInt(limits.concurrentRequests)} at once`);
  if (limits.costPerDay) parts.push(`${fmtMoney(String(limits.costPerDay))}/day`);
  if (limits.costTotal) parts.push(`${fmtMoney(String(limits.costTotal))} total`);
  for (const [name, label] of WINDOWS) {
    const w = limits[name];
    if (w) parts.push(`${label.split(' ')[0].toLowerCase()} ${w.limit}/${w.windowSeconds}s`);
  }
  return parts.length ? parts.join(', ') : 'none';
}

/** A slot at the top of the page where a stale action's conflict notice appears. */
function noticeSlot() {
  return h('div', { class: 'page-notice' });
}

async function act(slot, work, reload) {
  slot.replaceChildren();
  try {
    await work();
    await reload();
  } catch (error) {
    if (isStale(error)) slot.replaceChildren(conflictNotice(reload));
    else toast(error.message || String(error), 'error');
  }
}

// ---- list -------------------------------------------------------------------------------------

async function renderList(root) {
  const slot = noticeSlot();
  const body = h('div', { class: 'page-body' }, h('p', { class: 'muted', text: 'Loading…' }));
  const reload = () => renderList(root);
  // Key names are unique: said next to the name before anything is sent.
  const taken = new Map();
  root.replaceChildren(
    pageHeader('Keys', h('button', { class: 'button button-primary', text: 'New key', on: { click: () => createKey(reload, taken) } })),
    slot,
    body,
  );
  const [{ keys }, usage] = await Promise.all([
    api('GET', '/admin/api/keys'),
    api('GET', '/admin/api/usage', { query: { group_by: 'key' } }).catch(() => null),
  ]);
  const today = new Map((usage ? usage.rows : []).map((row) => [row.key_id, row]));
  for (const k of keys) taken.set(k.name, k.id);
  keys.sort((a, b) => a.name.localeCompare(b.name));
  const active = keys.filter((k) => k.status === 'active' && !isExpired(k)).length;
  body.replaceChildren(
    h('p', { class: 'muted', text: `${fmtInt(keys.length)} keys, ${fmtInt(active)} active. Requests and cost: last 24 h.` }),
    table({
      columns: [
        { label: 'Name', class: 'wrap-text', value: (k) => h('span', {}, h('a', { href: `#/keys?id=${encodeURIComponent(k.id)}`, text: k.name }), h('div', {}, h('code', { class: 'muted small', text: shownPrefix(k) }))) },
        { label: 'Status', value: badges },
        { label: 'Requests', class: 'num', value: (k) => (usage ? fmtInt(today.get(k.id)?.requests || 0) : '—') },
        { label: 'Cost', class: 'num', value: (k) => (usage ? fmtMoney(today.get(k.id)?.cost || '0') : '—') },
        { label: 'Limits', class: 'wrap-text', value: (k) => limitsText(k.limits || {}) },
        { label: 'Expires', class: 'wrap-text', value: expiryText },
        { label: '', class: 'actions', value: (k) => keyActions(k, slot, reload, taken) },
      ],
      rows: keys,
      empty: 'No keys yet. Create one to let a client use the relay.',
    }),
  );
}

function keyActions(key, slot, reload, taken, afterDelete = reload) {
  const button = (text, click, cls = '') => h('button', { class: `button button-small ${cls}`.trim(), text, on: { click } });
  const setStatus = (status) => act(slot, () => api('PATCH', path(key.id), { body: { status }, version: key.version }), reload);
  return h('span', { class: 'row-actions' },
    key.status !== 'revoked' ? button('Edit', () => editKey(key, reload, taken)) : null,
    key.status === 'active' ? button('Disable', () => setStatus('disabled')) : null,
    key.status === 'disabled' ? button('Enable', () => setStatus('active')) : null,
    key.status !== 'revoked' ? button('Revoke', async () => {
      const ok = await confirmAction({
        title: `Revoke "${key.name}"?`,
        message: 'Clients using this key are refused from now on. A revoked key cannot be enabled again.',
        confirmLabel: 'Revoke',
      });
      if (ok) setStatus('revoked');
    }, 'button-danger') : null,
    button('Delete', async () => {
      const ok = await confirmAction({
        title: `Delete "${key.name}"?`,
        message: 'The key is removed for good; its request logs stay.',
        confirmLabel: 'Delete',
      });
      if (ok) act(slot, () => api('DELETE', path(key.id), { version: key.version }), afterDelete);
    }, 'button-danger'));
}

// ---- the form ---------------------------------------------------------------------------------

function toLocalInput(rfc3339) {
  if (!rfc3339) return '';
  const d = new Date(rfc3339);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Checkboxes of a pool's channels (ids the key names but no channel has are kept, marked). */
function channelChoices(pool, field, legend, channels, chosen) {
  const inPool = channels.filter((c) => c.pool === pool);
  const known = new Set(inPool.map((c) => c.id));
  const options = [...inPool.map((c) => [c.id, c.name]), ...chosen.filter((id) => !known.has(id)).map((id) => [id, `${id} (no such channel)`])];
  if (!options.length) return null;
  return h('fieldset', { class: 'choices' },
    h('legend', { text: `${legend} (none ticked = all)` }),
    options.map(([id, name]) => control({ label: name, name: `allow.${field}`, kind: 'checkbox', value: chosen.includes(id) }))
      .map((wrapper, i) => {
        wrapper.querySelector('input').value = options[i][0];
        return wrapper;
      }));
}

function keyFields(key, channels = []) {
  const limits = (key && key.limits) || {};
  const allow = (key && key.allow) || {};
  const expiry = (key && key.expiry) || null;
  const expiryMode = control({
    label: 'Expiry', name: 'expiry.mode', kind: 'select', value: expiry ? expiry.mode : '',
    options: [['', 'Never'], ['fixedAt', 'At a date'], ['afterFirstUse', 'Days after first use']],
  });
  const at = control({ label: 'Expires at (local time)', name: 'expiry.expiresAt', kind: 'datetime-local', value: expiry && expiry.mode === 'fixedAt' ? toLocalInput(expiry.expiresAt) : '' });
  const days = control({ label: 'Days after first use', name: 'expiry.days', kind: 'number', value: expiry && expiry.mode === 'afterFirstUse' ? expiry.days : '', help: '1 – 3650' });
  const showExpiry = () => {
    const mode = expiryMode.querySelector('select').value;
    at.hidden = mode !== 'fixedAt';
    days.hidden = mode !== 'afterFirstUse';
  };
  expiryMode.querySelector('select').addEventListener('change', showExpiry);
  showExpiry();
  return [
    h('fieldset', {},
      h('legend', { text: 'Key' }),
      control({ label: 'Name', name: 'name', value: key ? key.name : '' }),
      control({ label: 'Description', name: 'description', value: key ? key.description || '' : '' }),
      control({ label: 'Admin key (may use the admin API and this console)', name: 'isAdmin', kind: 'checkbox', value: key ? key.isAdmin : false }),
      expiryMode, at, days),
    h('fieldset', { class: 'grid-2' },
      h('legend', { text: 'Limits (empty = unlimited)' }),
      control({ label: 'Requests per minute', name: 'limits.requestsPerMinute', kind: 'number', value: limits.requestsPerMinute ?? '' }),
      control({ label: 'Concurrent requests', name: 'limits.concurrentRequests', kind: 'number', value: limits.concurrentRequests ?? '' }),
      control({ label: 'Cost per day (USD)', name: 'limits.costPerDay', kind: 'number', value: limits.costPerDay ?? '' }),
      control({ label: 'Cost in total (USD)', name: 'limits.costTotal', kind: 'number', value: limits.costTotal ?? '' }),
      WINDOWS.flatMap(([name, label]) => [
        control({ label, name: `limits.${name}.limit`, kind: 'number', value: limits[name] ? limits[name].limit : '' }),
        control({ label: 'Window (seconds)', name: `limits.${name}.windowSeconds`, kind: 'number', value: limits[name] ? limits[name].windowSeconds : '', help: '3600 = 1 h, 86400 = 1 day' }),
      ])),
    h('fieldset', {},
      h('legend', { text: 'Allowlists (lists: one per line or comma; empty = everything)' }),
      h('fieldset', { class: 'choices' },
        h('legend', { text: 'Endpoints (none ticked = all)' }),
        ENDPOINTS.map((endpoint) => {
          const wrapper = control({ label: endpoint, name: 'allow.endpoints', kind: 'checkbox', value: (allow.endpoints || []).includes(endpoint) });
          wrapper.querySelector('input').value = endpoint;
          return wrapper;
        })),
      ALLOW.map(([name, label, help]) => control({ label, name: `allow.${name}`, kind: 'textarea', rows: 1, value: (allow[name] || []).join(', '), help })),
      CHANNEL_ALLOW.map(([pool, field, legend]) => channelChoices(pool, field, legend, channels, allow[field] || [])),
    ),
  ];
}

/** The key's fields from the form, in the API's shape. */
function keyBody(form) {
  const name = raw(form, 'name');
  if (!name) throw new InputError('name', 'a key needs a name');
  const limits = {};
  for (const field of ['requestsPerMinute', 'concurrentRequests']) {
    const v = numberOf(form, `limits.${field}`, { integer: true });
    if (v !== null) limits[field] = v;
  }
  for (const field of ['costPerDay', 'costTotal']) {
    const v = numberOf(form, `limits.${field}`);
    if (v !== null) limits[field] = v;
  }
  for (const [field] of WINDOWS) {
    const limit = numberOf(form, `limits.${field}.limit`);
    const seconds = numberOf(form, `limits.${field}.windowSeconds`, { integer: true });
    if (limit === null && seconds === null) continue;
    if (limit === null) throw new InputError(`limits.${field}.limit`, 'give the limit for this window too');
    if (seconds === null) throw new InputError(`limits.${field}.windowSeconds`, 'give the window length in seconds too');
    limits[field] = { limit, windowSeconds: seconds };
  }
  const allow = {};
  for (const [field] of ALLOW) {
    const list = listOf(raw(form, `allow.${field}`));
    if (list.length) allow[field] = list;
  }
  for (const field of ['endpoints', ...CHANNEL_ALLOW.map(([, f]) => f)]) {
    const ids = [...form.querySelectorAll(`input[name="allow.${field}"]:checked`)].map((input) => input.value);
    if (ids.length) allow[field] = ids;
  }
  let expiry = null;
  const mode = raw(form, 'expiry.mode');
  if (mode === 'fixedAt') {
    const text = raw(form, 'expiry.expiresAt');
    const when = text ? new Date(text) : null;
    if (!when || Number.isNaN(when.getTime())) throw new InputError('expiry.expiresAt', 'pick the date and time the key stops working');
    expiry = { mode, expiresAt: when.toISOString() };
  } else if (mode === 'afterFirstUse') {
    const days = numberOf(form, 'expiry.days', { integer: true });
    if (days === null) throw new InputError('expiry.days', 'give the number of days');
    expiry = { mode, days };
  }
  return { name, description: raw(form, 'description'), isAdmin: raw(form, 'isAdmin'), limits, allow, expiry };
}

function nameIsFree(taken, name, id) {
  const other = taken && taken.get(name);
  if (other && other !== id) throw new InputError('name', `a key named "${name}" exists already; choose another name`);
}

async function channelList() {
  try {
    return (await api('GET', '/admin/api/channels')).channels;
  } catch (error) {
    toast(`Channels could not be listed: ${error.message}`, 'error');
    return [];
  }
}

async function createKey(reload, taken) {
  const channels = await channelList();
  formDialog({
    title: 'New key',
    fields: keyFields(null, channels),
    submitLabel: 'Create key',
    onSubmit: async (form) => {
      const body = keyBody(form);
      nameIsFree(taken, body.name, null);
      if (!body.expiry) delete body.expiry;
      const created = await api('POST', '/admin/api/keys', { body });
      showOnce(created, reload);
    },
  });
}

/** The new key, shown this one time, with a copy button. */
function showOnce(created, reload) {
  let dialog = null;
  dialog = openDialog({
    title: `Key "${created.key.name}" created`,
    body: h('div', { class: 'key-once' },
      h('p', { class: 'notice notice-warn', role: 'alert', text: 'Copy the key now: this is the only time it is shown. relaybox stores only its hash.' }),
      h('div', { class: 'key-once-value' },
        h('code', { class: 'one-time-key', text: created.plaintext }),
        copyButton(created.plaintext)),
      h('p', { class: 'muted', text: `Use it as the API key of any client (Authorization: Bearer … or x-api-key). Id: ${created.key.id}` })),
    actions: [{ label: 'Done', class: 'button button-primary', onClick: () => dialog.close() }],
    onClose: reload,
  });
}

async function editKey(key, reload, taken) {
  const channels = await channelList();
  formDialog({
    title: `Edit key "${key.name}"`,
    fields: keyFields(key, channels),
    onSubmit: async (form) => {
      const body = keyBody(form);
      nameIsFree(taken, body.name, key.id);
      await api('PATCH', path(key.id), { body, version: key.version });
      toast(`Key "${key.name}" saved`, 'ok');
      await reload();
    },
    onReload: reload,
  });
}

// ---- one key: usage ---------------------------------------------------------------------------

async function renderDetail(root, id) {
  const slot = noticeSlot();
  const reload = () => renderDetail(root, id);
  const key = await api('GET', path(id));
  const from = new Date(Date.now() - 29 * 86400000);
  from.setUTCHours(0, 0, 0, 0);
  const [live, usage] = await Promise.all([
    api('GET', `${path(id)}/usage`).catch(() => null),
    api('GET', '/admin/api/usage', { query: { key: id, group_by: 'day', from: from.toISOString() } }).catch((e) => e),
  ]);
  const back = h('a', { href: '#/keys', class: 'button button-small', text: '← All keys' });
  root.replaceChildren(
    pageHeader(`Key "${key.name}"`, back),
    slot,
    h('div', { class: 'grid-2' },
      h('section', { class: 'card' },
        h('h2', { text: 'Key' }),
        facts([
          ['Status', badges(key)],
          ['Id', h('code', { text: key.id })],
          ['Key', h('code', { text: shownPrefix(key) })],
          key.description ? ['Description', key.description] : null,
          ['Created', fmtTime(key.createdAt)],
          ['First used', key.firstUsedAt ? fmtTime(key.firstUsedAt) : 'never'],
          ['Expires', expiryText(key)],
          ['Limits', limitsText(key.limits || {})],
        ]),
        h('div', { class: 'row-actions' }, keyActions(key, slot, reload, null, () => { location.hash = '#/keys'; }))),
      live ? h('section', { class: 'card' },
        h('h2', { text: 'Now' }),
        facts([
          ['Requests last minute', fmtInt(live.requestsLastMinute)],
          ['In flight', fmtInt(live.inFlight)],
          ['Cost today (UTC)', fmtMoney(String(live.costToday))],
          ['Cost in total', fmtMoney(String(live.costTotal))],
          ...(live.windows || []).map((w) => [`${w.limit} (${w.windowSeconds} s)`, `${w.used} of ${w.max}`]),
        ])) : null),
    usageSection(usage),
  );
}

function usageSection(usage) {
  const section = h('section', { class: 'card' }, h('h2', { text: 'Last 30 days' }));
  if (usage instanceof Error || !usage) {
    section.append(h('p', { class: 'muted', text: `Usage is not available: ${usage ? usage.message : 'no answer'}` }));
    return section;
  }
  const rows = usage.rows || [];
  const t = usage.totals || {};
  section.append(
    facts([
      ['Requests', fmtInt(t.requests || 0)],
      ['Errors', fmtInt(t.errors || 0)],
      ['Tokens', fmtInt(t.total_tokens || 0)],
      ['Cost', fmtMoney(t.cost || '0')],
    ]),
  );
  if (!rows.length) {
    section.append(h('p', { class: 'muted', text: 'No requests with this key in the last 30 days.' }));
    return section;
  }
  // Every day of the range, a day without requests as zero, so the line shows the gaps.
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const days = [];
  for (let t = Date.parse(usage.from); t < Date.parse(usage.to); t += 86400000) days.push(t - (t % 86400000));
  const day = (t) => new Date(t).toISOString().slice(0, 10);
  const xFormat = (t) => day(t).slice(5);
  const points = (pick) => [...new Set(days)].map((t) => [t, byDay.has(day(t)) ? pick(byDay.get(day(t))) : 0]);
  section.append(
    h('div', { class: 'grid-2' },
      h('div', {}, h('h3', { text: 'Requests per day' }),
        lineChart({ series: [{ name: 'requests', points: points((r) => r.requests) }], yFormat: fmtCompact, xFormat, label: 'Requests per day' })),
      h('div', {}, h('h3', { text: 'Cost per day' }),
        // A chart's height only: the figures shown are the API's decimal strings.
        lineChart({ series: [{ name: 'cost', points: points((r) => Number(r.cost)) }], yFormat: (v) => `$${Number(Number(v).toPrecision(2))}`, xFormat, label: 'Cost per day' }))),
    table({
      columns: [
        { label: 'Day (UTC)', value: (r) => r.day },
        { label: 'Requests', class: 'num', value: (r) => fmtInt(r.requests) },
        { label: 'Errors', class: 'num', value: (r) => fmtInt(r.errors) },
        { label: 'Tokens', class: 'num', value: (r) => fmtInt(r.total_tokens) },
        { label: 'Cost', class: 'num', value: (r) => fmtMoney(r.cost) },
        { label: 'p50 latency', class: 'num', value: (r) => (r.latency_ms && r.latency_ms.p50 != null ? `${fmtInt(r.latency_ms.p50)} ms` : '—') },
      ],
      rows: rows.slice().reverse(),
    }),
  );
  return section;
}
