// Channels, grouped per pool: health, quota, priority and status; create/edit (upstream keys
// are write-only: shown masked, an empty field on edit keeps them), test one channel, reset
// its quota, suspend/resume, delete. Every change carries the version it was made against.
import { api } from '../api.js';
import {
  h, fmtMoney, fmtInt, fmtTime, toast, openDialog, table, pageHeader, statusBadge, conflictNotice,
} from '../ui.js';
import {
  control, raw, numberOf, listOf, mappingOf, mappingText, formDialog, confirmAction, facts,
  isStale, InputError, usePageStyles,
} from '../forms.js';

export const title = 'Channels';

const POOLS = [
  ['messages', 'Messages (/v1/messages)'],
  ['responses', 'Responses (/v1/responses)'],
  ['gemini', 'Gemini'],
  ['chat', 'Chat completions (/v1/chat/completions)'],
];
const SERVICE_TYPES = [
  ['claude', 'claude — Anthropic Messages'],
  ['openai', 'openai — OpenAI Responses'],
  ['openai_chat', 'openai_chat — OpenAI Chat Completions'],
  ['openaiold', 'openaiold — OpenAI (legacy)'],
  ['responses', 'responses — Responses API'],
  ['gemini', 'gemini — Google Gemini'],
  ['openai-oauth', 'openai-oauth — Codex account (responses pool)'],
  ['composite', 'composite — routes to other channels (messages pool)'],
];

const path = (id) => `/admin/api/channels/${encodeURIComponent(id)}`;

export async function render(root, params) {
  usePageStyles();
  const slot = h('div', { class: 'page-notice' });
  const body = h('div', { class: 'page-body' }, h('p', { class: 'muted', text: 'Loading…' }));
  const reload = () => render(root, params);
  root.replaceChildren(
    pageHeader('Channels', h('button', { class: 'button button-primary', text: 'New channel', on: { click: () => editChannel(null, reload) } })),
    slot,
    body,
  );
  const { channels } = await api('GET', '/admin/api/channels');
  const quotas = new Map(await Promise.all(
    channels.filter(hasQuota).map(async (c) => [c.id, await api('GET', `${path(c.id)}/usage`).catch(() => null)]),
  ));
  const sections = POOLS.map(([pool, label]) => {
    const inPool = channels.filter((c) => c.pool === pool);
    if (!inPool.length) return null;
    const up = inPool.filter((c) => health(c).state === 'up').length;
    return h('section', { class: 'pool' },
      h('h2', {}, label, h('span', { class: 'muted', text: ` · ${up} of ${inPool.length} up` })),
      table({
        columns: [
          { label: 'Name', class: 'wrap-text', value: (c) => h('span', {}, h('strong', { text: c.name }), h('div', { class: 'muted small url', text: c.baseUrl || '(no upstream URL)' }), c.description ? h('div', { class: 'muted small', text: c.description }) : null) },
          { label: 'Type', value: (c) => c.serviceType },
          { label: 'Upstream keys', value: (c) => maskedKeys(c) },
          { label: 'Priority', class: 'num', value: (c) => String(c.priority ?? 0) },
          { label: 'State', value: (c) => healthCell(c) },
          { label: 'Quota', value: (c) => quotaCell(c, quotas.get(c.id)) },
          { label: '', class: 'actions', value: (c) => channelActions(c, slot, reload) },
        ],
        rows: inPool,
      }));
  }).filter(Boolean);
  body.replaceChildren(...(sections.length ? sections : [h('p', { class: 'empty', text: 'No channels yet. Add one to give the relay an upstream.' })]));
}

function hasQuota(c) {
  return Boolean(c.quotaType) && Number(c.quotaLimit) > 0;
}

function health(c) {
  if (c.health && c.health.state) return c.health;
  // Without the health field (an older server): what the status alone says.
  return { state: c.status === 'active' ? 'up' : c.status, detail: null };
}

function healthCell(c) {
  const hl = health(c);
  return h('span', {}, statusBadge(hl.state), hl.detail ? h('div', { class: 'muted small', text: hl.detail }) : null);
}

function maskedKeys(c) {
  const keys = c.apiKeys || [];
  const items = keys.map((k) => h('code', { text: k }));
  if (c.oauthTokens) items.push(h('span', { class: 'muted', text: 'OAuth tokens set' }));
  if (!items.length) return h('span', { class: 'muted', text: 'none' });
  return h('span', { class: 'masked-keys' }, items);
}

function quotaAmount(kind, value) {
  return kind === 'credit' ? fmtMoney(String(value)) : fmtInt(Math.round(value));
}

function quotaCell(c, usage) {
  if (!hasQuota(c)) return h('span', { class: 'muted', text: 'none' });
  const q = usage && usage.quota;
  if (!q) return `limit ${quotaAmount(c.quotaType, c.quotaLimit)}`;
  const share = q.limit > 0 ? Math.min(1, q.used / q.limit) : 0;
  const bar = h('span', { class: 'meter' }, h('span', { class: 'meter-fill' }));
  bar.firstChild.style.width = `${(share * 100).toFixed(1)}%`;
  return h('span', { class: 'quota' },
    `${quotaAmount(q.kind, q.used)} of ${quotaAmount(q.kind, q.limit)}`,
    bar,
    q.resetsAt ? h('div', { class: 'muted small', text: `resets ${fmtTime(q.resetsAt)}` }) : null);
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

function channelActions(c, slot, reload) {
  const button = (text, click, cls = '') => h('button', { class: `button button-small ${cls}`.trim(), text, on: { click } });
  const setStatus = (status) => act(slot, async () => {
    await api('PATCH', path(c.id), { body: { status }, version: c.version });
    toast(`${c.name}: ${status === 'active' ? 'resumed' : status}`, 'ok');
  }, reload);
  return h('span', { class: 'row-actions' },
    button('Edit', () => editChannel(c, reload)),
    button('Test', () => testChannel(c)),
    c.status === 'active' ? button('Suspend', () => setStatus('suspended')) : button('Resume', () => setStatus('active')),
    hasQuota(c) ? button('Reset quota', async () => {
      const ok = await confirmAction({
        title: `Reset the quota of "${c.name}"?`,
        message: 'Its quota period starts afresh now, with nothing used.',
        confirmLabel: 'Reset quota',
        danger: false,
      });
      if (ok) act(slot, () => api('POST', `${path(c.id)}/usage/reset`, { body: {} }), reload);
    }) : null,
    button('Delete', async () => {
      const ok = await confirmAction({
        title: `Delete "${c.name}"?`,
        message: 'The channel and its upstream keys are removed for good.',
        confirmLabel: 'Delete',
      });
      if (ok) act(slot, () => api('DELETE', path(c.id), { version: c.version }), reload);
    }, 'button-danger'));
}

// ---- test -------------------------------------------------------------------------------------

function testChannel(c) {
  const result = h('div', { class: 'probe', 'aria-live': 'polite' }, h('p', { class: 'muted', text: `Sending one small request to ${c.name}…` }));
  let dialog = null;
  dialog = openDialog({
    title: `Test "${c.name}"`,
    body: result,
    actions: [{ label: 'Close', class: 'button button-primary', onClick: () => dialog.close() }],
  });
  api('POST', `${path(c.id)}/test`, { body: {} }).then((report) => {
    const ok = report.status != null && report.status >= 200 && report.status < 300;
    result.replaceChildren(
      h('p', { class: ok ? 'probe-ok' : 'probe-failed', text: ok ? `OK: HTTP ${report.status} in ${fmtInt(report.latencyMs)} ms` : `Failed: ${report.status != null ? `HTTP ${report.status}` : 'no answer'}${report.error ? ` — ${report.error}` : ''}` }),
      facts([
        ['Model', report.model],
        ['URL', h('code', { text: report.url })],
        ['Latency', `${fmtInt(report.latencyMs)} ms`],
      ]),
      report.body ? h('pre', { class: 'probe-body', text: report.body }) : null,
    );
  }, (error) => {
    result.replaceChildren(h('p', { class: 'probe-failed', text: `Failed: ${error.message}` }));
  });
}

// ---- create / edit ----------------------------------------------------------------------------

function channelFields(c) {
  const editing = Boolean(c);
  const keysHelp = editing
    ? `Stored: ${(c.apiKeys || []).join(', ') || 'none'}. Leave empty to keep them; new keys replace them all.`
    : 'One per line. Stored encrypted; never shown again in full.';
  return [
    h('fieldset', { class: 'grid-2' },
      h('legend', { text: 'Upstream' }),
      control({ label: 'Name', name: 'name', value: c ? c.name : '' }),
      control({ label: 'Pool', name: 'pool', kind: 'select', value: c ? c.pool : 'messages', options: POOLS, help: editing ? 'A channel stays in its pool.' : null }),
      control({ label: 'Service type', name: 'serviceType', kind: 'select', value: c ? c.serviceType : 'claude', options: SERVICE_TYPES }),
      control({ label: 'Base URL', name: 'baseUrl', value: c ? c.baseUrl : '', placeholder: 'https://api.anthropic.com' }),
      control({ label: 'Upstream API keys', name: 'apiKeys', kind: 'textarea', rows: 2, placeholder: editing ? 'unchanged' : 'sk-…', help: keysHelp }),
      control({ label: 'Description', name: 'description', value: c ? c.description || '' : '' })),
    h('fieldset', { class: 'grid-2' },
      h('legend', { text: 'Routing' }),
      control({ label: 'Priority', name: 'priority', kind: 'number', value: c ? c.priority ?? 0 : 0, help: 'Lower is tried first.' }),
      control({ label: 'Status', name: 'status', kind: 'select', value: c ? c.status : 'active', options: [['active', 'active'], ['suspended', 'suspended (paused)'], ['disabled', 'disabled (standby)']] }),
      control({ label: 'Rate limit (requests per minute)', name: 'rateLimitRpm', kind: 'number', value: c ? c.rateLimitRpm ?? 0 : 0, help: '0 = none' }),
      control({ label: 'Model mapping', name: 'modelMapping', kind: 'textarea', rows: 2, value: c ? mappingText(c.modelMapping) : '', placeholder: 'haiku=claude-haiku-4-5', help: 'One "asked=sent" per line.' })),
    h('fieldset', { class: 'grid-2' },
      h('legend', { text: 'Quota' }),
      control({ label: 'Quota type', name: 'quotaType', kind: 'select', value: c ? c.quotaType || '' : '', options: [['', 'none'], ['requests', 'requests'], ['credit', 'credit (USD)']] }),
      control({ label: 'Quota limit', name: 'quotaLimit', kind: 'number', value: c ? c.quotaLimit ?? '' : '' }),
      control({ label: 'Resets every', name: 'quotaResetInterval', kind: 'number', value: c ? c.quotaResetInterval ?? '' : '', help: '1 – 1000 units' }),
      control({ label: 'Unit', name: 'quotaResetUnit', kind: 'select', value: c ? c.quotaResetUnit || 'days' : 'days', options: ['hours', 'days', 'weeks', 'months'] }),
      control({ label: 'Period', name: 'quotaResetMode', kind: 'select', value: c ? c.quotaResetMode || 'fixed' : 'fixed', options: [['fixed', 'fixed periods'], ['rolling', 'rolling window']] })),
    h('fieldset', { class: 'grid-2' },
      h('legend', { text: 'Advanced' }),
      control({ label: 'Upstream keys used in turn', name: 'keyLoadBalance', kind: 'select', value: c ? c.keyLoadBalance || '' : '', options: [['', "the pool's strategy (default)"], ['failover', 'failover'], ['round-robin', 'round-robin'], ['random', 'random']] }),
      control({ label: 'Response header timeout (s)', name: 'responseHeaderTimeout', kind: 'number', value: c ? c.responseHeaderTimeout ?? '' : '', help: '1 – 86400; empty = default' }),
      control({ label: 'Queue requests over the rate limit', name: 'queueEnabled', kind: 'checkbox', value: c ? c.queueEnabled : false }),
      control({ label: 'Queue timeout (s)', name: 'queueTimeout', kind: 'number', value: c ? c.queueTimeout ?? '' : '', help: '1 – 86400; empty = default' }),
      control({ label: 'Skip TLS certificate checks', name: 'insecureSkipVerify', kind: 'checkbox', value: c ? c.insecureSkipVerify : false, help: 'Only for an upstream you trust on your own network.' }),
      control({ label: 'Website', name: 'website', value: c ? c.website || '' : '' })),
  ];
}

function channelBody(form, c) {
  const name = raw(form, 'name');
  if (!name) throw new InputError('name', 'a channel needs a name');
  const body = {
    name,
    serviceType: raw(form, 'serviceType'),
    baseUrl: raw(form, 'baseUrl'),
    description: raw(form, 'description'),
    priority: numberOf(form, 'priority', { integer: true }) ?? 0,
    status: raw(form, 'status'),
    rateLimitRpm: numberOf(form, 'rateLimitRpm', { integer: true }) ?? 0,
    modelMapping: mappingOf(raw(form, 'modelMapping'), 'modelMapping'),
    quotaType: raw(form, 'quotaType'),
    quotaLimit: numberOf(form, 'quotaLimit'),
    quotaResetInterval: numberOf(form, 'quotaResetInterval', { integer: true }),
    quotaResetUnit: raw(form, 'quotaResetUnit'),
    quotaResetMode: raw(form, 'quotaResetMode'),
    keyLoadBalance: raw(form, 'keyLoadBalance'),
    responseHeaderTimeout: numberOf(form, 'responseHeaderTimeout', { integer: true }),
    queueEnabled: raw(form, 'queueEnabled'),
    queueTimeout: numberOf(form, 'queueTimeout', { integer: true }),
    insecureSkipVerify: raw(form, 'insecureSkipVerify'),
    website: raw(form, 'website'),
  };
  if (body.quotaType && !body.quotaLimit) throw new InputError('quotaLimit', 'give the quota limit (or choose no quota)');
  if (!body.quotaType) {
    // No quota: leave the other quota fields as they were.
    for (const field of ['quotaLimit', 'quotaResetInterval', 'quotaResetUnit', 'quotaResetMode']) delete body[field];
  }
  const keys = listOf(raw(form, 'apiKeys'));
  if (keys.length) body.apiKeys = keys;
  if (!c) {
    body.pool = raw(form, 'pool');
    if (!keys.length && body.serviceType !== 'composite' && body.serviceType !== 'openai-oauth') {
      throw new InputError('apiKeys', 'give at least one upstream API key');
    }
  }
  return body;
}

function editChannel(c, reload) {
  const fields = channelFields(c);
  const { form } = formDialog({
    title: c ? `Edit channel "${c.name}"` : 'New channel',
    fields,
    submitLabel: c ? 'Save' : 'Create channel',
    onSubmit: async (f) => {
      const body = channelBody(f, c);
      if (c) {
        await api('PATCH', path(c.id), { body, version: c.version });
        toast(`Channel "${body.name}" saved`, 'ok');
      } else {
        await api('POST', '/admin/api/channels', { body });
        toast(`Channel "${body.name}" created`, 'ok');
      }
      await reload();
    },
    onReload: reload,
  });
  if (c) form.querySelector('[name="pool"]').disabled = true;
}
