// vcm dashboard: a client of vcm's own REST API, nothing else. The token lives in
// sessionStorage (this tab, until it closes or signs out), goes only in the Authorization header,
// never in a URL. Every value from the server reaches the page as text (textContent), never as
// markup. The server decides what each role may do; the page only hides what it would refuse.
'use strict';

const TOKEN_KEY = 'vcm.token';
// Polling is an audited read each time: quick while something changes, slow otherwise.
const BUSY_MS = 2000;
const IDLE_MS = 15000;
const HIDDEN_MS = 60000;
const TRANSITIONAL = ['Pending', 'Provisioning', 'Deleting'];
const PHASES = ['Pending', 'Provisioning', 'Ready', 'Deleting', 'Deleted', 'Failed'];

let me = null;       // GET /v1/whoami
let timer = null;    // the current view's next refresh
let generation = 0;  // bumped on every navigation: a stale view's answers are dropped

// ---- helpers ------------------------------------------------------------------------------

/** An element: attributes (on* are listeners), then children (strings become text). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const view = () => document.getElementById('view');

/** Replaces `parent`'s children; null and false are left out (replaceChildren would write them). */
function fill(parent, ...nodes) {
  parent.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

function show(...nodes) {
  fill(view(), ...nodes);
}

function flash(message, kind) {
  const f = document.getElementById('flash');
  if (!message) { f.hidden = true; f.textContent = ''; return; }
  f.textContent = message;
  f.className = kind === 'info' ? 'info' : '';
  f.hidden = false;
}

/** A duration in words: 42s, 5m, 3h 10m, 2d 4h. */
function span(ms) {
  const s = Math.max(0, Math.round(Math.abs(ms) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h}h ${m % 60}m` : `${h}h`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

const age = (iso) => (iso ? span(Date.now() - Date.parse(iso)) : '');

function until(iso) {
  if (!iso) return '';
  const ms = Date.parse(iso) - Date.now();
  return ms >= 0 ? `in ${span(ms)}` : `${span(ms)} ago`;
}

function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

/** Runs `refresh` now and again after the delay each run returns, until the view changes. */
function every(refresh) {
  const gen = generation;
  const tick = async () => {
    const delay = await refresh();
    if (gen === generation) timer = setTimeout(tick, document.hidden ? HIDDEN_MS : delay);
  };
  tick();
}

const phaseBadge = (phase) => el('span', { class: `badge phase-${phase}`, 'data-phase': phase }, phase);

// ---- the API ------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

/** Calls the API with the session's token; the answer's JSON, or the Response with `raw`. */
async function api(method, path, { body, accept, raw } = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) || ''}` };
  if (accept) headers.Accept = accept;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
    redirect: 'error',
  });
  if (!response.ok) {
    let detail = {};
    try { detail = (await response.json()).error || {}; } catch (_) { /* not JSON */ }
    const err = new ApiError(response.status, detail.code || `http_${response.status}`,
      detail.message || response.statusText, detail.request_id || response.headers.get('x-request-id'));
    if (response.status === 401 && me) signOut(`Signed out: ${err.message}`);
    throw err;
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

function describe(err) {
  if (!(err instanceof ApiError)) return `vcm did not answer: ${err.message}`;
  const id = err.requestId ? ` (request ${err.requestId})` : '';
  return `${err.status} ${err.code}: ${err.message}${id}`;
}

// ---- what a role may do (the server checks again) --------------------------------------------

const canCreate = () => me && me.role !== 'viewer';
const isAdmin = () => me && me.role === 'admin';

function canManage(cluster) {
  if (!me) return false;
  switch (me.role) {
    case 'admin': return true;
    case 'developer': return cluster.owner === me.subject || (!!me.team && cluster.team === me.team);
    case 'ci': return cluster.owner === me.subject;
    default: return false;
  }
}

/** Changing ttl or idle timeout: admins, and developers for their own and their team's (not ci). */
const canUpdate = (cluster) => canManage(cluster) && me.role !== 'ci';

// ---- sign in and out ----------------------------------------------------------------------

let pendingFlash = null; // shown once the next view is up
let returnTo = null;     // where a signed-out visitor was going (a commit status's link, say)

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  renderChrome();
  pendingFlash = message || null;
  if (location.hash === '#/signin') route();
  else location.hash = '#/signin';
}

function renderChrome() {
  document.getElementById('nav').hidden = !me;
  document.getElementById('me').hidden = !me;
  document.getElementById('nav-audit').hidden = !isAdmin();
  if (me) {
    document.getElementById('me-name').textContent = me.name;
    document.getElementById('me-role').textContent = me.team ? `${me.role} · ${me.team}` : me.role;
  }
  const current = (location.hash.split('/')[1] || '').split('?')[0];
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('current', a.dataset.nav === current);
  }
}

function signInView() {
  const input = el('input', {
    type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true,
    placeholder: 'vcm_…', 'aria-label': 'API token',
  });
  const form = el('form', { class: 'signin', id: 'signin' },
    el('h1', {}, 'Sign in to vcm'),
    el('p', { class: 'muted' }, 'Paste an API token (vcm token create, or the one your admin gave you). ',
      'It is kept in this tab only, until you sign out or close it.'),
    input,
    el('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    try {
      me = await api('GET', '/v1/whoami');
      flash(null);
      renderChrome();
      const target = returnTo || '#/clusters';
      returnTo = null;
      // NB: the sign-in form shows at the address asked for; the same hash fires no hashchange.
      if (location.hash === target) route();
      else location.hash = target;
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      flash(`Sign-in refused: ${describe(err)}`);
    }
  });
  show(form);
  input.focus();
}

// ---- clusters -----------------------------------------------------------------------------

function query(hash) {
  const q = hash.split('?')[1] || '';
  return new URLSearchParams(q);
}

function clustersView(params) {
  const gen = generation;
  const phase = el('select', { id: 'filter-phase', 'aria-label': 'Phase' },
    el('option', { value: '' }, 'any phase'),
    PHASES.map((p) => el('option', { value: p, selected: params.get('phase') === p }, p)));
  const owner = el('input', { id: 'filter-owner', placeholder: 'token:t-…', value: params.get('owner') || '' });
  const label = el('input', { id: 'filter-label', placeholder: 'repo=web,pr=42', value: params.get('label') || '' });
  const ended = el('input', { type: 'checkbox', id: 'filter-ended', checked: params.get('ended') === '1' });
  const apply = () => {
    const q = new URLSearchParams();
    if (phase.value) q.set('phase', phase.value);
    if (owner.value.trim()) q.set('owner', owner.value.trim());
    if (label.value.trim()) q.set('label', label.value.trim());
    if (ended.checked) q.set('ended', '1');
    location.hash = `#/clusters${q.toString() ? `?${q}` : ''}`;
  };
  const filters = el('form', { class: 'toolbar', id: 'filters', onsubmit: (e) => { e.preventDefault(); apply(); } },
    el('label', {}, 'Phase', phase),
    el('label', {}, 'Owner', owner),
    el('label', {}, 'Labels', label),
    el('label', {}, el('span', {}, 'Ended too'), ended),
    el('button', { type: 'submit' }, 'Filter'));
  phase.addEventListener('change', apply);
  ended.addEventListener('change', apply);

  const body = el('tbody', { id: 'clusters' });
  const status = el('p', { class: 'muted', id: 'clusters-status' }, 'Loading…');
  const table = el('table', {},
    el('thead', {}, el('tr', {}, ['Name', 'Phase', 'Owner', 'Team', 'Size', 'Version', 'Host', 'Age', 'Expires']
      .map((h) => el('th', {}, h)))),
    body);
  show(el('h1', {}, 'Clusters'), canCreate() ? createForm() : null, filters, status, table);

  const search = new URLSearchParams({ limit: '500' });
  if (params.get('phase')) search.set('phase', params.get('phase'));
  if (params.get('owner')) search.set('owner', params.get('owner'));
  for (const l of (params.get('label') || '').split(',').map((s) => s.trim()).filter(Boolean)) {
    search.append('label', l);
  }
  const showEnded = params.get('ended') === '1' || ['Deleted', 'Failed'].includes(params.get('phase'));
  const refresh = async () => {
    try {
      const page = await api('GET', `/v1/clusters?${search}`);
      if (gen !== generation) return;
      const items = page.items.filter((c) => showEnded || (c.phase !== 'Deleted'));
      body.replaceChildren(...items.reverse().map((c) => el('tr', { 'data-cluster': c.name },
        el('td', {}, el('a', { href: `#/clusters/${encodeURIComponent(c.id)}` }, c.name)),
        el('td', {}, phaseBadge(c.phase)),
        el('td', { class: 'mono' }, c.owner),
        el('td', {}, c.team || ''),
        el('td', {}, c.size),
        el('td', {}, c.kubernetes_version),
        el('td', {}, c.host),
        el('td', { title: c.created_at }, age(c.created_at)),
        el('td', { title: c.expires_at }, c.deleted_at ? '' : until(c.expires_at)))));
      const more = page.next_cursor ? ' (the oldest 500; narrow the filters to see the rest)' : '';
      status.textContent = `${items.length} cluster${items.length === 1 ? '' : 's'}, newest first${more}`;
      return items.some((c) => TRANSITIONAL.includes(c.phase)) ? BUSY_MS : IDLE_MS;
    } catch (err) {
      if (gen === generation) status.textContent = describe(err);
      return IDLE_MS;
    }
  };
  every(refresh);
}

function createForm() {
  const name = el('input', { id: 'create-name', name: 'name', placeholder: 'generated when empty', pattern: '[a-z0-9]([a-z0-9\\-]*[a-z0-9])?', maxlength: 40 });
  // NB: sizes are configurable; the built-in ones are suggestions, the server checks.
  const size = el('input', { id: 'create-size', name: 'size', list: 'sizes', placeholder: 'server default', size: 10 });
  const sizes = el('datalist', { id: 'sizes' }, ['small', 'medium', 'large'].map((s) => el('option', { value: s })));
  const version = el('input', { id: 'create-version', name: 'version', placeholder: 'server default', size: 10 });
  const ttl = el('input', { id: 'create-ttl', name: 'ttl', placeholder: 'e.g. 2h', size: 8 });
  const button = el('button', { type: 'submit', class: 'primary' }, 'Create cluster');
  const form = el('form', { class: 'create', id: 'create' },
    el('label', {}, 'Name', name), el('label', {}, 'Size', size, sizes),
    el('label', {}, 'Kubernetes', version), el('label', {}, 'TTL', ttl), button);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const req = {};
    if (size.value.trim()) req.size = size.value.trim();
    if (name.value.trim()) req.name = name.value.trim();
    if (version.value.trim()) req.kubernetes_version = version.value.trim();
    if (ttl.value.trim()) req.ttl = ttl.value.trim();
    button.disabled = true;
    try {
      const c = await api('POST', '/v1/clusters', { body: req });
      flash(`Creating ${c.name} (${c.id}) on ${c.host}`, 'info');
      route(); // shown now, not at the next quiet-time refresh
    } catch (err) {
      flash(`Create refused: ${describe(err)}`);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function clusterView(id) {
  const gen = generation;
  const facts = el('dl', { class: 'facts', id: 'facts' });
  const title = el('h1', {}, 'Cluster');
  const actions = el('div', { class: 'actions', id: 'actions' });
  const events = el('tbody', { id: 'events' });
  const usage = el('div', { id: 'usage' }, el('p', { class: 'muted' }, 'Reading…'));
  show(el('p', {}, el('a', { href: '#/clusters' }, '← Clusters')), title, facts, actions,
    el('h2', {}, 'Events'),
    el('table', {}, el('thead', {}, el('tr', {}, ['When', 'Kind', 'Change', 'Reason', 'Message'].map((h) => el('th', {}, h)))), events),
    el('h2', {}, 'Usage'), usage);

  let shownActions = '';
  let usageRead = 0;
  const refresh = async () => {
    let c;
    try {
      c = await api('GET', `/v1/clusters/${encodeURIComponent(id)}`);
    } catch (err) {
      if (gen === generation) { title.textContent = 'Cluster'; facts.replaceChildren(el('p', { class: 'error', id: 'cluster-error' }, describe(err))); }
      return IDLE_MS;
    }
    if (gen !== generation) return IDLE_MS;
    title.replaceChildren(`${c.name} `, phaseBadge(c.phase));
    const rows = [
      ['Id', c.id], ['Owner', c.owner], ['Team', c.team || '—'], ['Message', c.message || '—'],
      ['Size', c.size], ['Kubernetes', c.kubernetes_version], ['Host', c.host],
      ['Endpoint', c.endpoint || '—'], ['Created', `${c.created_at} (${age(c.created_at)} ago)`],
      ['Ready', c.ready_at || '—'], ['Expires', `${c.expires_at} (${until(c.expires_at)})`],
      ['TTL', c.ttl], ['Idle timeout', c.idle_timeout || '—'], ['Last activity', c.last_activity_at],
      ['Labels', Object.entries(c.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ') || '—'],
    ];
    if (c.deleted_at) rows.push(['Deleted', `${c.deleted_at} (${c.delete_reason || 'requested'})`]);
    facts.replaceChildren(...rows.flatMap(([k, v]) => [el('dt', {}, k), el('dd', { 'data-fact': k }, v)]));
    const live = !['Deleting', 'Deleted'].includes(c.phase);
    const want = `${canManage(c)}|${c.phase}`;
    if (want !== shownActions) {
      shownActions = want;
      fill(actions,
        canManage(c) && c.phase === 'Ready' ? el('button', { type: 'button', id: 'download-kubeconfig', class: 'primary', onclick: () => download(c) }, 'Download kubeconfig') : null,
        canUpdate(c) && live ? ttlForm(c) : null,
        canUpdate(c) && live && c.idle_timeout ? el('button', { type: 'button', id: 'keepalive', onclick: () => keepalive(c) }, 'Keep alive') : null,
        canManage(c) && live ? el('button', { type: 'button', id: 'delete-cluster', class: 'danger', onclick: () => remove(c) }, 'Delete') : null,
        canManage(c) ? null : el('p', { class: 'muted', id: 'read-only' }, `Read only: a ${me.role} cannot change or take credentials for this cluster.`));
    }
    try {
      const list = await api('GET', `/v1/clusters/${encodeURIComponent(id)}/events`);
      if (gen !== generation) return IDLE_MS;
      events.replaceChildren(...list.items.map((e) => el('tr', {},
        el('td', { title: e.at }, `${age(e.at)} ago`), el('td', {}, e.kind),
        el('td', {}, e.from_phase || e.to_phase ? `${e.from_phase || '·'} → ${e.to_phase || '·'}` : ''),
        el('td', {}, e.reason || ''), el('td', {}, e.message))));
    } catch (err) {
      events.replaceChildren(el('tr', {}, el('td', { colspan: 5, class: 'error' }, describe(err))));
    }
    // Usage asks the host: every 30 s is plenty.
    if (c.phase === 'Ready' && Date.now() - usageRead > 30000) {
      usageRead = Date.now();
      try {
        const u = await api('GET', `/v1/clusters/${encodeURIComponent(id)}/usage`);
        if (gen === generation) usage.replaceChildren(usageTable(u));
      } catch (err) {
        usage.replaceChildren(el('p', { class: 'error' }, describe(err)));
      }
    } else if (c.phase !== 'Ready') {
      usage.replaceChildren(el('p', { class: 'muted' }, `Usage is read once the cluster is Ready (it is ${c.phase}).`));
    }
    return TRANSITIONAL.includes(c.phase) ? BUSY_MS : IDLE_MS;
  };
  every(refresh);
}

function usageTable(u) {
  const parts = [el('p', { class: 'muted' }, `Read ${u.at} from ${u.driver} on ${u.host}.`)];
  if (u.processes && u.processes.length) {
    parts.push(el('table', { id: 'usage-processes' },
      el('thead', {}, el('tr', {}, ['Process', 'PID', 'CPU seconds', 'Memory'].map((h) => el('th', {}, h)))),
      el('tbody', {}, u.processes.map((p) => el('tr', {},
        el('td', {}, p.name), el('td', { class: 'num' }, p.pid),
        el('td', { class: 'num' }, p.cpu_seconds.toFixed(1)), el('td', { class: 'num' }, bytes(p.memory_bytes)))),
      el('tr', {}, el('th', {}, 'Total'), el('td', {}),
        el('td', { class: 'num' }, u.cpu_seconds === null ? '—' : u.cpu_seconds.toFixed(1)),
        el('td', { class: 'num' }, bytes(u.memory_bytes))))));
  }
  if (u.namespace) {
    const n = u.namespace;
    parts.push(el('dl', { class: 'facts', id: 'usage-namespace' },
      el('dt', {}, 'Namespace'), el('dd', {}, n.name),
      el('dt', {}, 'Pods'), el('dd', {}, `${n.running_pods} running of ${n.pods}`),
      el('dt', {}, 'CPU requests'), el('dd', {}, `${n.cpu_requests_millicores}m`),
      el('dt', {}, 'Memory requests'), el('dd', {}, bytes(n.memory_requests_bytes)),
      el('dt', {}, 'CPU used'), el('dd', {}, n.cpu_used_millicores === null ? '—' : `${n.cpu_used_millicores}m`),
      el('dt', {}, 'Memory used'), el('dd', {}, bytes(n.memory_used_bytes)),
      n.quotas.map((q) => [el('dt', {}, `${q.quota}: ${q.resource}`), el('dd', {}, `${q.used} of ${q.hard}`)])));
  }
  if (u.objects) {
    parts.push(el('table', { id: 'usage-objects' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Objects'), el('th', {}, 'Count'))),
      el('tbody', {}, Object.entries(u.objects).map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', { class: 'num' }, v))))));
  }
  for (const note of u.notes || []) parts.push(el('p', { class: 'muted' }, note));
  return el('div', {}, parts);
}

async function download(c) {
  try {
    const response = await api('POST', `/v1/clusters/${encodeURIComponent(c.id)}/kubeconfig`, { body: {}, accept: 'application/yaml', raw: true });
    const blob = new Blob([await response.text()], { type: 'application/yaml' });
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: `${c.name}.kubeconfig.yaml` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    flash(`Kubeconfig for ${c.name} downloaded; its token expires in about an hour.`, 'info');
  } catch (err) {
    flash(`Kubeconfig refused: ${describe(err)}`);
  }
}

function ttlForm(c) {
  const ttl = el('input', { id: 'ttl', name: 'ttl', placeholder: c.ttl, size: 6, required: true, 'aria-label': 'New TTL, counted from creation' });
  const form = el('form', { id: 'ttl-form', class: 'inline' }, ttl, el('button', { type: 'submit' }, 'Set TTL'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const u = await api('PUT', `/v1/clusters/${encodeURIComponent(c.id)}`, { body: { ttl: ttl.value.trim() } });
      flash(`${u.name}: TTL ${u.ttl}, expires ${until(u.expires_at)}`, 'info');
      route();
    } catch (err) {
      flash(`TTL refused: ${describe(err)}`);
    }
  });
  return form;
}

async function keepalive(c) {
  try {
    await api('POST', `/v1/clusters/${encodeURIComponent(c.id)}/keepalive`);
    flash(`${c.name}: idle clock reset`, 'info');
    route();
  } catch (err) {
    flash(`Keep-alive refused: ${describe(err)}`);
  }
}

async function remove(c) {
  if (!window.confirm(`Delete cluster ${c.name} (${c.id})? Its workloads and data go with it.`)) return;
  try {
    await api('DELETE', `/v1/clusters/${encodeURIComponent(c.id)}`);
    flash(`Deleting ${c.name}`, 'info');
    route();
  } catch (err) {
    flash(`Delete refused: ${describe(err)}`);
  }
}

// ---- hosts and audit ----------------------------------------------------------------------

function hostsView() {
  const gen = generation;
  const body = el('tbody', { id: 'hosts' });
  const status = el('p', { class: 'muted' }, 'Loading…');
  show(el('h1', {}, 'Hosts'), status, el('table', {},
    el('thead', {}, el('tr', {}, ['Host', 'Reachable', 'Clusters', 'Capacity', 'Use', 'Labels', 'Message'].map((h) => el('th', {}, h)))), body));
  const refresh = async () => {
    try {
      const list = await api('GET', '/v1/hosts');
      if (gen !== generation) return IDLE_MS;
      status.textContent = `${list.items.length} host${list.items.length === 1 ? '' : 's'}`;
      body.replaceChildren(...list.items.map((h) => el('tr', { 'data-host': h.name },
        el('td', {}, h.name), el('td', {}, h.reachable ? 'yes' : 'no'),
        el('td', { class: 'num' }, h.clusters),
        el('td', { class: 'num' }, h.max_clusters === null || h.max_clusters === undefined ? 'no limit' : h.max_clusters),
        el('td', {}, h.used_percent === null || h.used_percent === undefined ? '—'
          : [el('meter', { min: 0, max: 100, high: 80, optimum: 0, value: h.used_percent }), ` ${Math.round(h.used_percent)}%`]),
        el('td', {}, Object.entries(h.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ')),
        el('td', {}, h.message || ''))));
    } catch (err) {
      if (gen === generation) status.textContent = describe(err);
    }
    return IDLE_MS;
  };
  every(refresh);
}

function auditView(params) {
  const gen = generation;
  const fields = {};
  const input = (key, placeholder) => {
    fields[key] = el('input', { id: `audit-${key}`, placeholder, value: params.get(key) || '' });
    return el('label', {}, key, fields[key]);
  };
  const decision = el('select', { id: 'audit-decision' }, el('option', { value: '' }, 'any'),
    ['allowed', 'denied', 'unauthenticated', 'throttled', 'failed'].map((d) => el('option', { value: d, selected: params.get('decision') === d }, d)));
  const form = el('form', { class: 'toolbar', id: 'audit-filters' },
    input('principal', 'token:t-…'), input('action', 'DELETE /v1/clusters*'), input('cluster', 'c-…'),
    el('label', {}, 'decision', decision), el('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, f] of Object.entries(fields)) if (f.value.trim()) q.set(k, f.value.trim());
    if (decision.value) q.set('decision', decision.value);
    location.hash = `#/audit${q.toString() ? `?${q}` : ''}`;
  });
  const body = el('tbody', { id: 'audit' });
  const status = el('p', { class: 'muted', id: 'audit-status' }, 'Loading…');
  const more = el('button', { type: 'button', id: 'audit-more', hidden: true }, 'Older');
  show(el('h1', {}, 'Audit log'), form, status, el('table', {},
    el('thead', {}, el('tr', {}, ['#', 'Time', 'Principal', 'Action', 'Target', 'Decision', 'Status', 'Message'].map((h) => el('th', {}, h)))), body), more);
  const search = new URLSearchParams({ limit: '100' });
  for (const k of ['principal', 'action', 'cluster', 'decision']) if (params.get(k)) search.set(k, params.get(k));
  const load = async (cursor) => {
    const q = new URLSearchParams(search);
    if (cursor) q.set('cursor', cursor);
    try {
      const page = await api('GET', `/v1/audit?${q}`);
      if (gen !== generation) return;
      body.append(...page.items.map((r) => el('tr', { 'data-decision': r.decision || '' },
        el('td', { class: 'num' }, r.seq), el('td', {}, r.time), el('td', { class: 'mono' }, r.principal || '—'),
        el('td', { class: 'mono' }, r.action), el('td', { class: 'mono' }, r.target || ''),
        el('td', {}, r.decision || r.stage), el('td', {}, r.status || ''), el('td', {}, (r.messages || []).join('; ')))));
      status.textContent = `${body.children.length} records, newest first`;
      more.hidden = !page.next_cursor;
      more.onclick = () => load(page.next_cursor);
    } catch (err) {
      if (gen === generation) status.replaceChildren(el('span', { class: 'error', id: 'audit-error' }, describe(err)));
    }
  };
  load(null);
}

// ---- routing ------------------------------------------------------------------------------

async function route() {
  generation += 1;
  if (timer) { clearTimeout(timer); timer = null; }
  const hash = location.hash || '#/clusters';
  const path = hash.slice(1).split('?')[0].split('/').filter(Boolean);
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    if (path[0] && path[0] !== 'signin') returnTo = hash;
    me = null;
    renderChrome();
    signInView();
    if (pendingFlash) { flash(pendingFlash); pendingFlash = null; }
    return;
  }
  if (!me) {
    try {
      me = await api('GET', '/v1/whoami');
    } catch (err) {
      signOut(`Sign in again: ${describe(err)}`);
      return;
    }
  }
  if (path[0] === 'signin') { location.hash = '#/clusters'; return; }
  renderChrome();
  const params = query(hash);
  switch (path[0]) {
    case 'hosts': hostsView(); break;
    case 'audit': auditView(params); break;
    case 'clusters':
      if (path[1]) clusterView(decodeURIComponent(path[1]));
      else clustersView(params);
      break;
    default: location.hash = '#/clusters';
  }
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('sign-out').addEventListener('click', () => { flash(null); signOut(); });
  window.addEventListener('hashchange', () => { flash(pendingFlash); pendingFlash = null; route(); });
  route();
});
