import { useState } from 'preact/hooks';
import { api } from '../api.js';

// Login asks the service for a session: Keystone credentials (user,
// password, project) or a token. The service checks them with Keystone and
// sets an HttpOnly cookie; the dashboard never keeps the password or token.
export function Login({ me, onLogin }) {
  const [mode, setMode] = useState('password');
  const [form, setForm] = useState({ username: '', password: '', project: '', domain: '', token: '' });
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const set = (k) => (e) => setForm({ ...form, [k]: e.currentTarget.value });

  const submit = (e) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    const body =
      mode === 'token'
        ? { token: form.token.trim() }
        : {
            username: form.username.trim(),
            password: form.password,
            project: form.project.trim(),
            ...(form.domain.trim() ? { domain: form.domain.trim() } : {}),
          };
    api.login(body).then(
      (w) => {
        setBusy(false);
        onLogin(w);
      },
      (err) => {
        setBusy(false);
        setError(err.status === 401 ? 'Keystone refused these credentials.' : err.message);
      },
    );
  };

  return (
    <main class="page narrow">
      <h1>Log in</h1>
      {me && (
        <p class="muted">
          Logged in as {me.user.name} in project {me.project.name}. Logging in again replaces that session.
        </p>
      )}
      <div class="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={mode === 'password'} onClick={() => setMode('password')}>
          User and password
        </button>
        <button type="button" role="tab" aria-selected={mode === 'token'} onClick={() => setMode('token')}>
          Token
        </button>
      </div>
      <form class="card form" onSubmit={submit} id="login-form">
        {mode === 'password' ? (
          <>
            <label>
              User
              <input name="username" autocomplete="username" required value={form.username} onInput={set('username')} />
            </label>
            <label>
              Password
              <input
                name="password"
                type="password"
                autocomplete="current-password"
                required
                value={form.password}
                onInput={set('password')}
              />
            </label>
            <label>
              Project <span class="muted">(name or id)</span>
              <input name="project" required value={form.project} onInput={set('project')} />
            </label>
            <label>
              Domain <span class="muted">(optional, Default if empty)</span>
              <input name="domain" value={form.domain} onInput={set('domain')} />
            </label>
          </>
        ) : (
          <label>
            Keystone token
            <input name="token" required autocomplete="off" value={form.token} onInput={set('token')} />
          </label>
        )}
        {error && (
          <p class="alert error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
