import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, api, newKey } from '../api.js';
import { navigate } from '../router.jsx';

// NewTask is a form per kind, generated from the kind's JSON Schema (the
// document GET /v1/kinds serves and the service validates with). The
// service's field errors (400, error.fields) are shown beside the fields.
export function NewTask({ kind }) {
  const [kinds, setKinds] = useState(null);
  const [error, setError] = useState('');

  useEffect(() => {
    api.kinds().then(setKinds, (err) => setError(err.message));
  }, []);

  const k = kinds && kinds.find((x) => x.name === kind);
  return (
    <main class="page">
      <h1>New task</h1>
      {error && <p class="alert error">{error}</p>}
      {kinds && (
        <label class="kind-pick">
          Kind
          <select name="kind" value={kind} onChange={(e) => navigate(`/new/${encodeURIComponent(e.currentTarget.value)}`)}>
            <option value="" disabled>
              choose a kind…
            </option>
            {kinds.map((x) => (
              <option value={x.name}>{x.name}</option>
            ))}
          </select>
        </label>
      )}
      {kinds && kind && !k && <p class="alert error">No kind named {kind}.</p>}
      {k && <KindForm key={k.name} kind={k} />}
    </main>
  );
}

// resolve follows a local "$ref" ("#/$defs/x") within the root schema.
function resolve(root, s) {
  let seen = 0;
  while (s && s.$ref && seen++ < 16) {
    if (!s.$ref.startsWith('#/')) return s;
    let cur = root;
    for (const part of s.$ref.slice(2).split('/')) {
      cur = cur && cur[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    }
    if (!cur) return s;
    s = { ...cur, ...Object.fromEntries(Object.entries(s).filter(([k2]) => k2 !== '$ref')) };
  }
  return s || {};
}

function typeOf(s) {
  if (Array.isArray(s.enum)) return 'enum';
  const t = Array.isArray(s.type) ? s.type.find((x) => x !== 'null') : s.type;
  if (t === 'array') {
    const it = s.items || {};
    const itt = Array.isArray(it.type) ? it.type.find((x) => x !== 'null') : it.type;
    return ['string', 'integer', 'number'].includes(itt) ? 'list' : 'json';
  }
  if (t === 'object') return s.properties ? 'object' : 'json';
  if (['string', 'integer', 'number', 'boolean'].includes(t)) return t;
  return 'json';
}

// fieldsOf flattens the schema into the fields of the form, nested objects
// as groups; each field's path is what the service names in its errors
// ("params.flavor", "params.network.id").
function fieldsOf(root, schema, path) {
  const s = resolve(root, schema);
  const required = new Set(s.required || []);
  return Object.entries(s.properties || {}).map(([name, sub0]) => {
    const sub = resolve(root, sub0);
    const p = `${path}.${name}`;
    const type = typeOf(sub);
    const f = { name, path: p, schema: sub, type, required: required.has(name) };
    if (type === 'object') f.children = fieldsOf(root, sub, p);
    return f;
  });
}

function initial(fields, out = {}) {
  for (const f of fields) {
    if (f.children) initial(f.children, out);
    else if (f.schema.default !== undefined) {
      const d = f.schema.default;
      if (f.type === 'boolean') out[f.path] = !!d;
      else if (f.type === 'list') out[f.path] = Array.isArray(d) ? d.join('\n') : '';
      else if (f.type === 'json') out[f.path] = JSON.stringify(d, null, 2);
      else out[f.path] = String(d);
    }
  }
  return out;
}

class LocalError extends Error {}

function scalar(type, raw) {
  if (type === 'integer' && /^-?\d+$/.test(raw)) return parseInt(raw, 10);
  if (type === 'number' && raw !== '' && !Number.isNaN(Number(raw))) return Number(raw);
  // Anything else goes as typed, and the service says what is wrong.
  return raw;
}

// build turns the form's values into the params object; empty optional
// fields are left out so that the schema's defaults apply.
function build(fields, values, local) {
  const out = {};
  for (const f of fields) {
    if (f.children) {
      const v = build(f.children, values, local);
      if (Object.keys(v).length || f.required) out[f.name] = v;
      continue;
    }
    const raw = values[f.path];
    if (f.type === 'boolean') {
      if (raw !== undefined && (raw || f.required || f.schema.default !== undefined)) out[f.name] = !!raw;
      continue;
    }
    const text = typeof raw === 'string' ? raw.trim() : '';
    if (!text) continue;
    if (f.type === 'list') {
      const itt = (f.schema.items && f.schema.items.type) || 'string';
      out[f.name] = text
        .split(/\n|,/)
        .map((x) => x.trim())
        .filter(Boolean)
        .map((x) => scalar(itt, x));
    } else if (f.type === 'json') {
      try {
        out[f.name] = JSON.parse(text);
      } catch (e) {
        local[f.path] = `not valid JSON: ${e.message}`;
      }
    } else if (f.type === 'enum') {
      const hit = f.schema.enum.find((x) => String(x) === text);
      out[f.name] = hit === undefined ? text : hit;
    } else {
      out[f.name] = scalar(f.type, text);
    }
  }
  return out;
}

// normField writes the service's field names one way: "params.a.b".
function normField(f) {
  return String(f || '')
    .replace(/^\//, '')
    .replace(/\//g, '.')
    .replace(/\[(\d+)\]/g, '.$1');
}

function KindForm({ kind }) {
  const schema = useMemo(() => {
    try {
      return typeof kind.schema === 'string' ? JSON.parse(kind.schema) : kind.schema || {};
    } catch {
      return {};
    }
  }, [kind]);
  const fields = useMemo(() => fieldsOf(schema, schema, 'params'), [schema]);
  const [values, setValues] = useState(() => initial(fields));
  const [options, setOptions] = useState({ timeout: '', retries: '' });
  const [errors, setErrors] = useState({});
  const [general, setGeneral] = useState([]);
  const [busy, setBusy] = useState(false);
  // One key per form: a double submit (or a retry after a lost answer)
  // gives back the same task.
  const [key, setKey] = useState(newKey);

  const setValue = (path, v) => {
    setValues((vs) => ({ ...vs, [path]: v }));
    // The value changed: what was said about it may no longer hold, and a
    // new request needs a new key.
    setErrors((es) => {
      if (!es[path]) return es;
      const n = { ...es };
      delete n[path];
      return n;
    });
    setKey(newKey());
  };

  const submit = (e) => {
    e.preventDefault();
    const local = {};
    const params = build(fields, values, local);
    const opts = {};
    if (options.timeout.trim()) opts.timeout = options.timeout.trim();
    if (options.retries.trim()) opts.retries = scalar('integer', options.retries.trim());
    if (Object.keys(local).length) {
      setErrors(local);
      setGeneral([]);
      return;
    }
    setBusy(true);
    setErrors({});
    setGeneral([]);
    const req = { kind: kind.name, params };
    if (Object.keys(opts).length) req.options = opts;
    api.create(req, key).then(
      (t) => {
        setBusy(false);
        navigate(`/tasks/${encodeURIComponent(t.id)}`);
      },
      (err) => {
        setBusy(false);
        if (!(err instanceof ApiError)) {
          setGeneral([err.message]);
          return;
        }
        const known = new Set(['options.timeout', 'options.retries']);
        const walk = (fs) => fs.forEach((f) => (f.children ? walk(f.children) : known.add(f.path)));
        walk(fields);
        const byField = {};
        const rest = [];
        for (const fe of err.fields) {
          // JSON Schema reports a missing required property at the object
          // that lacks it ("params: missing property 'name'"): put it
          // beside the property's own field.
          const missing = /missing propert(?:y|ies) (.+)/.exec(fe.message || '');
          if (missing) {
            const base = normField(fe.field);
            const names = [...missing[1].matchAll(/'([^']+)'/g)].map((m) => `${base}.${m[1]}`);
            if (names.length && names.every((n) => known.has(n))) {
              for (const n of names) byField[n] = byField[n] ? `${byField[n]}; is required` : 'is required';
              continue;
            }
          }
          let name = normField(fe.field);
          // An error about an array item or a nested value goes beside the
          // nearest field shown.
          while (name && !known.has(name) && name.includes('.')) name = name.slice(0, name.lastIndexOf('.'));
          if (known.has(name)) byField[name] = byField[name] ? `${byField[name]}; ${fe.message}` : fe.message;
          else rest.push(fe.field ? `${fe.field}: ${fe.message}` : fe.message);
        }
        setErrors(byField);
        if (!err.fields.length || rest.length) rest.unshift(err.message);
        setGeneral(rest);
      },
    );
  };

  return (
    <form class="card form" onSubmit={submit} noValidate data-testid="new-task-form">
      {kind.help && <p class="muted">{kind.help}</p>}
      <Fields fields={fields} values={values} errors={errors} setValue={setValue} />
      <fieldset class="group">
        <legend>Options</legend>
        <Field
          f={{ path: 'options.timeout', name: 'timeout', type: 'string', schema: { description: 'How long the task may run, e.g. 10m; the service default if empty.' } }}
          value={options.timeout}
          error={errors['options.timeout']}
          onValue={(v) => {
            setOptions({ ...options, timeout: v });
            setKey(newKey());
          }}
        />
        <Field
          f={{ path: 'options.retries', name: 'retries', type: 'integer', schema: { description: 'Attempts of each cloud operation; the service default if empty.' } }}
          value={options.retries}
          error={errors['options.retries']}
          onValue={(v) => {
            setOptions({ ...options, retries: v });
            setKey(newKey());
          }}
        />
      </fieldset>
      {general.length > 0 && (
        <div class="alert error" role="alert" data-testid="form-error">
          {general.map((g) => (
            <div>{g}</div>
          ))}
        </div>
      )}
      <button type="submit" class="primary" disabled={busy}>
        {busy ? 'Creating…' : `Create ${kind.name} task`}
      </button>
    </form>
  );
}

function Fields({ fields, values, errors, setValue }) {
  return fields.map((f) =>
    f.children ? (
      <fieldset class="group" key={f.path}>
        <legend>
          {f.schema.title || f.name}
          {f.required && <span class="req"> *</span>}
        </legend>
        {f.schema.description && <p class="help">{f.schema.description}</p>}
        <Fields fields={f.children} values={values} errors={errors} setValue={setValue} />
      </fieldset>
    ) : (
      <Field key={f.path} f={f} value={values[f.path]} error={errors[f.path]} onValue={(v) => setValue(f.path, v)} />
    ),
  );
}

function Field({ f, value, error, onValue }) {
  const s = f.schema;
  const id = `f-${f.path.replace(/[^a-zA-Z0-9_-]/g, '-')}`;
  const common = {
    id,
    name: f.path,
    'aria-required': f.required ? 'true' : undefined,
    'aria-invalid': error ? 'true' : undefined,
    'aria-describedby': error ? `${id}-err` : undefined,
  };
  let input;
  if (f.type === 'boolean') {
    input = <input type="checkbox" {...common} checked={!!value} onChange={(e) => onValue(e.currentTarget.checked)} />;
  } else if (f.type === 'enum') {
    input = (
      <select {...common} value={value === undefined ? '' : value} onChange={(e) => onValue(e.currentTarget.value)}>
        {(!f.required || value === undefined || value === '') && <option value="">{f.required ? 'choose…' : '(default)'}</option>}
        {s.enum.map((x) => (
          <option value={String(x)}>{String(x)}</option>
        ))}
      </select>
    );
  } else if (f.type === 'list' || f.type === 'json') {
    input = (
      <textarea
        {...common}
        rows={f.type === 'json' ? 4 : 3}
        placeholder={f.type === 'list' ? 'one per line' : 'JSON'}
        value={value || ''}
        onInput={(e) => onValue(e.currentTarget.value)}
      />
    );
  } else {
    const numeric = f.type === 'integer' || f.type === 'number';
    input = (
      <input
        {...common}
        type="text"
        inputMode={numeric ? 'numeric' : undefined}
        autocomplete="off"
        placeholder={s.examples && s.examples.length ? String(s.examples[0]) : ''}
        value={value || ''}
        onInput={(e) => onValue(e.currentTarget.value)}
      />
    );
  }
  const limits = [];
  if (s.minimum !== undefined) limits.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) limits.push(`≤ ${s.maximum}`);
  return (
    <div class={`field${error ? ' invalid' : ''}${f.type === 'boolean' ? ' check' : ''}`} data-field={f.path}>
      <label for={id}>
        {s.title || f.name}
        {f.required && <span class="req"> *</span>}
        {limits.length > 0 && <span class="muted small"> ({limits.join(', ')})</span>}
      </label>
      {input}
      {s.description && <p class="help">{s.description}</p>}
      {error && (
        <p class="field-error" id={`${id}-err`} role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
