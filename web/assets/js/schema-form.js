// JSON Schema → form → JSON value, for the "try it" forms of the /servers page.
//
// A tool's `inputSchema` is turned into ordinary form controls (text, number, checkbox, select,
// repeatable rows, fieldsets), and the controls are read back into the arguments object. The
// form only renders what it can render faithfully: any part of a schema it does not understand
// (oneOf/anyOf other than "X or null" and lists of constants, unresolvable $ref, allOf,
// patternProperties, tuples…) becomes a raw JSON textarea for that one field, and the whole form
// can always be edited as JSON instead. Validation is the server's job (it answers 422 with JSON
// pointers, which `showErrors` places next to the fields); this module only reports what it
// cannot even send: text in a JSON field that does not parse, a number field holding no number.
//
// Every input carries `name` = its path in the arguments joined with dots (`expression`,
// `options.precision`, `items.0`) and `data-type` (string, number, integer, boolean, enum,
// json), which the browser tests rely on. All schema text (names, descriptions, defaults) is
// untrusted and only ever becomes text nodes.

import { h } from './dom.js';

let lastId = 0;
/** A page-unique id for label/input pairs. */
function uid() {
  lastId += 1;
  return `sf-${lastId}`;
}

/** A value the form cannot send, with the JSON pointer of the field that holds it. */
export class FieldError extends Error {
  constructor(pointer, message) {
    super(message);
    this.pointer = pointer;
  }
}

/** `["items", 0, "a/b"]` → `/items/0/a~1b` (RFC 6901). */
export function toPointer(segments) {
  return segments.map((s) => `/${String(s).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/** `/items/0/a~1b` → `["items", "0", "a/b"]`; `""` → `[]`. */
export function fromPointer(pointer) {
  if (typeof pointer !== 'string' || pointer === '') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

// ---------------------------------------------------------------------------------------------
// Normalizing a schema into a descriptor the renderer understands.
// ---------------------------------------------------------------------------------------------

// Keywords whose meaning a plain control cannot express; their presence makes a field raw JSON.
const UNSUPPORTED = [
  'allOf', 'not', 'if', 'then', 'else', 'dependentSchemas', 'dependentRequired', 'dependencies',
  'patternProperties', 'propertyNames', 'unevaluatedProperties', 'unevaluatedItems',
  'prefixItems', 'additionalItems', 'contains', '$dynamicRef', '$recursiveRef',
];
const SCALAR_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'null', 'object', 'array']);
const MAX_DEPTH = 24;

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function raw(schema, reason, extra = {}) {
  return { kind: 'raw', schema: isObject(schema) ? schema : {}, reason, nullable: false, ...extra };
}

/** Resolve a local `#/...` reference inside `root`, or return null. */
function resolvePointer(root, ref) {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return null;
  let node = root;
  for (const segment of fromPointer(decodeURIComponent(ref.slice(1)))) {
    if (!isObject(node) && !Array.isArray(node)) return null;
    if (!Object.prototype.hasOwnProperty.call(node, segment)) return null;
    node = node[segment];
  }
  return node;
}

/** `{type: "null"}` (or `const: null`) as a oneOf/anyOf branch means "or null". */
function isNullBranch(branch) {
  return isObject(branch) && (branch.type === 'null' || (branch.const === null && Object.keys(branch).length <= 2));
}

/** Schema annotations that should survive when a wrapper (a $ref, an anyOf) is unwrapped. */
function annotations(schema) {
  const out = {};
  for (const key of ['title', 'description', 'default', 'examples', 'deprecated', 'readOnly']) {
    if (Object.prototype.hasOwnProperty.call(schema, key)) out[key] = schema[key];
  }
  return out;
}

function without(schema, ...keys) {
  const copy = { ...schema };
  for (const key of keys) delete copy[key];
  return copy;
}

/**
 * Turn `schema` into a descriptor `{kind, schema, nullable, ...}`: kind is one of string,
 * number, integer, boolean, null, enum, object, array, raw. `root` resolves local `$ref`s;
 * `refs` is the chain of references being expanded (a cycle makes the field raw).
 */
function describe(schema, root, refs = [], depth = 0) {
  if (depth > MAX_DEPTH) return raw(schema, 'nested too deeply for a form');
  if (schema === true || (isObject(schema) && Object.keys(schema).length === 0)) {
    return raw({}, 'any JSON value');
  }
  if (!isObject(schema)) return raw({}, 'not a schema object');

  if (typeof schema.$ref === 'string') {
    const ref = schema.$ref;
    if (refs.includes(ref)) return raw(schema, `recursive reference ${ref}`);
    const target = resolvePointer(root, ref);
    if (!isObject(target)) return raw(schema, `reference ${ref} cannot be resolved here`);
    // Sibling keywords (description, default) refine the referenced schema.
    const merged = { ...target, ...without(schema, '$ref') };
    return describe(merged, root, [...refs, ref], depth + 1);
  }

  for (const keyword of UNSUPPORTED) {
    if (Object.prototype.hasOwnProperty.call(schema, keyword)) {
      if (keyword === 'allOf' && Array.isArray(schema.allOf) && schema.allOf.length === 1) {
        return describe({ ...schema.allOf[0], ...without(schema, 'allOf') }, root, refs, depth + 1);
      }
      return raw(schema, `uses ${keyword}`);
    }
  }

  const union = schema.oneOf ?? schema.anyOf;
  if (union !== undefined) {
    if (schema.oneOf !== undefined && schema.anyOf !== undefined) return raw(schema, 'uses both oneOf and anyOf');
    return describeUnion(schema, union, root, refs, depth);
  }

  if (Object.prototype.hasOwnProperty.call(schema, 'const')) {
    return { kind: 'enum', schema, nullable: false, options: [{ value: schema.const, label: labelFor(schema.const) }] };
  }
  if (Array.isArray(schema.enum)) {
    if (schema.enum.length === 0) return raw(schema, 'an empty enum allows no value');
    return {
      kind: 'enum',
      schema,
      nullable: false,
      options: schema.enum.map((value) => ({ value, label: labelFor(value) })),
    };
  }

  let type = schema.type;
  let nullable = false;
  if (Array.isArray(type)) {
    const rest = type.filter((t) => t !== 'null');
    nullable = rest.length < type.length;
    if (rest.length === 1) type = rest[0];
    else if (rest.length === 0) type = 'null';
    else return raw(schema, `may be any of ${rest.join(', ')}`);
  }
  if (type === undefined) {
    if (isObject(schema.properties)) type = 'object';
    else if (schema.items !== undefined) type = 'array';
    else return raw(schema, 'no type given');
  }
  if (!SCALAR_TYPES.has(type)) return raw(schema, `unknown type ${String(type)}`);

  if (type === 'object') return describeObject(schema, nullable, root, refs, depth);
  if (type === 'array') return describeArray(schema, nullable, root, refs, depth);
  return { kind: type, schema, nullable };
}

/** oneOf/anyOf: "X or null", a list of constants (an enum with explanations), or raw JSON. */
function describeUnion(schema, union, root, refs, depth) {
  if (!Array.isArray(union) || union.length === 0) return raw(schema, 'an empty oneOf/anyOf');
  const outer = without(schema, 'oneOf', 'anyOf');
  const branches = union.filter((b) => !isNullBranch(b));
  const nullable = branches.length < union.length;
  if (branches.length === 1) {
    // Outer annotations (the property's own description) win over the branch's.
    const inner = describe({ ...branches[0], ...annotations(outer) }, root, refs, depth + 1);
    return { ...inner, nullable: inner.nullable || nullable };
  }
  const options = [];
  for (const branch of branches) {
    const d = describe(branch, root, refs, depth + 1);
    if (d.kind !== 'enum') return raw(schema, schema.oneOf ? 'uses oneOf' : 'uses anyOf');
    const note = typeof d.schema.description === 'string' ? d.schema.description : d.schema.title;
    for (const option of d.options) {
      options.push({ ...option, note: typeof note === 'string' ? note : undefined });
    }
  }
  return { kind: 'enum', schema: outer, nullable, options };
}

function describeObject(schema, nullable, root, refs, depth) {
  const props = isObject(schema.properties) ? schema.properties : {};
  const names = Object.keys(props);
  const extra = schema.additionalProperties;
  if (names.length === 0 && extra !== false && extra !== undefined) {
    return raw(schema, 'a map of free-form keys', { nullable });
  }
  if (names.length === 0 && extra === undefined && schema.type === undefined) {
    return raw(schema, 'any JSON object', { nullable });
  }
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  // Required fields first (in schema order), then the optional ones.
  const properties = names
    .map((name) => ({ name, required: required.has(name), desc: describe(props[name], root, refs, depth + 1) }))
    .sort((a, b) => Number(b.required) - Number(a.required));
  return {
    kind: 'object',
    schema,
    nullable,
    properties,
    // Extra keys are allowed but not shown; the JSON editor can add them.
    openEnded: names.length > 0 && extra !== false,
    // A required property the schema does not describe cannot be filled in a form.
    undescribed: [...required].filter((name) => !Object.prototype.hasOwnProperty.call(props, name)),
  };
}

function describeArray(schema, nullable, root, refs, depth) {
  if (Array.isArray(schema.items)) return raw(schema, 'a fixed-length tuple', { nullable });
  const items = schema.items === undefined ? raw({}, 'any JSON value') : describe(schema.items, root, refs, depth + 1);
  return { kind: 'array', schema, nullable, items };
}

function labelFor(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

// ---------------------------------------------------------------------------------------------
// Rendering fields. Each field is `{el, read(), write(value, lost), setPath(segments),
// child(segment), errorBox}`; `read()` returns undefined for "leave out".
// ---------------------------------------------------------------------------------------------

function sameJSON(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

function hasDefault(schema) {
  return Object.prototype.hasOwnProperty.call(schema, 'default') && schema.default !== null;
}

/** A short line about the type and limits: "integer, 1 to 10", "string, at most 50 characters". */
function typeHint(desc) {
  const s = desc.schema;
  const parts = [];
  const kindName = { enum: 'choice', raw: 'JSON' }[desc.kind] ?? desc.kind;
  parts.push(desc.nullable ? `${kindName} or null` : kindName);
  if (desc.kind === 'number' || desc.kind === 'integer') {
    if (typeof s.minimum === 'number') parts.push(`≥ ${s.minimum}`);
    if (typeof s.exclusiveMinimum === 'number') parts.push(`> ${s.exclusiveMinimum}`);
    if (typeof s.maximum === 'number') parts.push(`≤ ${s.maximum}`);
    if (typeof s.exclusiveMaximum === 'number') parts.push(`< ${s.exclusiveMaximum}`);
    if (typeof s.multipleOf === 'number') parts.push(`multiple of ${s.multipleOf}`);
  }
  if (desc.kind === 'string') {
    if (typeof s.minLength === 'number' && s.minLength > 0) parts.push(`at least ${s.minLength} characters`);
    if (typeof s.maxLength === 'number') parts.push(`at most ${s.maxLength} characters`);
    if (typeof s.format === 'string') parts.push(`format ${s.format}`);
    if (typeof s.pattern === 'string') parts.push(`pattern ${s.pattern}`);
  }
  if (desc.kind === 'array') {
    if (typeof s.minItems === 'number' && s.minItems > 0) parts.push(`at least ${s.minItems} items`);
    if (typeof s.maxItems === 'number') parts.push(`at most ${s.maxItems} items`);
    if (s.uniqueItems === true) parts.push('no duplicates');
  }
  if (desc.kind === 'raw' && desc.reason) parts[0] = `${parts[0]} (${desc.reason})`;
  if (hasDefault(s)) parts.push(`default ${JSON.stringify(s.default)}`);
  return parts.join(', ');
}

/** Strings that deserve a textarea: long limits, multi-line hints, or text with line breaks. */
function wantsTextarea(schema) {
  if (schema.format === 'textarea' || schema.format === 'multiline' || schema['x-multiline'] === true) return true;
  if (typeof schema.contentMediaType === 'string') return true;
  if (typeof schema.maxLength === 'number' && schema.maxLength > 1000) return true;
  if (typeof schema.default === 'string' && schema.default.includes('\n')) return true;
  const text = `${schema.description ?? ''} ${schema.title ?? ''}`;
  return /markdown|multi-?line|newlines?\b|paragraph|\bbody\b|\bcontent of\b/i.test(text);
}

/** The wrapper shared by every field: label, control, description, hints, errors. */
function frame(desc, ctx, control, inputId) {
  const s = desc.schema;
  const labelText = ctx.label;
  const label = h(
    inputId ? 'label' : 'span',
    inputId ? { class: 'sf-label', for: inputId } : { class: 'sf-label' },
    h('code', { class: 'sf-name' }, labelText),
    ctx.required && !ctx.inArray ? h('span', { class: 'sf-required', title: 'required' }, ' *') : null,
    typeof s.title === 'string' && s.title !== labelText ? h('span', { class: 'sf-title' }, ` ${s.title}`) : null,
  );
  const errorBox = h('ul', { class: 'sf-errors', hidden: true });
  const el = h(
    'div',
    { class: `sf-field sf-kind-${desc.kind}`, 'data-kind': desc.kind },
    h('div', { class: 'sf-head' }, label, h('span', { class: 'sf-type' }, typeHint(desc))),
    control,
    typeof s.description === 'string' && s.description.trim() !== ''
      ? h('div', { class: 'sf-description' }, s.description)
      : null,
    errorBox,
  );
  return { el, errorBox, label };
}

/** Build the field for `desc` at `path`. `ctx = {required, label, inArray}`. */
function buildField(desc, path, ctx) {
  switch (desc.kind) {
    case 'string':
      return textField(desc, path, ctx);
    case 'number':
    case 'integer':
      return numberField(desc, path, ctx);
    case 'boolean':
      return booleanField(desc, path, ctx);
    case 'enum':
      return enumField(desc, path, ctx);
    case 'null':
      return nullField(desc, path, ctx);
    case 'object':
      return objectField(desc, path, ctx);
    case 'array':
      return arrayField(desc, path, ctx);
    default:
      return rawField(desc, path, ctx);
  }
}

/** What an empty control means: leave out, null (required and nullable), or "" in a list. */
function emptyValue(desc, ctx, fallback) {
  if (ctx.inArray) return fallback;
  if (ctx.required && desc.nullable) return null;
  return undefined;
}

/** Shared plumbing for fields made of one input element. */
function leaf(desc, path, ctx, input, frameControl, { read, write }) {
  const f = frame(desc, ctx, frameControl, input.id);
  const field = {
    el: f.el,
    errorBox: f.errorBox,
    path,
    read: () => read(),
    write: (value, lost) => {
      if (!write(value)) lost.push(toPointer(field.path));
    },
    setPath(segments, label) {
      field.path = segments;
      input.name = segments.join('.');
      f.el.dataset.pointer = toPointer(segments);
      if (label !== undefined) f.label.querySelector('.sf-name').textContent = label;
    },
    child: () => null,
  };
  field.setPath(path);
  return field;
}

function textField(desc, path, ctx) {
  const s = desc.schema;
  const long = wantsTextarea(s);
  const attrs = { id: uid(), 'data-type': 'string', spellcheck: 'false' };
  if (typeof s.maxLength === 'number' && s.maxLength > 0) attrs.maxlength = s.maxLength;
  if (hasDefault(s) && !ctx.required) attrs.placeholder = `default: ${labelFor(s.default)}`;
  else if (Array.isArray(s.examples) && s.examples.length > 0) attrs.placeholder = `e.g. ${labelFor(s.examples[0])}`;
  else if (typeof s.format === 'string') attrs.placeholder = s.format;
  const input = long ? h('textarea', { ...attrs, rows: 4 }) : h('input', { ...attrs, type: 'text', autocomplete: 'off' });
  if (ctx.required && hasDefault(s) && typeof s.default === 'string') input.value = s.default;
  return leaf(desc, path, ctx, input, input, {
    read: () => (input.value === '' ? emptyValue(desc, ctx, '') : input.value),
    write: (value) => {
      if (value === undefined || (value === null && desc.nullable)) input.value = '';
      else if (typeof value === 'string') input.value = value;
      else return false;
      return true;
    },
  });
}

function numberField(desc, path, ctx) {
  const s = desc.schema;
  const integer = desc.kind === 'integer';
  const attrs = { id: uid(), type: 'number', 'data-type': desc.kind, step: integer ? 1 : 'any' };
  if (typeof s.minimum === 'number') attrs.min = s.minimum;
  if (typeof s.maximum === 'number') attrs.max = s.maximum;
  if (hasDefault(s) && !ctx.required) attrs.placeholder = `default: ${labelFor(s.default)}`;
  const input = h('input', attrs);
  if (ctx.required && hasDefault(s) && typeof s.default === 'number') input.value = String(s.default);
  const field = leaf(desc, path, ctx, input, input, {
    read: () => {
      if (input.validity.badInput) throw new FieldError(toPointer(field.path), 'this is not a number');
      if (input.value === '') {
        const empty = emptyValue(desc, ctx, undefined);
        if (empty === undefined && ctx.inArray) throw new FieldError(toPointer(field.path), 'this item is empty: fill it in or remove it');
        return empty;
      }
      const n = Number(input.value);
      if (!Number.isFinite(n)) throw new FieldError(toPointer(field.path), 'this is not a finite number');
      // A fractional value in an integer field is sent as is: the server's validator says why
      // it is wrong, with the same wording as for a model's call.
      return n;
    },
    write: (value) => {
      if (value === undefined || (value === null && desc.nullable)) input.value = '';
      else if (typeof value === 'number') input.value = String(value);
      else return false;
      return true;
    },
  });
  return field;
}

/**
 * A required boolean is a plain checkbox. An optional one has a third state, "unset" (shown
 * as an indeterminate box), so the server's default applies: clicks cycle unset → true →
 * false → unset.
 */
function booleanField(desc, path, ctx) {
  const s = desc.schema;
  const triState = !ctx.required && !ctx.inArray;
  const input = h('input', { id: uid(), type: 'checkbox', 'data-type': 'boolean' });
  const stateText = h('span', { class: 'sf-bool-state' });
  let state = 'unset';
  const show = () => {
    input.checked = state === true;
    input.indeterminate = state === 'unset';
    input.dataset.state = String(state);
    const suffix = state === 'unset' && hasDefault(s) ? ` (default ${JSON.stringify(s.default)})` : '';
    stateText.textContent = `${state === 'unset' ? 'unset' : String(state)}${suffix}`;
  };
  if (triState) {
    input.addEventListener('click', () => {
      state = state === 'unset' ? true : state === true ? false : 'unset';
      show();
    });
  } else {
    state = ctx.required && typeof s.default === 'boolean' ? s.default : false;
    input.addEventListener('change', () => {
      state = input.checked;
      show();
    });
  }
  show();
  const control = h('span', { class: 'sf-bool' }, input, ' ', stateText);
  return leaf(desc, path, ctx, input, control, {
    read: () => (state === 'unset' ? emptyValue(desc, ctx, undefined) : state),
    write: (value) => {
      if (typeof value === 'boolean') state = value;
      else if (value === undefined || (value === null && desc.nullable)) state = triState ? 'unset' : false;
      else return false;
      show();
      return true;
    },
  });
}

function enumField(desc, path, ctx) {
  const s = desc.schema;
  const single = desc.options.length === 1;
  const required = ctx.required || ctx.inArray;
  let emptyLabel = required ? '— choose —' : '— unset —';
  if (!required && hasDefault(s)) emptyLabel = `— unset (default ${labelFor(s.default)}) —`;
  const select = h(
    'select',
    { id: uid(), 'data-type': 'enum' },
    required && single ? null : h('option', { value: '' }, emptyLabel),
    desc.options.map((o, i) => h('option', { value: String(i), title: o.note }, o.note ? `${o.label} — ${o.note}` : o.label)),
  );
  const defaultIndex = desc.options.findIndex((o) => hasDefault(s) && sameJSON(o.value, s.default));
  if (required && defaultIndex >= 0) select.value = String(defaultIndex);
  return leaf(desc, path, ctx, select, select, {
    read: () => (select.value === '' ? emptyValue(desc, ctx, undefined) : desc.options[Number(select.value)].value),
    write: (value) => {
      if (value === undefined || (value === null && desc.nullable && !desc.options.some((o) => o.value === null))) {
        select.value = required && single ? '0' : '';
        return true;
      }
      const index = desc.options.findIndex((o) => sameJSON(o.value, value));
      if (index < 0) return false;
      select.value = String(index);
      return true;
    },
  });
}

function nullField(desc, path, ctx) {
  const input = h('input', { id: uid(), type: 'text', 'data-type': 'null', value: 'null', readonly: true });
  return leaf(desc, path, ctx, input, input, {
    read: () => (ctx.required || ctx.inArray ? null : undefined),
    write: (value) => value === null || value === undefined,
  });
}

/** Raw JSON for what a form cannot express; parsed (and reported) before anything is sent. */
function rawField(desc, path, ctx) {
  const s = desc.schema;
  const attrs = { id: uid(), 'data-type': 'json', rows: 3, spellcheck: 'false', class: 'sf-json' };
  if (hasDefault(s)) attrs.placeholder = `default: ${JSON.stringify(s.default)}`;
  else attrs.placeholder = 'JSON value';
  const input = h('textarea', attrs);
  const field = leaf(desc, path, ctx, input, input, {
    read: () => {
      const text = input.value.trim();
      if (text === '') {
        const empty = emptyValue(desc, ctx, undefined);
        if (empty === undefined && ctx.inArray) throw new FieldError(toPointer(field.path), 'this item is empty: fill it in or remove it');
        return empty;
      }
      try {
        return JSON.parse(text);
      } catch (err) {
        throw new FieldError(toPointer(field.path), `not valid JSON: ${err.message}`);
      }
    },
    write: (value) => {
      input.value = value === undefined ? '' : JSON.stringify(value, null, 2);
      return true;
    },
  });
  return field;
}

function objectField(desc, path, ctx, { root = false } = {}) {
  const children = new Map();
  const body = h('div', { class: 'sf-children' });
  for (const prop of desc.properties) {
    const child = buildField(prop.desc, [...path, prop.name], { required: prop.required, label: prop.name });
    children.set(prop.name, child);
    body.append(child.el);
  }
  const notes = [];
  if (desc.properties.length === 0) notes.push(h('p', { class: 'sf-note' }, root ? 'This tool takes no arguments.' : 'No fields.'));
  if (desc.undescribed.length > 0) {
    notes.push(h('p', { class: 'sf-note' }, `Required but not described by the schema (use "Edit as JSON"): ${desc.undescribed.join(', ')}`));
  }
  let el;
  let errorBox;
  let nameEl = null;
  if (root) {
    errorBox = h('ul', { class: 'sf-errors', hidden: true });
    el = h('div', { class: 'sf-root' }, errorBox, body, notes);
  } else {
    const s = desc.schema;
    errorBox = h('ul', { class: 'sf-errors', hidden: true });
    nameEl = h('code', { class: 'sf-name' }, ctx.label);
    el = h(
      'fieldset',
      { class: 'sf-field sf-kind-object', 'data-kind': 'object' },
      h(
        'legend',
        { class: 'sf-label' },
        nameEl,
        ctx.required && !ctx.inArray ? h('span', { class: 'sf-required', title: 'required' }, ' *') : null,
        ' ',
        h('span', { class: 'sf-type' }, typeHint(desc)),
      ),
      typeof s.description === 'string' && s.description.trim() !== '' ? h('div', { class: 'sf-description' }, s.description) : null,
      errorBox,
      body,
      notes,
    );
  }
  const field = {
    el,
    errorBox,
    path,
    read() {
      const out = {};
      let any = false;
      for (const [name, child] of children) {
        const value = child.read();
        if (value !== undefined) {
          out[name] = value;
          any = true;
        }
      }
      if (any || root || ctx.required || ctx.inArray) return out;
      return undefined;
    },
    write(value, lost) {
      if (value === undefined || (value === null && desc.nullable)) {
        for (const child of children.values()) child.write(undefined, lost);
        return;
      }
      if (!isObject(value)) {
        lost.push(toPointer(field.path));
        return;
      }
      for (const [name, child] of children) child.write(value[name], lost);
      for (const key of Object.keys(value)) {
        if (!children.has(key)) lost.push(toPointer([...field.path, key]));
      }
    },
    setPath(segments, label) {
      field.path = segments;
      el.dataset.pointer = toPointer(segments);
      if (nameEl && label !== undefined) nameEl.textContent = label;
      for (const [name, child] of children) child.setPath([...segments, name]);
    },
    child: (segment) => children.get(segment) ?? null,
  };
  field.setPath(path);
  return field;
}

function arrayField(desc, path, ctx) {
  const s = desc.schema;
  const rows = [];
  const list = h('div', { class: 'sf-rows' });
  const maxItems = typeof s.maxItems === 'number' ? s.maxItems : Infinity;
  const addButton = h('button', { type: 'button', class: 'sf-add' }, 'Add item');
  const f = frame(desc, ctx, h('div', { class: 'sf-array' }, list, addButton), null);

  const relabel = () => {
    rows.forEach((row, i) => row.field.setPath([...field.path, i], `[${i}]`));
    addButton.disabled = rows.length >= maxItems;
  };
  const addRow = () => {
    const index = rows.length;
    const child = buildField(desc.items, [...field.path, index], { required: true, inArray: true, label: `[${index}]` });
    const remove = h('button', { type: 'button', class: 'sf-remove', title: 'Remove this item' }, 'Remove');
    const el = h('div', { class: 'sf-row' }, child.el, remove);
    const row = { field: child, el };
    remove.addEventListener('click', () => {
      rows.splice(rows.indexOf(row), 1);
      el.remove();
      relabel();
    });
    rows.push(row);
    list.append(el);
    relabel();
    return row;
  };
  addButton.addEventListener('click', () => {
    const row = addRow();
    const first = row.el.querySelector('input, select, textarea');
    if (first) first.focus();
  });

  const field = {
    el: f.el,
    errorBox: f.errorBox,
    path,
    read() {
      if (rows.length === 0) return ctx.required || ctx.inArray ? [] : undefined;
      return rows.map((row) => row.field.read());
    },
    write(value, lost) {
      for (const row of rows.splice(0)) row.el.remove();
      if (value === undefined || (value === null && desc.nullable)) {
        relabel();
        return;
      }
      if (!Array.isArray(value)) {
        lost.push(toPointer(field.path));
        relabel();
        return;
      }
      for (const item of value) addRow().field.write(item, lost);
    },
    setPath(segments, label) {
      field.path = segments;
      f.el.dataset.pointer = toPointer(segments);
      if (label !== undefined) f.label.querySelector('.sf-name').textContent = label;
      relabel();
    },
    child: (segment) => rows[Number(segment)]?.field ?? null,
  };
  field.setPath(path);
  const initial = ctx.required && Array.isArray(s.default) ? s.default : [];
  if (initial.length > 0) field.write(initial, []);
  return field;
}

// ---------------------------------------------------------------------------------------------
// The whole form: fields, the "edit as JSON" switch, and error placement.
// ---------------------------------------------------------------------------------------------

/**
 * A form for `schema` (a tool's inputSchema). Returns:
 * - `element`: the controls, with a button switching between the form and a JSON editor;
 * - `read()`: the arguments object, or throws FieldError for what cannot be sent;
 * - `showErrors(errors)`: place `[{path, message}]` (JSON pointers, as the API's 422 details)
 *   next to their fields; returns the pointer each error was placed at;
 * - `clearErrors()`.
 */
export function schemaForm(schema) {
  const rootSchema = isObject(schema) ? schema : {};
  const desc = describe(rootSchema, rootSchema);
  const formable = desc.kind === 'object';
  const root = formable
    ? objectField(desc, [], { required: true, label: '' }, { root: true })
    : null;

  const jsonArea = h('textarea', { class: 'sf-json sf-whole-json try-json', rows: 8, spellcheck: 'false', 'data-type': 'json', 'aria-label': 'Arguments as JSON' });
  jsonArea.value = '{}';
  const jsonBox = h('div', { class: 'sf-json-mode', hidden: formable }, jsonArea);
  const switchNote = h('div', { class: 'notice error sf-switch-error', hidden: true });
  const toggle = h('button', { type: 'button', class: 'sf-mode-toggle try-json-toggle' }, 'Edit as JSON');
  let jsonMode = !formable;
  if (!formable) {
    toggle.disabled = true;
    toggle.textContent = 'JSON only';
    toggle.title = `This schema cannot be shown as a form (${desc.reason ?? desc.kind}).`;
  }

  const setMode = (toJson) => {
    switchNote.hidden = true;
    if (toJson) {
      let value;
      try {
        value = root.read();
      } catch (err) {
        if (!(err instanceof FieldError)) throw err;
        showSwitchError(`Fix this field first: ${err.pointer || '(arguments)'}: ${err.message}`);
        return;
      }
      jsonArea.value = JSON.stringify(value, null, 2);
    } else {
      let value;
      try {
        value = JSON.parse(jsonArea.value.trim() === '' ? '{}' : jsonArea.value);
      } catch (err) {
        showSwitchError(`The JSON does not parse, so it cannot go back to the form: ${err.message}`);
        return;
      }
      if (!isObject(value)) {
        showSwitchError('The arguments must be a JSON object.');
        return;
      }
      const lost = [];
      root.write(value, lost);
      if (lost.length > 0) {
        showSwitchError(`These parts have no place in the form, so stay in JSON to keep them: ${lost.map((p) => p || '(arguments)').join(', ')}`);
        return;
      }
    }
    jsonMode = toJson;
    root.el.hidden = toJson;
    jsonBox.hidden = !toJson;
    toggle.textContent = toJson ? 'Edit as form' : 'Edit as JSON';
    toggle.setAttribute('aria-pressed', String(toJson));
  };
  const showSwitchError = (text) => {
    switchNote.textContent = text;
    switchNote.hidden = false;
  };
  if (formable) toggle.addEventListener('click', () => setMode(!jsonMode));

  const element = h(
    'div',
    { class: 'sf-form' },
    h('div', { class: 'sf-toolbar' }, toggle, formable ? null : h('span', { class: 'sf-note' }, toggle.title)),
    switchNote,
    root ? root.el : null,
    jsonBox,
  );

  const findField = (segments) => {
    if (!root || jsonMode) return null;
    let field = root;
    for (const segment of segments) {
      const next = field.child(segment);
      if (!next) break;
      field = next;
    }
    return field;
  };

  const clearErrors = () => {
    switchNote.hidden = true;
    for (const box of element.querySelectorAll('.sf-errors')) {
      box.replaceChildren();
      box.hidden = true;
    }
    for (const el of element.querySelectorAll('.sf-invalid')) el.classList.remove('sf-invalid');
  };

  return {
    element,
    /** The arguments object; throws FieldError (pointer + message) when it cannot be sent. */
    read() {
      if (!jsonMode) return root.read();
      const text = jsonArea.value.trim();
      if (text === '') return {};
      let value;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new FieldError('', `the arguments are not valid JSON: ${err.message}`);
      }
      if (!isObject(value)) throw new FieldError('', 'the arguments must be a JSON object');
      return value;
    },
    showErrors(errors) {
      return errors.map((error) => {
        const segments = fromPointer(error.path);
        // "\"x\" is a required property" is reported on the object; show it on the field x.
        const missing = /^"((?:[^"\\]|\\.)*)" is a required property/.exec(error.message ?? '');
        if (missing) segments.push(missing[1]);
        const field = findField(segments);
        if (!field) return null;
        field.errorBox.append(h('li', {}, error.message));
        field.errorBox.hidden = false;
        field.el.classList.add('sf-invalid');
        return toPointer(field.path);
      });
    },
    clearErrors,
    /** Focus the first field that shows an error, if any. */
    focusFirstError() {
      const bad = element.querySelector('.sf-invalid');
      const input = bad && bad.querySelector('input, select, textarea');
      if (input) input.focus();
    },
  };
}
