// The global settings as one form. Only changed fields are sent (PUT changes only the fields it
// names), with the version the form was loaded at; the server checks every range and its error
// is shown next to the field it names.
import { api } from '../api.js';
import { h, toast, pageHeader } from '../ui.js';
import { control, raw, numberOf, showFailure, InputError, usePageStyles } from '../forms.js';

export const title = 'Settings';

const STRATEGIES = [['failover', 'failover (in priority order)'], ['round-robin', 'round-robin'], ['random', 'random']];
const INHERIT = [['', 'same as messages'], ...STRATEGIES];

// [field, label, help] of each whole-number setting, grouped as shown.
const GROUPS = [
  ['Requests', [
    ['maxBodyBytes', 'Largest request body (bytes)', '1024 – 1073741824 (1 KiB – 1 GiB)'],
    ['maxQueueLength', 'Rate-limit queue length per channel', '0 – 100000 requests'],
    ['requestDeadlineSeconds', 'Request deadline (s)', 'retries and failover stop after this; 0 = no bound, at most 86400'],
    ['streamIdleTimeoutSeconds', 'Stream idle timeout (s)', '0 = off, at most 86400'],
    ['stickySessionTtlSeconds', 'Sticky session time (s)', '0 = off, at most 604800 (7 days)'],
  ]],
  ['Channel health', [
    ['circuitBreakerThreshold', 'Circuit breaker: failures to open', '0 = never opens, at most 1000'],
    ['circuitBreakerCooldownSeconds', 'Circuit breaker cooldown (s)', '1 – 86400'],
    ['suspendSeconds', 'Suspend time (s)', '1 – 604800, when the upstream gives no reset time'],
  ]],
  ['Cluster', [
    ['maxConfigStalenessSeconds', 'Largest config staleness (s)', 'refuse traffic when PostgreSQL was not reached for this long; 0 = off, at most 86400'],
  ]],
];
const FAILOVER_SECONDS = [
  ['genericResourceWaitSeconds', 'Generic resource wait (s)'],
  ['modelCooldownExtraSeconds', 'Model cooldown extra (s)'],
  ['modelCooldownMaxWaitSeconds', 'Model cooldown max wait (s)'],
];

export async function render(root) {
  usePageStyles();
  const settings = await api('GET', '/admin/api/settings');
  const failover = settings.failover || {};
  const form = h('form', { class: 'settings-form', novalidate: '' },
    h('fieldset', { class: 'grid-2' },
      h('legend', { text: 'Load balancing' }),
      control({ label: 'Messages pool', name: 'loadBalance', kind: 'select', value: settings.loadBalance, options: STRATEGIES }),
      control({ label: 'Responses pool', name: 'responsesLoadBalance', kind: 'select', value: settings.responsesLoadBalance || '', options: INHERIT }),
      control({ label: 'Gemini pool', name: 'geminiLoadBalance', kind: 'select', value: settings.geminiLoadBalance || '', options: INHERIT }),
      control({ label: 'Chat pool', name: 'chatLoadBalance', kind: 'select', value: settings.chatLoadBalance || '', options: INHERIT })),
    h('fieldset', { class: 'grid-2' },
      h('legend', { text: 'Keys' }),
      control({ label: 'Prefix of new keys', name: 'keyPrefix', value: settings.keyPrefix, help: 'at most 16 characters, no spaces' })),
    GROUPS.map(([legend, fields]) => h('fieldset', { class: 'grid-2' },
      h('legend', { text: legend }),
      fields.map(([name, label, help]) => control({ label, name, kind: 'number', value: settings[name], help })))),
    h('fieldset', { class: 'grid-2' },
      h('legend', { text: 'Failover' }),
      control({ label: 'Failover rules apply', name: 'failover.enabled', kind: 'checkbox', value: failover.enabled !== false }),
      FAILOVER_SECONDS.map(([name, label]) => control({ label, name: `failover.${name}`, kind: 'number', value: failover[name] ?? '', help: '0 – 86400; empty = default' })),
      control({
        label: 'Rules (JSON)', name: 'failover.rules', kind: 'textarea', rows: 6, wide: true,
        value: JSON.stringify(failover.rules || [], null, 2),
        help: '[{"errorCodes": "429", "actionChain": [{"action": "retry", "waitSeconds": 5, "maxAttempts": 2}, {"action": "failover"}]}]',
      })),
    h('div', { class: 'form-actions' },
      h('button', { type: 'submit', class: 'button button-primary', text: 'Save settings' }),
      h('span', { class: 'muted', text: `version ${settings.version}` })));
  form.noValidate = true;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const patch = changes(form, settings);
      if (!Object.keys(patch).length) {
        toast('Nothing changed', 'info');
        return;
      }
      await api('PUT', '/admin/api/settings', { body: patch, version: settings.version });
      toast('Settings saved', 'ok');
      await render(root);
    } catch (error) {
      showFailure(form, fieldOnForm(error), () => render(root));
    }
  });
  root.replaceChildren(pageHeader('Settings'), form);
}

/** A server error about one rule's step lands next to the rules box. */
function fieldOnForm(error) {
  if (error && typeof error.field === 'string' && error.field.startsWith('failover.rules.')) {
    error.field = 'failover.rules';
  }
  return error;
}

/** The fields whose value differs from `settings` (failover is sent whole when any part changed). */
function changes(form, settings) {
  const patch = {};
  for (const name of ['loadBalance', 'responsesLoadBalance', 'geminiLoadBalance', 'chatLoadBalance', 'keyPrefix']) {
    const value = raw(form, name);
    if (value !== (settings[name] || '')) patch[name] = value;
  }
  for (const [, fields] of GROUPS) {
    for (const [name] of fields) {
      const value = numberOf(form, name, { integer: true });
      if (value === null) throw new InputError(name, `${name} needs a value`);
      if (value !== settings[name]) patch[name] = value;
    }
  }
  const before = settings.failover || {};
  const failover = { ...before, enabled: raw(form, 'failover.enabled') };
  for (const [name] of FAILOVER_SECONDS) {
    const value = numberOf(form, `failover.${name}`, { integer: true });
    if (value === null) delete failover[name];
    else failover[name] = value;
  }
  try {
    failover.rules = JSON.parse(raw(form, 'failover.rules') || '[]');
  } catch (error) {
    throw new InputError('failover.rules', `the rules are not valid JSON: ${error.message}`);
  }
  if (!Array.isArray(failover.rules)) throw new InputError('failover.rules', 'the rules must be a JSON list');
  if (JSON.stringify(normalized(failover)) !== JSON.stringify(normalized({ enabled: true, rules: [], ...before }))) {
    patch.failover = failover;
  }
  return patch;
}

function normalized(value) {
  if (Array.isArray(value)) return value.map(normalized);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, normalized(value[k])]));
  }
  return value;
}
