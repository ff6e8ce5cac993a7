// The console's entry: who is signed in, then one page per hash route (#/exports, #/exports/new,
// #/exports/{id}, #/exports/{id}/edit, #/connections). Role-aware: a Viewer gets no write control.
import { api, ApiError, type Me } from './api';
import { h, notice, replace } from './dom';
import { connectionsPage } from './pages/connections';
import { exportDetailPage } from './pages/export-detail';
import { exportFormPage } from './pages/export-form';
import { exportsPage } from './pages/exports';

const main = document.getElementById('main')!;
let me: Me;
let shown = 0;

async function route(): Promise<void> {
  const token = ++shown;
  const stillShown = () => token === shown;
  const path = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  document.getElementById('nav-exports')!.toggleAttribute('aria-current', path[0] !== 'connections');
  document.getElementById('nav-connections')!.toggleAttribute('aria-current', path[0] === 'connections');
  replace(main, h('p', {}, 'Loading…'));
  try {
    if (path[0] === 'connections' && me.canWrite) await connectionsPage(main, me);
    else if (path[0] === 'exports' && path[1] === 'new' && me.canWrite) await exportFormPage(main, me);
    else if (path[0] === 'exports' && path[1] && path[2] === 'edit' && me.canWrite) await exportFormPage(main, me, path[1]);
    else if (path[0] === 'exports' && path[1]) await exportDetailPage(main, me, path[1], stillShown);
    else await exportsPage(main, me);
  } catch (e) {
    if (stillShown()) replace(main, h('h1', { tabindex: '-1' }, 'Something went wrong'), notice((e as Error).message, 'error'));
  }
  if (!stillShown()) return;
  const title = main.querySelector('h1');
  document.title = `${title?.textContent ?? 'Console'} · CI → Braze export`;
  title?.focus({ preventScroll: true });
}

async function start(): Promise<void> {
  try {
    me = await api<Me>('GET', '/api/me');
  } catch (e) {
    // Not signed in: Easy Auth's login brings the person back here with a session cookie.
    const signIn = `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(location.pathname + location.hash)}`;
    const message = e instanceof ApiError && e.status === 401 ? 'Sign in to use the console.' : (e as Error).message;
    replace(
      main,
      h('h1', { tabindex: '-1' }, 'CI → Braze export'),
      notice(message, e instanceof ApiError && e.status === 401 ? 'info' : 'error'),
      h('p', {}, h('a', { href: signIn, class: 'button' }, 'Sign in')),
    );
    return;
  }
  replace(document.getElementById('who')!, `${me.name} · ${me.role}`);
  document.getElementById('nav-connections')!.hidden = !me.canWrite;
  window.addEventListener('hashchange', () => void route());
  await route();
}

void start();
