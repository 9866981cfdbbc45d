import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, api, follow } from '../api.js';
import { Link } from '../router.jsx';
import { FINAL, ProgressBar, StatusBadge, batcher, fmtClock, fmtDur, fmtTime, parseGoDuration } from '../format.jsx';
import { FlowGraph, Legend } from './Graph.jsx';
import { ErrorCard } from './ErrorCard.jsx';

// TaskView is one task: its flow as a graph, a timeline of its atoms, its
// event log, its result and its error, kept live by the task's event
// stream until the task is final.
export function TaskView({ id, me }) {
  const [task, setTask] = useState(null);
  const [graph, setGraph] = useState(null);
  const [events, setEvents] = useState([]);
  const [error, setError] = useState(null);
  const [live, setLive] = useState('connecting');
  const [selected, setSelected] = useState('');
  const [cancelMsg, setCancelMsg] = useState('');
  const [cancelling, setCancelling] = useState(false);

  useEffect(() => {
    let stopped = false;
    let lastSeq = 0;
    let timer = 0;
    let graphStale = false;

    const loadTask = () =>
      api.task(id).then(
        (t) => !stopped && setTask(t),
        (err) => !stopped && setError(err),
      );
    const loadGraph = () =>
      api.graph(id).then(
        (g) => !stopped && setGraph({ nodes: g.nodes || [], edges: g.edges || [] }),
        (err) => !stopped && !(err instanceof ApiError && err.status === 404) && setError(err),
      );
    // Progress, result and error live on the task: read it again shortly
    // after a burst of events rather than after each.
    const soon = () => {
      if (timer) return;
      timer = setTimeout(() => {
        timer = 0;
        if (stopped) return;
        loadTask();
        if (graphStale) {
          graphStale = false;
          loadGraph();
        }
      }, 250);
    };

    loadTask();
    loadGraph();

    // Events are applied in batches (a finished task's log arrives at
    // once; a big flow's can be hundreds a second): one render per batch.
    const incoming = batcher(50, (evs) => {
      if (stopped) return;
      setEvents((cur) => cur.concat(evs));
      const steps = evs.filter((ev) => ev.step);
      if (steps.length) {
        setGraph((g) => {
          if (!g) return g;
          const index = new Map(g.nodes.map((n, i) => [n.name, i]));
          const nodes = g.nodes.slice();
          for (const ev of steps) {
            const i = index.get(ev.step);
            if (i === undefined) {
              graphStale = true;
              continue;
            }
            const n = { ...nodes[i], state: ev.to };
            if (ev.attempt) n.attempts = ev.attempt;
            if (ev.to === 'RUNNING' && !n.started_at) n.started_at = ev.time;
            if (['SUCCESS', 'FAILURE', 'REVERTED', 'REVERT_FAILURE'].includes(ev.to)) n.finished_at = ev.time;
            nodes[i] = n;
          }
          return { ...g, nodes };
        });
      }
      const own = evs.filter((ev) => !ev.step).pop();
      if (own) setTask((t) => (t ? { ...t, status: own.to } : t));
      soon();
    });

    const stream = follow(
      `/v1/tasks/${encodeURIComponent(id)}/events?follow=true`,
      {
        event: (ev) => {
          if (stopped || ev.seq <= lastSeq) return;
          lastSeq = ev.seq;
          incoming.push(ev);
        },
        end: (t) => {
          if (stopped) return;
          incoming.stop();
          // What was still waiting to be applied: the end's task and the
          // graph read below are the final word.
          api.events(id).then((evs) => !stopped && setEvents(evs), () => {});
          setTask(t);
          setLive('ended');
          stream.close();
          // The graph as stored, now final (timings included).
          loadGraph();
        },
      },
      (s) => !stopped && setLive((cur) => (cur === 'ended' ? cur : s)),
    );
    return () => {
      stopped = true;
      clearTimeout(timer);
      incoming.stop();
      stream.close();
    };
  }, [id]);

  // A clock for the bars of running atoms.
  const [now, setNow] = useState(Date.now());
  const running = task && !FINAL.has(task.status);
  useEffect(() => {
    if (!running) return undefined;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [running]);

  if (error) {
    return (
      <main class="page">
        <h1>Task {id}</h1>
        <p class="alert error" data-testid="task-error">
          {error.status === 404 ? 'No such task in your project.' : error.message}
        </p>
        <Link href="/">All tasks</Link>
      </main>
    );
  }
  if (!task) return <main class="page muted">Loading…</main>;

  const cancel = () => {
    setCancelling(true);
    setCancelMsg('');
    api.cancel(id).then(
      (t) => {
        setCancelling(false);
        setTask(t);
        setCancelMsg('Cancel requested: the task stops and reverts what it did.');
      },
      (err) => {
        setCancelling(false);
        setCancelMsg(err.status === 409 ? 'The task had already finished.' : err.message);
      },
    );
  };

  const final = FINAL.has(task.status);
  return (
    <main class="page wide task" data-testid="task" data-status={task.status}>
      <div class="title-row">
        <h1>
          {task.kind} <span class="mono small">{task.id}</span>
        </h1>
        <StatusBadge status={task.status} />
        <span class={`live ${live}`} data-testid="live">
          {live}
        </span>
        {!final && (
          <button type="button" class="danger" data-testid="cancel" disabled={cancelling || task.cancel_requested} onClick={cancel}>
            {task.cancel_requested ? 'Cancelling…' : 'Cancel'}
          </button>
        )}
      </div>
      {cancelMsg && (
        <p class="alert info" role="status">
          {cancelMsg}
        </p>
      )}

      <section class="facts card">
        <dl>
          <dt>Progress</dt>
          <dd>
            <ProgressBar progress={task.progress} />
            {task.progress && task.progress.current && <span class="muted"> {task.progress.current}</span>}
          </dd>
          <dt>Created</dt>
          <dd>{fmtTime(task.created_at)}</dd>
          {task.started_at && (
            <>
              <dt>Started</dt>
              <dd>{fmtTime(task.started_at)}</dd>
            </>
          )}
          {task.finished_at && (
            <>
              <dt>Finished</dt>
              <dd>
                {fmtTime(task.finished_at)}
                {task.started_at && (
                  <span class="muted"> ({fmtDur(new Date(task.finished_at) - new Date(task.started_at))})</span>
                )}
              </dd>
            </>
          )}
          <dt>Attempts</dt>
          <dd>{task.attempts}</dd>
          {task.worker && (
            <>
              <dt>Worker</dt>
              <dd class="mono">{task.worker}</dd>
            </>
          )}
          {me && me.admin && (
            <>
              <dt>Project</dt>
              <dd class="mono">{task.project}</dd>
            </>
          )}
        </dl>
        <details>
          <summary>Parameters and options</summary>
          <pre>{JSON.stringify({ params: task.params, options: task.options }, null, 2)}</pre>
        </details>
      </section>

      {task.error && <ErrorCard error={task.error} />}
      <Result task={task} />

      <section class="card">
        <h2>Flow</h2>
        <Legend />
        {graph ? <FlowGraph graph={graph} selected={selected} onSelect={(n) => setSelected(selected === n ? '' : n)} /> : <p class="muted">Loading…</p>}
      </section>

      {graph && graph.nodes.length > 0 && (
        <section class="card">
          <h2>Timeline</h2>
          <Timeline nodes={graph.nodes} now={now} selected={selected} onSelect={(n) => setSelected(selected === n ? '' : n)} />
        </section>
      )}

      <section class="card">
        <h2>
          Events
          {selected && (
            <span class="muted small">
              {' '}
              of {selected}{' '}
              <button type="button" class="link" onClick={() => setSelected('')}>
                show all
              </button>
            </span>
          )}
        </h2>
        <EventLog events={selected ? events.filter((e) => e.step === selected) : events} />
      </section>
    </main>
  );
}

function Result({ task }) {
  const resources = task.resources || [];
  const result = task.result || {};
  const keys = Object.keys(result);
  if (!resources.length && !keys.length) return null;
  const byID = new Map(resources.map((r) => [r.id, r]));
  return (
    <section class="card result" data-testid="result">
      <h2>Result</h2>
      {keys.length > 0 && (
        <dl>
          {keys.map((k) => {
            const v = result[k];
            const r = typeof v === 'string' ? byID.get(v) : null;
            return (
              <>
                <dt>{k}</dt>
                <dd class="mono">
                  {r ? <Link href={`/resources/${encodeURIComponent(r.type)}/${encodeURIComponent(r.id)}`}>{r.id}</Link> : JSON.stringify(v)}
                </dd>
              </>
            );
          })}
        </dl>
      )}
      {resources.length > 0 && (
        <>
          <h3>Resources</h3>
          <ul class="resources">
            {resources.map((r) => (
              <li key={`${r.type}/${r.id}`}>
                <Link href={`/resources/${encodeURIComponent(r.type)}/${encodeURIComponent(r.id)}`} data-resource={`${r.type}/${r.id}`}>
                  {r.type} <span class="mono">{r.id}</span>
                </Link>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

function Timeline({ nodes, now, selected, onSelect }) {
  const ran = nodes.filter((n) => n.started_at);
  if (!ran.length) return <p class="muted">No step has started yet.</p>;
  const t = (s) => new Date(s).getTime();
  const start = Math.min(...ran.map((n) => t(n.started_at)));
  const end = Math.max(...ran.map((n) => (n.finished_at ? t(n.finished_at) : now)), start + 1);
  const span = end - start;
  const rows = ran.slice().sort((a, b) => t(a.started_at) - t(b.started_at));
  return (
    <div class="timeline" data-testid="timeline">
      {rows.map((n) => {
        const s = t(n.started_at);
        const e = n.finished_at ? t(n.finished_at) : now;
        const left = ((s - start) / span) * 100;
        const width = Math.max(((e - s) / span) * 100, 0.5);
        return (
          <div key={n.name} class={`tl-row${selected === n.name ? ' selected' : ''}`} onClick={() => onSelect(n.name)}>
            <span class="tl-name" title={n.name}>
              {n.name}
            </span>
            <span class="tl-track">
              <span class={`tl-bar state-${n.state}`} style={{ left: `${left}%`, width: `${width}%` }} />
            </span>
            <span class="tl-dur">
              {fmtDur(e - s)}
              {n.attempts > 1 ? ` ×${n.attempts}` : ''}
            </span>
          </div>
        );
      })}
    </div>
  );
}

function EventLog({ events }) {
  const box = useRef(null);
  if (!events.length) return <p class="muted">No events yet.</p>;
  return (
    <div class="events-box" ref={box}>
      <table class="events" data-testid="events">
        <thead>
          <tr>
            <th>#</th>
            <th>Time</th>
            <th>Step</th>
            <th>Transition</th>
            <th class="hide-sm">Took</th>
            <th class="hide-sm">Attempt</th>
          </tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e.seq} class={e.error ? 'has-error' : ''}>
              <td class="muted">{e.seq}</td>
              <td class="mono small">{fmtClock(e.time)}</td>
              <td>{e.step || <em>task</em>}</td>
              <td>
                {e.from ? `${e.from} → ` : ''}
                <strong>{e.to}</strong>
                {e.error && <div class="err-line">{e.error.fault || e.error.message}</div>}
              </td>
              <td class="hide-sm muted">{fmtDur(parseGoDuration(e.elapsed))}</td>
              <td class="hide-sm muted">{e.attempt || ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
