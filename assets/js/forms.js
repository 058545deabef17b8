// Form helpers shared by the keys, channels, pricing, settings and import pages: reading typed
// values, dialogs that submit a form, and the one place that turns an API error into what the
// user sees (a conflict notice with Reload, or the message next to its field).
import { h, openDialog, showErrors, conflictNotice } from './ui.js';

/** An error of the user's input, shaped like an ApiError so `showErrors` places it. */
export class InputError extends Error {
  constructor(field, message) {
    super(message);
    this.status = 0;
    this.code = 'invalid_request';
    this.field = field;
  }
}

let uid = 0;
const nextId = (name) => `f-${name.replace(/[^a-zA-Z0-9]/g, '-')}-${++uid}`;

/**
 * A labelled control: `kind` is text, number, password, textarea, select, checkbox or
 * datetime-local; `options` ([value, label] pairs or plain values) for a select.
 */
export function control({ label, name, kind = 'text', value = '', help, options, placeholder, rows }) {
  const id = nextId(name);
  let input;
  if (kind === 'textarea') {
    input = h('textarea', { id, name, rows: rows || 3, placeholder: placeholder || null });
    input.value = value ?? '';
  } else if (kind === 'select') {
    input = h('select', { id, name },
      (options || []).map((o) => {
        const [v, text] = Array.isArray(o) ? o : [o, o];
        return h('option', { value: v, text });
      }));
    input.value = value ?? '';
  } else if (kind === 'checkbox') {
    input = h('input', { id, name, type: 'checkbox' });
    input.checked = Boolean(value);
  } else {
    input = h('input', {
      id, name, type: kind, placeholder: placeholder || null,
      step: kind === 'number' ? 'any' : null, autocomplete: 'off',
    });
    input.value = value ?? '';
  }
  const helpNode = help ? h('small', { class: 'help', text: help }) : null;
  if (kind === 'checkbox') {
    return h('div', { class: 'field field-check' }, input, h('label', { for: id, text: label }), helpNode);
  }
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), input, helpNode);
}

/** The raw value of the control named `name` in `form` (checkbox → boolean, else trimmed text). */
export function raw(form, name) {
  const input = form.querySelector(`[name="${name}"]`);
  if (!input) return undefined;
  if (input.type === 'checkbox') return input.checked;
  return input.value.trim();
}

/** A number field: '' → null; not a number → InputError naming the field. */
export function numberOf(form, name, { integer = false } = {}) {
  const text = raw(form, name);
  if (text === undefined || text === '') return null;
  const value = Number(text);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new InputError(name, `${name} must be ${integer ? 'a whole number' : 'a number'}, not "${text}"`);
  }
  return value;
}

/** One entry per line or comma, blanks dropped. */
export function listOf(text) {
  return (text || '').split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
}

/** `from=to` lines → an object; a line without `=` is an InputError naming `field`. */
export function mappingOf(text, field) {
  const mapping = {};
  for (const line of (text || '').split('\n').map((s) => s.trim()).filter(Boolean)) {
    const at = line.indexOf('=');
    if (at <= 0 || at === line.length - 1) {
      throw new InputError(field, `each line must be "model=target", not "${line}"`);
    }
    mapping[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return mapping;
}

export function mappingText(mapping) {
  return Object.entries(mapping || {}).map(([from, to]) => `${from}=${to}`).join('\n');
}

/** A 409 from a stale version (as opposed to, say, a taken name). */
export function isStale(error) {
  return error && error.status === 409 && /someone else/i.test(error.message || '');
}

/**
 * Show `error` in `form`: a stale edit gets the conflict notice with a Reload button (the
 * form is not submitted again), anything else its message next to the field or at the top.
 */
export function showFailure(form, error, onReload) {
  form.querySelectorAll('.conflict-slot').forEach((n) => n.remove());
  if (isStale(error) && onReload) {
    const slot = h('div', { class: 'conflict-slot' }, conflictNotice(onReload));
    form.prepend(slot);
    form.dataset.stale = 'true';
    return;
  }
  showErrors(form, error);
}

/**
 * A dialog whose body is a form. `fields` are nodes; Enter (or the primary button) runs
 * `onSubmit(form)`; when it resolves the dialog closes, when it throws the error is shown in
 * the form (a stale edit: the conflict notice, whose Reload runs `onReload`).
 */
export function formDialog({ title, fields, submitLabel = 'Save', onSubmit, onReload, wide = false }) {
  const form = h('form', { class: wide ? 'dialog-form wide' : 'dialog-form', novalidate: '' }, fields);
  form.noValidate = true;
  let dialog = null;
  let busy = false;
  const submit = async (event) => {
    if (event) event.preventDefault();
    if (busy || form.dataset.stale === 'true') return;
    busy = true;
    try {
      await onSubmit(form);
      dialog.close();
    } catch (error) {
      showFailure(form, error, onReload ? () => { dialog.close(); onReload(); } : null);
    } finally {
      busy = false;
    }
  };
  form.addEventListener('submit', submit);
  // A hidden submit button makes Enter submit the form even though the visible one is outside.
  form.append(h('button', { type: 'submit', class: 'visually-hidden', tabindex: '-1', 'aria-hidden': 'true', text: submitLabel }));
  dialog = openDialog({
    title,
    body: form,
    actions: [
      { label: 'Cancel', onClick: () => dialog.close() },
      { label: submitLabel, primary: true, onClick: () => submit() },
    ],
  });
  const first = form.querySelector('input:not([type=hidden]):not([disabled]), select, textarea');
  if (first) first.focus();
  return { form, close: () => dialog.close() };
}

/** Ask before something that cannot be undone; resolves true when confirmed. */
export function confirmAction({ title, message, confirmLabel = 'Confirm', danger = true }) {
  return new Promise((resolve) => {
    let settled = false;
    const done = (answer) => {
      if (settled) return;
      settled = true;
      dialog.close();
      resolve(answer);
    };
    const dialog = openDialog({
      title,
      body: h('p', { text: message }),
      actions: [
        { label: 'Cancel', onClick: () => done(false) },
        { label: confirmLabel, primary: true, danger, onClick: () => done(true) },
      ],
      onClose: () => { if (!settled) { settled = true; resolve(false); } },
    });
  });
}

/** A small definition list of label → value (nodes or text). */
export function facts(pairs) {
  return h('dl', { class: 'facts' },
    pairs.filter(Boolean).flatMap(([label, value]) => [h('dt', { text: label }), h('dd', {}, value ?? '—')]));
}

/** Add the pages' stylesheet once (CSP allows 'self' stylesheets; no inline styles). */
export function usePageStyles() {
  if (document.querySelector('link[data-pages-css]')) return;
  document.head.append(h('link', { rel: 'stylesheet', href: '/assets/css/pages.css', 'data-pages-css': '' }));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
