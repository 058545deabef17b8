// Prices (USD per million tokens) with add/edit/delete, and the model aliases each pool's
// /v1/models lists, with add/delete.
import { api } from '../api.js';
import { h, toast, table, pageHeader, conflictNotice } from '../ui.js';
import {
  control, raw, numberOf, formDialog, confirmAction, isStale, InputError, usePageStyles, showFailure,
} from '../forms.js';

export const title = 'Pricing';

const PRICE_FIELDS = [
  ['inputPrice', 'Input'],
  ['outputPrice', 'Output'],
  ['cacheCreationPrice', 'Cache write'],
  ['cacheReadPrice', 'Cache read'],
];
const ALIAS_POOLS = [
  ['messages', 'messagesModels', 'Messages'],
  ['responses', 'responsesModels', 'Responses'],
  ['gemini', 'geminiModels', 'Gemini'],
  ['chat', 'chatModels', 'Chat'],
];

const pricePath = (model) => `/admin/api/pricing/${encodeURIComponent(model)}`;

/** A price per million tokens as the user typed it: plain decimal, no float noise. */
function perMillion(value) {
  if (value === null || value === undefined) return '—';
  return `$${Number(value.toPrecision(12))}`;
}

// What relaybox charges for cache tokens when a price names none: a share of the input price.
const DERIVED = { cacheCreationPrice: [1.25, '1.25 × input'], cacheReadPrice: [0.1, '0.1 × input'] };

function priceCell(p, field) {
  if (p[field] != null || !DERIVED[field]) return perMillion(p[field]);
  const [share, rule] = DERIVED[field];
  return h('span', { title: rule }, perMillion(p.inputPrice * share), h('span', { class: 'muted small', text: ' (derived)' }));
}

export async function render(root) {
  usePageStyles();
  const slot = h('div', { class: 'page-notice' });
  const reload = () => render(root);
  const [pricing, aliases] = await Promise.all([
    api('GET', '/admin/api/pricing'),
    api('GET', '/admin/api/aliases'),
  ]);
  const models = Object.entries(pricing.models || {}).map(([model, price]) => ({ model, ...price }));
  root.replaceChildren(
    pageHeader('Pricing and aliases', h('button', { class: 'button button-primary', text: 'New price', on: { click: () => editPrice(null, reload) } })),
    slot,
    h('section', { class: 'card' },
      h('h2', { text: `Prices (${pricing.currency || 'USD'} per million tokens)` }),
      h('p', { class: 'muted', text: 'A model id or a prefix of one; the longest match wins. Models without a price here use relaybox’s built-in list.' }),
      table({
        columns: [
          { label: 'Model', value: (p) => h('code', { text: p.model }) },
          ...PRICE_FIELDS.map(([field, label]) => ({ label, class: 'num', value: (p) => priceCell(p, field) })),
          { label: 'Description', value: (p) => p.description || '' },
          { label: '', class: 'actions', value: (p) => h('span', { class: 'row-actions' },
            h('button', { class: 'button button-small', text: 'Edit', on: { click: () => editPrice(p, reload) } }),
            h('button', { class: 'button button-small button-danger', text: 'Delete', on: { click: () => deletePrice(p, slot, reload) } })) },
        ],
        rows: models,
        empty: 'No configured prices: costs come from the built-in list.',
      })),
    h('section', { class: 'card' },
      h('h2', { text: 'Model aliases' }),
      h('p', { class: 'muted', text: 'Extra model names each pool lists in /v1/models.' }),
      h('div', { class: 'alias-pools' }, ALIAS_POOLS.map(([pool, field, label]) => aliasPool(pool, label, aliases[field] || [], reload)))),
  );
}

function priceFields(p) {
  return [
    p ? null : control({ label: 'Model (id or prefix)', name: 'model', placeholder: 'claude-sonnet-4' }),
    h('div', { class: 'grid-2' },
      PRICE_FIELDS.map(([field, label]) => control({
        label: `${label} (USD / M tokens)`, name: field, kind: 'number', value: p && p[field] != null ? p[field] : '',
        help: DERIVED[field] ? `empty = ${DERIVED[field][1]}` : null,
      }))),
    control({ label: 'Description', name: 'description', value: p ? p.description || '' : '' }),
  ];
}

function priceBody(form) {
  const body = {};
  for (const [field] of PRICE_FIELDS) {
    const value = numberOf(form, field);
    if (value === null && (field === 'inputPrice' || field === 'outputPrice')) {
      throw new InputError(field, `${field} is needed`);
    }
    body[field] = value;
  }
  const description = raw(form, 'description');
  body.description = description || null;
  return body;
}

function editPrice(p, reload) {
  formDialog({
    title: p ? `Edit price of ${p.model}` : 'New price',
    fields: priceFields(p),
    submitLabel: p ? 'Save' : 'Add price',
    onSubmit: async (form) => {
      const body = priceBody(form);
      if (p) {
        await api('PATCH', pricePath(p.model), { body, version: p.version });
      } else {
        const model = raw(form, 'model');
        if (!model) throw new InputError('model', 'give a model id or prefix');
        if (body.description === null) delete body.description;
        for (const field of ['cacheCreationPrice', 'cacheReadPrice']) if (body[field] === null) delete body[field];
        await api('POST', '/admin/api/pricing', { body: { model, ...body } });
      }
      toast('Price saved', 'ok');
      await reload();
    },
    onReload: reload,
  });
}

async function deletePrice(p, slot, reload) {
  const ok = await confirmAction({ title: `Delete the price of ${p.model}?`, message: 'Requests for it are then priced from the built-in list, if it lists the model.', confirmLabel: 'Delete' });
  if (!ok) return;
  slot.replaceChildren();
  try {
    await api('DELETE', pricePath(p.model), { version: p.version });
    await reload();
  } catch (error) {
    if (isStale(error)) slot.replaceChildren(conflictNotice(reload));
    else toast(error.message, 'error');
  }
}

function aliasPool(pool, label, list, reload) {
  const form = h('form', { class: 'inline-form', novalidate: '' },
    control({ label: `New ${label.toLowerCase()} alias`, name: 'value', placeholder: 'model name' }),
    control({ label: 'Description', name: 'description' }),
    h('button', { type: 'submit', class: 'button', text: 'Add' }));
  form.noValidate = true;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = raw(form, 'value');
    const description = raw(form, 'description');
    try {
      if (!value) throw new InputError('value', 'give the model name to list');
      if (list.some((a) => a.value === value)) throw new InputError('value', `the ${pool} pool already offers ${value}`);
      await api('POST', '/admin/api/aliases', { body: { pool, value, ...(description ? { description } : {}) } });
      toast(`${value} added to ${label}`, 'ok');
      await reload();
    } catch (error) {
      showFailure(form, error);
    }
  });
  return h('div', { class: 'alias-pool' },
    h('h3', { text: label }),
    list.length
      ? h('ul', { class: 'alias-list' }, list.map((a) => h('li', {},
        h('code', { text: a.value }),
        a.description ? h('span', { class: 'muted', text: ` ${a.description}` }) : null,
        h('button', {
          class: 'button button-small button-danger', text: 'Delete', 'aria-label': `Delete alias ${a.value}`,
          on: { click: async () => {
            try {
              await api('DELETE', `/admin/api/aliases/${pool}/${encodeURIComponent(a.value)}`);
              await reload();
            } catch (error) { toast(error.message, 'error'); }
          } },
        }))))
      : h('p', { class: 'muted', text: 'none' }),
    form);
}
