import { useEffect, useState } from 'preact/hooks';
import { api, nextMarker } from '../api.js';
import { Link } from '../router.jsx';
import { ProgressBar, StatusBadge, fmtTime, shortID } from '../format.jsx';
import { ErrorCard } from './ErrorCard.jsx';

const LIMIT = 50;

// ResourceView is a cloud resource's history: every task that made or
// acted on it (Nova's instance actions), and its last fault (Nova's
// instance fault), both rebuilt on tasks.
export function ResourceView({ type, id }) {
  const [tasks, setTasks] = useState(null);
  const [next, setNext] = useState('');
  const [fault, setFault] = useState(undefined);
  const [error, setError] = useState('');

  useEffect(() => {
    let stopped = false;
    api.resourceTasks(type, id, { limit: LIMIT }).then(
      (pg) => {
        if (stopped) return;
        setTasks(pg.tasks || []);
        setNext(nextMarker(pg));
      },
      (err) => !stopped && setError(err.message),
    );
    api.resourceFault(type, id).then(
      (t) => !stopped && setFault(t),
      (err) => !stopped && setError(err.message),
    );
    return () => {
      stopped = true;
    };
  }, [type, id]);

  const more = () =>
    api.resourceTasks(type, id, { limit: LIMIT, marker: next }).then(
      (pg) => {
        setTasks((ts) => [...ts, ...(pg.tasks || [])]);
        setNext(nextMarker(pg));
      },
      (err) => setError(err.message),
    );

  return (
    <main class="page wide" data-testid="resource">
      <div class="title-row">
        <h1>
          {type} <span class="mono small">{id}</span>
        </h1>
      </div>
      {error && <p class="alert error">{error}</p>}
      {fault === undefined ? null : fault ? (
        <div data-testid="resource-fault">
          <ErrorCard error={fault.error || { message: `task ${fault.status}` }} title="Last fault" />
          <p class="muted">
            from task <Link href={`/tasks/${encodeURIComponent(fault.id)}`}>{fault.id}</Link> ({fault.kind}, {fault.status},{' '}
            {fmtTime(fault.finished_at || fault.updated_at)})
          </p>
        </div>
      ) : (
        <p class="muted" data-testid="no-fault">
          No fault: no task on this {type} failed.
        </p>
      )}
      <section class="card">
        <h2>History</h2>
        {!tasks && !error && <p class="muted">Loading…</p>}
        {tasks && tasks.length === 0 && <p class="empty">No task of yours made or acted on this {type}.</p>}
        {tasks && tasks.length > 0 && (
          <table class="tasks" data-testid="history">
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
              {tasks.map((t) => (
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
        {next && (
          <button type="button" onClick={more}>
            More
          </button>
        )}
      </section>
    </main>
  );
}
