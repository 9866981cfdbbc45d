// The service's HTTP API (/v1), as the dashboard uses it. Every call sends
// the session cookie (same origin); errors come back as ApiError with the
// service's one error shape: {"error":{"code","message","fields":[...]}}.

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code || '';
    this.fields = e.fields || [];
  }
}

// Listeners told when the service answers 401 (the session ended).
const unauthorized = new Set();
export function onUnauthorized(fn) {
  unauthorized.add(fn);
  return () => unauthorized.delete(fn);
}

async function call(method, path, { body, headers = {}, allow401 = false } = {}) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && !allow401) unauthorized.forEach((fn) => fn(err));
    throw err;
  }
  return { data, res };
}

const enc = encodeURIComponent;

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const api = {
  whoami: () => call('GET', '/v1/auth/session', { allow401: true }).then((r) => r.data),
  login: (creds) => call('POST', '/v1/auth/session', { body: creds, allow401: true }).then((r) => r.data),
  logout: () => call('DELETE', '/v1/auth/session', { allow401: true }).then(() => null),

  kinds: () => call('GET', '/v1/kinds').then((r) => r.data.kinds || []),
  tasks: (filter) => call('GET', `/v1/tasks${query(filter)}`).then((r) => r.data),
  task: (id) => call('GET', `/v1/tasks/${enc(id)}`).then((r) => r.data),
  graph: (id) => call('GET', `/v1/tasks/${enc(id)}/graph`).then((r) => r.data),
  events: (id) => call('GET', `/v1/tasks/${enc(id)}/events`).then((r) => r.data.events || []),
  cancel: (id) => call('POST', `/v1/tasks/${enc(id)}/cancel`).then((r) => r.data),
  create: (req, key) =>
    call('POST', '/v1/tasks', { body: req, headers: key ? { 'Idempotency-Key': key } : {} }).then((r) => r.data),

  resourceTasks: (type, id, page) =>
    call('GET', `/v1/resources/${enc(type)}/${enc(id)}/tasks${query(page)}`).then((r) => r.data),
  // The resource's last fault, or null when it has none (404).
  resourceFault: (type, id) =>
    call('GET', `/v1/resources/${enc(type)}/${enc(id)}/fault`).then(
      (r) => r.data,
      (err) => {
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      },
    ),
};

// The marker of a page's "next" link ("/v1/tasks?...&marker=ID"), or "".
export function nextMarker(page) {
  if (!page || !page.next) return '';
  const i = page.next.indexOf('?');
  if (i < 0) return '';
  return new URLSearchParams(page.next.slice(i + 1)).get('marker') || '';
}

// follow opens a Server-Sent Events stream and calls handlers[type](data,
// id) for each event of a named type. EventSource reconnects by itself and
// resumes from the last event id; close() stops it.
export function follow(url, handlers, onState) {
  const es = new EventSource(url, { withCredentials: true });
  for (const [type, fn] of Object.entries(handlers)) {
    es.addEventListener(type, (ev) => {
      let data = null;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      fn(data, ev.lastEventId);
    });
  }
  if (onState) {
    es.onopen = () => onState('live');
    es.onerror = () => onState(es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
  }
  return { close: () => es.close() };
}

// A new idempotency key for one submission of a form (crypto.randomUUID is
// only there in secure contexts; getRandomValues is everywhere).
export function newKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
