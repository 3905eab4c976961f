import type { Api } from '../api.js';
import { h } from '../dom.js';
import { CallResult } from './call-result.js';

type Values = Record<string, string | boolean>;

export interface FieldSpec {
  name: string;
  label: string;
  kind?: 'text' | 'number' | 'select' | 'json' | 'checkbox';
  options?: [value: string, label: string][];
  value?: string;
  placeholder?: string;
  /** Shown only while this holds for the form's current values. */
  when?: (values: Values) => boolean;
}

export interface FormSpec {
  id: string;
  title: string;
  hint?: string;
  submit: string;
  success: string;
  fields: FieldSpec[];
  /** The API call the values make; throws `FormProblem` for values that cannot make one. */
  request(values: Values): { method: string; path: string; body?: unknown };
}

/** A value the page can tell is wrong before sending anything. */
export class FormProblem extends Error {}

/** A form that calls one admin route and shows the answer and the curl line for it. */
export function apiForm(api: Api, spec: FormSpec, open = false): HTMLElement {
  const result = new CallResult();
  const rows: {
    spec: FieldSpec;
    row: HTMLElement;
    control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  }[] = [];
  for (const field of spec.fields) {
    const id = `${spec.id}-${field.name}`;
    const control = makeControl(field, id);
    const row =
      field.kind === 'checkbox'
        ? h('label', { class: 'check', for: id }, control, h('span', {}, field.label))
        : h('label', { for: id }, h('span', {}, field.label), control);
    rows.push({ spec: field, row, control });
  }
  const values = (): Values => {
    const out: Values = {};
    for (const { spec: field, control } of rows) {
      out[field.name] =
        control instanceof HTMLInputElement && control.type === 'checkbox' ? control.checked : control.value.trim();
    }
    return out;
  };
  const showFields = (): void => {
    const current = values();
    for (const { spec: field, row } of rows) row.hidden = field.when !== undefined && !field.when(current);
  };
  const button = h('button', { type: 'submit' }, spec.submit);
  const form = h(
    'form',
    { id: spec.id, class: 'api-form', novalidate: true },
    rows.map((r) => r.row),
    h('div', { class: 'form-actions' }, button),
    result.element,
  );
  form.addEventListener('input', showFields);
  form.addEventListener('change', showFields);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    let call: ReturnType<FormSpec['request']>;
    try {
      call = spec.request(values());
    } catch (err) {
      result.error(err instanceof FormProblem ? err.message : String(err));
      return;
    }
    button.disabled = true;
    void api
      .call(call.method, call.path, call.body)
      .then((answer) => result.show(answer, spec.success))
      .finally(() => {
        button.disabled = false;
      });
  });
  showFields();
  return h(
    'details',
    { class: 'form-card', open, 'data-form': spec.id },
    h('summary', {}, spec.title),
    spec.hint ? h('p', { class: 'muted hint' }, spec.hint) : null,
    form,
  );
}

function makeControl(field: FieldSpec, id: string): HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement {
  const control = makeElement(field, id);
  // Ids, tokens and JSON are not prose.
  control.spellcheck = false;
  return control;
}

function makeElement(field: FieldSpec, id: string): HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement {
  switch (field.kind ?? 'text') {
    case 'select':
      return h(
        'select',
        { id, name: field.name },
        (field.options ?? []).map(([value, label]) => h('option', { value, selected: value === field.value }, label)),
      );
    case 'json':
      return h('textarea', {
        id,
        name: field.name,
        rows: 3,

        value: field.value ?? '',
        placeholder: field.placeholder,
      });
    case 'checkbox':
      return h('input', { id, name: field.name, type: 'checkbox', checked: field.value === 'true' });
    case 'number':
      return h('input', {
        id,
        name: field.name,
        type: 'text',
        inputMode: 'numeric',
        value: field.value ?? '',
        placeholder: field.placeholder,
        autocomplete: 'off',
      });
    case 'text':
      return h('input', {
        id,
        name: field.name,
        type: 'text',
        value: field.value ?? '',
        placeholder: field.placeholder,
        autocomplete: 'off',
      });
  }
}

// ---- helpers for the specs -----------------------------------------------------------

/** A JSON field's value, or a problem naming the field. */
export function json(values: Values, name: string, label = name): unknown {
  const text = String(values[name] ?? '');
  try {
    return JSON.parse(text === '' ? '{}' : text);
  } catch {
    throw new FormProblem(`${label}: not valid JSON`);
  }
}

export function required(values: Values, name: string, label = name): string {
  const value = String(values[name] ?? '');
  if (value === '') throw new FormProblem(`${label}: required`);
  return value;
}

/** Ids typed with commas, spaces or newlines between them. */
export function idList(values: Values, name: string, label = name): string[] {
  const ids = String(values[name] ?? '')
    .split(/[\s,]+/)
    .filter((id) => id !== '');
  if (ids.length === 0) throw new FormProblem(`${label}: name at least one id`);
  return ids;
}

export function pathPart(value: string): string {
  return encodeURIComponent(value);
}
