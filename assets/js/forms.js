// Form helpers shared by the keys, channels, pricing, settings and import pages: reading typed
// values, dialogs that submit a form, and the one place that turns an API error into what the
// user sees (a conflict notice with Reload, or the message next to its field).
import { h, field, openDialog, showErrors, conflictNotice } from './ui.js';

/** An error of the user's input, shaped like an ApiError so `showErrors` places it. */
export class InputError extends Error {
  constructor(field, message) {
    super(message);
    this.status = 0;
    this.code = 'invalid_request';
    this.field = field;
  }
}

/**
 * A labelled control (ui.js `field` underneath, so errors land in its error slot): `kind` is
 * text, number, password, textarea, select, checkbox or datetime-local; `options` are
 * [value, label] pairs or plain values.
 */
export function control({ label, name, kind = 'text', value = '', help, options, placeholder, rows, wide }) {
  const wrapper = field({
    label,
    name,
    type: kind,
    value,
    help,
    placeholder,
    options: (options || []).map((o) => (Array.isArray(o) ? { value: o[0], label: o[1] } : o)),
    attrs: rows ? { rows } : {},
  });
  if (wide) wrapper.classList.add('span-2');
  return wrapper;
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

/** A 409 answered to an edit that carried a version: someone else changed the record. */
export function isStale(error) {
  return Boolean(error) && error.stale === true;
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
    // The notice is at the top of a form that may be scrolled down to its Save button.
    slot.scrollIntoView({ block: 'nearest' });
    slot.querySelector('button')?.focus();
    return;
  }
  showErrors(form, error);
}

/**
 * A dialog whose body is a form. `fields` are nodes; Enter (or the primary button) runs
 * `onSubmit(form)`; when it resolves the dialog closes, when it throws the error is shown in
 * the form (a stale edit: the conflict notice, whose Reload runs `onReload`).
 */
export function formDialog({ title, fields, submitLabel = 'Save', onSubmit, onReload }) {
  const form = h('form', { class: 'dialog-form', novalidate: '' }, fields);
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
  form.append(h('button', { type: 'submit', class: 'offscreen', tabindex: '-1', 'aria-hidden': 'true', text: submitLabel }));
  dialog = openDialog({
    title,
    body: form,
    actions: [
      { label: 'Cancel', class: 'button', onClick: () => dialog.close() },
      { label: submitLabel, class: 'button button-primary', onClick: () => submit() },
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
        { label: 'Cancel', class: 'button', onClick: () => done(false) },
        { label: confirmLabel, class: danger ? 'button button-danger' : 'button button-primary', onClick: () => done(true) },
      ],
      onClose: () => { if (!settled) { settled = true; resolve(false); } },
    });
  });
}

/** A small definition list of label → value (nodes or text). */
export function facts(pairs) {
  return h('dl', { class: 'details' },
    pairs.filter(Boolean).flatMap(([label, value]) => [h('dt', { text: label }), h('dd', {}, value ?? '—')]));
}

/** Add the pages' stylesheet once (CSP allows 'self' stylesheets; no inline styles). */
export function usePageStyles() {
  if (document.querySelector('link[data-pages-css]')) return;
  document.head.append(h('link', { rel: 'stylesheet', href: '/assets/css/pages.css', 'data-pages-css': '' }));
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
