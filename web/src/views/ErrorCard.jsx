// ErrorCard shows why a task failed: the message, the step, and what the
// cloud said (its fault, code and request id). Admins also get the raw
// error and the stack.
export function ErrorCard({ error, title = 'Error' }) {
  const d = error.details;
  return (
    <section class="card error-card" data-testid="error">
      <h2>{title}</h2>
      <p class="err-msg">{error.message}</p>
      <dl>
        {error.step && (
          <>
            <dt>Step</dt>
            <dd>{error.step}</dd>
          </>
        )}
        {error.fault && (
          <>
            <dt>Fault</dt>
            <dd data-testid="fault">{error.fault}</dd>
          </>
        )}
        {error.code ? (
          <>
            <dt>Code</dt>
            <dd>{error.code}</dd>
          </>
        ) : null}
        {error.request_id && (
          <>
            <dt>Request id</dt>
            <dd class="mono" data-testid="request-id">
              {error.request_id}
            </dd>
          </>
        )}
      </dl>
      {d && (d.raw || d.stack || (d.request_ids && d.request_ids.length)) && (
        <details>
          <summary>Details (admin)</summary>
          {d.request_ids && d.request_ids.length > 0 && <p class="mono small">request ids: {d.request_ids.join(', ')}</p>}
          {d.raw && <pre>{d.raw}</pre>}
          {d.stack && <pre>{d.stack}</pre>}
        </details>
      )}
    </section>
  );
}
