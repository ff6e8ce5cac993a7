// The console's entry: who is signed in, then one page per hash route (#/exports, #/exports/new,
// #/exports/{id}, #/exports/{id}/edit, #/runs/{id}, #/connections). Role-aware: a Viewer gets no
// write control, and a route they may not use says so instead of falling through to another page.
import { api, ApiError, type Me } from './api';
import { h, notice, replace, say } from './dom';
import { connectionsPage } from './pages/connections';
import { exportDetailPage } from './pages/export-detail';
import { exportFormPage } from './pages/export-form';
import { exportsPage } from './pages/exports';
import { runPage } from './pages/run';

const main = document.getElementById('main')!;
let me: Me;
let shown = 0;

async function route(): Promise<void> {
  const token = ++shown;
  const stillShown = () => token === shown;
  const path = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  const section = path[0] === 'connections' ? 'connections' : 'exports';
  for (const name of ['exports', 'connections']) {
    const link = document.getElementById(`nav-${name}`)!;
    if (name === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  replace(main, h('p', {}, 'Loading…'));
  say('');
  const refused = (what: string) => exportsPage(main, me, `Your role (${me.role}) ${what}; ask an administrator if you need to.`);
  try {
    if (path[0] === 'connections') await (me.canWrite ? connectionsPage(main, me) : refused('cannot see connections'));
    else if (path[0] === 'runs' && path[1]) await runPage(main, me, path[1], stillShown);
    else if (path[0] === 'exports' && path[1] === 'new')
      await (me.canWrite ? exportFormPage(main, me) : refused('cannot create exports'));
    else if (path[0] === 'exports' && path[1] && path[2] === 'edit')
      await (me.canWrite ? exportFormPage(main, me, path[1]) : refused('cannot edit exports'));
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
    // Not signed in: Easy Auth's login brings the person back here with a session cookie. Signed
    // in without a role: signing in again would loop, so say who can help instead.
    const status = e instanceof ApiError ? e.status : 0;
    const signIn = `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(location.pathname + location.hash)}`;
    replace(
      main,
      h('h1', { tabindex: '-1' }, 'CI → Braze export'),
      status === 401
        ? notice('Sign in to use the console.')
        : status === 403
          ? notice(
              'You are signed in, but your account has no role in this app. Ask an administrator to assign you Admin, Contributor or Viewer (Enterprise applications → this app → Users and groups), then reload this page.',
              'error',
            )
          : notice((e as Error).message, 'error'),
      status === 401 ? h('p', {}, h('a', { href: signIn, class: 'button' }, 'Sign in')) : null,
    );
    return;
  }
  replace(document.getElementById('who')!, `${me.name} · ${me.role}`);
  document.getElementById('nav-connections')!.hidden = !me.canWrite;
  window.addEventListener('hashchange', () => void route());
  await route();
}

void start();
