// Small shared pieces: times, durations, status badges.

// Formatters are made once: Date.toLocaleString makes a new one on each
// call, which costs more than the rest of a row's rendering.
const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric',
  month: 'short',
  day: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});
const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });

export function fmtTime(t) {
  if (!t) return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '';
  return dateTime.format(d);
}

export function fmtClock(t) {
  if (!t) return '';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return '';
  return `${clock.format(d)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

// batcher calls flush(items) with what push(item) gathered, at most every
// ms milliseconds: a stream that brings hundreds of changes a second costs
// a few renders a second, not one per change.
export function batcher(ms, flush) {
  let items = [];
  let timer = 0;
  return {
    push(item) {
      items.push(item);
      if (!timer) {
        timer = setTimeout(() => {
          timer = 0;
          const batch = items;
          items = [];
          flush(batch);
        }, ms);
      }
    },
    stop() {
      clearTimeout(timer);
      timer = 0;
      items = [];
    },
  };
}

// fmtDur writes milliseconds as "850ms", "12.3s", "4m05s", "2h03m".
export function fmtDur(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

// parseGoDuration reads Go's duration text ("1.5s", "2m3s", "250ms") as
// milliseconds.
export function parseGoDuration(s) {
  if (typeof s !== 'string' || !s) return null;
  const unit = { h: 3600e3, m: 60e3, s: 1e3, ms: 1, us: 1e-3, 'µs': 1e-3, ns: 1e-6 };
  let total = 0;
  const re = /([0-9.]+)(h|ms|m|s|us|µs|ns)/g;
  let m;
  let seen = false;
  while ((m = re.exec(s)) !== null) {
    total += parseFloat(m[1]) * unit[m[2]];
    seen = true;
  }
  return seen ? total : null;
}

export const FINAL = new Set(['succeeded', 'failed', 'reverted', 'cancelled']);
export const STATUSES = ['queued', 'running', 'reverting', 'succeeded', 'failed', 'reverted', 'cancelled'];

export function StatusBadge({ status }) {
  return <span class={`badge st-${status}`}>{status}</span>;
}

// Progress as "3/7" and a bar.
export function ProgressBar({ progress }) {
  const total = (progress && progress.total) || 0;
  const done = (progress && progress.done) || 0;
  const pct = total ? Math.round((done / total) * 100) : 0;
  return (
    <span class="progress" title={progress && progress.current ? `running ${progress.current}` : ''}>
      <span class="bar">
        <span style={{ width: `${pct}%` }} />
      </span>
      <span class="frac">
        {done}/{total}
      </span>
    </span>
  );
}

export function shortID(id) {
  return id && id.length > 13 ? `${id.slice(0, 8)}…` : id;
}
