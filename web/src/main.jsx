import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, onUnauthorized } from './api.js';
import { Link, match, navigate, useLocation } from './router.jsx';
import { TaskList } from './views/TaskList.jsx';
import { TaskView } from './views/TaskView.jsx';
import { ResourceView } from './views/ResourceView.jsx';
import { NewTask } from './views/NewTask.jsx';
import { Login } from './views/Login.jsx';
import './style.css';

function App() {
  const loc = useLocation();
  // undefined: asking the service; null: logged out; else whoami.
  const [me, setMe] = useState(undefined);
  const [bootError, setBootError] = useState('');

  const refresh = useCallback(() => {
    api.whoami().then(
      (w) => setMe(w),
      (err) => {
        if (err.status === 401) setMe(null);
        else setBootError(err.message);
      },
    );
  }, []);

  useEffect(() => {
    refresh();
    return onUnauthorized(() => setMe(null));
  }, [refresh]);

  if (bootError) {
    return (
      <main class="page">
        <p class="alert error">The service did not answer: {bootError}</p>
      </main>
    );
  }
  if (me === undefined) return <main class="page" aria-busy="true" />;

  const logout = () =>
    api.logout().finally(() => {
      setMe(null);
      navigate('/login');
    });

  let view;
  let p;
  if (!me) {
    view = (
      <Login
        onLogin={(w) => {
          setMe(w);
          const back = loc.search.get('next');
          navigate(back && back.startsWith('/') && !back.startsWith('//') ? back : '/', { replace: true });
        }}
      />
    );
  } else if (loc.path === '/login') {
    view = (
      <Login
        me={me}
        onLogin={(w) => {
          setMe(w);
          navigate('/', { replace: true });
        }}
      />
    );
  } else if ((p = match('/tasks/:id', loc.path))) {
    view = <TaskView key={p.id} id={p.id} me={me} />;
  } else if ((p = match('/resources/:type/:id', loc.path))) {
    view = <ResourceView key={`${p.type}/${p.id}`} type={p.type} id={p.id} />;
  } else if ((p = match('/new', loc.path)) || (p = match('/new/:kind', loc.path))) {
    view = <NewTask kind={p.kind || ''} />;
  } else if (match('/', loc.path) || match('/tasks', loc.path)) {
    view = <TaskList search={loc.search} />;
  } else {
    view = (
      <main class="page">
        <h1>Not found</h1>
        <p>
          Nothing here. <Link href="/">All tasks</Link>
        </p>
      </main>
    );
  }

  return (
    <>
      <header class="top">
        <Link href="/" class="brand">
          ostask
        </Link>
        {me && (
          <nav>
            <Link href="/" class={loc.path === '/' ? 'active' : ''}>
              Tasks
            </Link>
            <Link href="/new" class={loc.path.startsWith('/new') ? 'active' : ''}>
              New task
            </Link>
          </nav>
        )}
        {me && (
          <div class="who" data-testid="whoami">
            <span title={me.user && me.user.id}>{me.user && me.user.name}</span>
            <span class="muted">
              {' @ '}
              <span title={me.project && me.project.id}>{me.project && me.project.name}</span>
              {me.admin ? ' (admin)' : ''}
            </span>
            <button type="button" class="link" onClick={logout}>
              Log out
            </button>
          </div>
        )}
      </header>
      {view}
    </>
  );
}

render(<App />, document.getElementById('app'));
