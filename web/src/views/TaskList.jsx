import { useEffect, useRef, useState } from 'preact/hooks';
import { api, follow, nextMarker, query } from '../api.js';
import { Link, navigate } from '../router.jsx';
import { ProgressBar, STATUSES, StatusBadge, batcher, fmtTime, shortID } from '../format.jsx';

const LIMIT = 50;

// TaskList is one page of the project's tasks (newest first), filtered by
// status, kind and resource, paged by the service (marker), and kept live
// by the service's change stream: new tasks appear at the top of the first
// page, and tasks on the page change in place.
export function TaskList({ search }) {
  const filter = {
    status: search.get('status') || '',
    kind: search.get('kind') || '',
    resource: search.get('resource') || '',
  };
  const marker = search.get('marker') || '';
  const key = query({ ...filter, marker });

  const [page, setPage] = useState(null);
  const [error, setError] = useState('');
  const [kinds, setKinds] = useState([]);
  const [live, setLive] = useState('connecting');
  // Markers of the pages before this one, to go back.
  const prev = useRef([]);

  useEffect(() => {
    api.kinds().then(setKinds, () => {});
  }, []);

  useEffect(() => {
    let stopped = false;
    let loaded = null; // the page once fetched
    const pending = []; // changes that arrived before the page

    const apply = (tasks, t) => {
      const i = tasks.findIndex((x) => x.id === t.id);
      const wanted = !filter.status || t.status === filter.status;
      if (i >= 0) {
        if (!wanted) return tasks.filter((x) => x.id !== t.id);
        if (tasks[i].updated_at && t.updated_at && tasks[i].updated_at > t.updated_at) return tasks;
        const next = tasks.slice();
        next[i] = t;
        return next;
      }
      // A task not on the page: only the first page shows newcomers, and
      // only newer ones than its top (an old task that changed belongs on
      // a later page).
      if (!wanted || marker) return tasks;
      if (tasks.length && t.created_at < tasks[0].created_at) return tasks;
      return [t, ...tasks].slice(0, LIMIT);
    };

    // Changes are applied in batches, ten times a second at most.
    const changes = batcher(100, (ts) => {
      if (stopped) return;
      setPage((pg) => {
        if (!pg) return pg;
        let tasks = pg.tasks;
        for (const t of ts) tasks = apply(tasks, t);
        return tasks === pg.tasks ? pg : { ...pg, tasks };
      });
    });
    // The stream is opened before the page is read, so that no change
    // falls between the two; changes seen first are applied after.
    const stream = follow(
      `/v1/tasks${query({ kind: filter.kind, resource: filter.resource, follow: 'true' })}`,
      {
        task: (t) => {
          if (stopped) return;
          if (!loaded) pending.push(t);
          else changes.push(t);
        },
      },
      setLive,
    );

    setPage(null);
    setError('');
    const t0 = performance.now();
    api.tasks({ ...filter, marker, limit: LIMIT }).then(
      (pg) => {
        if (stopped) return;
        let tasks = pg.tasks || [];
        for (const t of pending) tasks = apply(tasks, t);
        loaded = { ...pg, tasks };
        setPage(loaded);
        // Measured by the browser tests: from asking to the rows painted.
        requestAnimationFrame(() => {
          if (!stopped) performance.measure('task-list', { start: t0 });
        });
      },
      (err) => {
        if (!stopped) setError(err.message);
      },
    );
    return () => {
      stopped = true;
      changes.stop();
      stream.close();
    };
  }, [key]);

  const go = (changes, keepPrev = false) => {
    if (!keepPrev) prev.current = [];
    navigate(`/${query({ ...filter, marker, ...changes })}`);
  };

  const next = nextMarker(page);

  return (
    <main class="page wide">
      <div class="title-row">
        <h1>Tasks</h1>
        <span class={`live ${live}`} title="updates from the service's change stream" data-testid="live">
          {live === 'live' ? 'live' : live}
        </span>
        <Link href="/new" class="button primary">
          New task
        </Link>
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select name="status" value={filter.status} onChange={(e) => go({ status: e.currentTarget.value, marker: '' })}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Kind
          <select name="kind" value={filter.kind} onChange={(e) => go({ kind: e.currentTarget.value, marker: '' })}>
            <option value="">any</option>
            {kinds.map((k) => (
              <option value={k.name}>{k.name}</option>
            ))}
            {filter.kind && !kinds.some((k) => k.name === filter.kind) && <option value={filter.kind}>{filter.kind}</option>}
          </select>
        </label>
        <label>
          Resource
          <input
            name="resource"
            placeholder="server/ID or an id"
            value={filter.resource}
            onChange={(e) => go({ resource: e.currentTarget.value.trim(), marker: '' })}
          />
        </label>
      </form>
      {error && <p class="alert error">{error}</p>}
      {!page && !error && <p class="muted">Loading…</p>}
      {page && page.tasks.length === 0 && (
        <p class="empty" data-testid="no-tasks">
          No tasks{filter.status || filter.kind || filter.resource ? ' match these filters' : ' yet'}.
        </p>
      )}
      {page && page.tasks.length > 0 && (
        <table class="tasks" data-testid="task-table">
          <thead>
            <tr>
              <th>Task</th>
              <th>Kind</th>
              <th>Status</th>
              <th class="hide-sm">Progress</th>
              <th class="hide-sm">Created</th>
            </tr>
          </thead>
          <tbody>
            {page.tasks.map((t) => (
              <tr key={t.id} data-task={t.id} data-status={t.status}>
                <td>
                  <Link href={`/tasks/${encodeURIComponent(t.id)}`} class="mono" title={t.id}>
                    {shortID(t.id)}
                  </Link>
                </td>
                <td>{t.kind}</td>
                <td>
                  <StatusBadge status={t.status} />
                </td>
                <td class="hide-sm">
                  <ProgressBar progress={t.progress} />
                </td>
                <td class="hide-sm muted">{fmtTime(t.created_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div class="pager">
        <button type="button" disabled={!marker} onClick={() => go({ marker: '' })}>
          First page
        </button>
        <button
          type="button"
          disabled={!marker}
          onClick={() => {
            const back = prev.current.pop() || '';
            go({ marker: back }, true);
          }}
        >
          Previous
        </button>
        <button
          type="button"
          data-testid="next-page"
          disabled={!next}
          onClick={() => {
            prev.current.push(marker);
            go({ marker: next }, true);
          }}
        >
          Next
        </button>
      </div>
    </main>
  );
}
