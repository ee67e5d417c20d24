// The web dashboard in a real browser: Playwright (playwright-core, pinned by scripts/ui-tools.sh)
// drives Debian's Chromium against a real `vcm server` that tests/ui.rs started. Each step
// leaves a screenshot in $VCM_ARTIFACTS; the last line printed is a JSON summary with timings.
//
// Environment: VCM_URL, VCM_ADMIN_TOKEN, VCM_VIEWER_TOKEN, VCM_TEAM_CLUSTER (a Ready cluster of
// the viewer's team), VCM_ARTIFACTS, VCM_UI_TOOLS (node_modules), VCM_CHROMIUM.
'use strict';

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { chromium } = require(path.join(process.env.VCM_UI_TOOLS, 'playwright-core'));

const url = process.env.VCM_URL;
const artifacts = process.env.VCM_ARTIFACTS;
const READY_MS = 180_000;
const timings = {};
const problems = []; // console errors (CSP violations among them) and uncaught exceptions

async function step(name, fn) {
  const started = Date.now();
  process.stdout.write(`ui: ${name} …\n`);
  await fn();
  timings[name] = Date.now() - started;
  process.stdout.write(`ui: ${name} ok in ${timings[name]} ms\n`);
}

async function shot(page, name) {
  // What a page shows is what the server said, never a leaked `null` or `undefined`.
  assert.doesNotMatch(await page.textContent('body'), /\b(null|undefined|NaN)\b/, `${name}: a missing value shows`);
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
}

function watch(page, who) {
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${who} console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${who} page error: ${e.message}`));
}

async function signIn(page, token) {
  await page.goto(`${url}/ui`);
  await page.waitForSelector('#signin');
  await page.fill('#token', token);
  await page.click('#signin button[type=submit]');
}

(async () => {
  const started = Date.now();
  const browser = await chromium.launch({
    executablePath: process.env.VCM_CHROMIUM,
    headless: true,
    // NB: the sandbox needs user namespaces that a root CI container may not have, and a
    // container's /dev/shm may be too small for Chromium's shared memory.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  try {
    const admin = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    const page = await admin.newPage();
    watch(page, 'admin');
    page.setDefaultTimeout(30_000);

    await step('a wrong token is refused', async () => {
      await signIn(page, 'vcm_not_a_token');
      await page.waitForSelector('#flash:not([hidden])');
      const text = await page.textContent('#flash');
      assert.match(text, /Sign-in refused: 401/);
      assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token is not kept');
      await shot(page, '01-sign-in-refused');
      problems.length = 0; // the 401 itself shows as a console error
    });

    await step('the admin signs in', async () => {
      await page.fill('#token', process.env.VCM_ADMIN_TOKEN);
      await page.click('#signin button[type=submit]');
      await page.waitForSelector('#me:not([hidden])');
      assert.match(await page.textContent('#me-role'), /admin/);
      assert.ok(await page.isVisible('#nav-audit'), 'an admin sees the audit view');
      assert.ok(!page.url().includes('vcm_'), 'the token is never in the URL');
      const stored = await page.evaluate(() => [sessionStorage.getItem('vcm.token'), localStorage.length]);
      assert.equal(stored[0], process.env.VCM_ADMIN_TOKEN);
      assert.equal(stored[1], 0, 'nothing in local storage');
    });

    await step('a cluster is created and turns Ready', async () => {
      await page.fill('#create-name', 'ui-e2e');
      await page.fill('#create-ttl', '30m');
      await page.click('#create button[type=submit]');
      await page.waitForSelector('tr[data-cluster="ui-e2e"]');
      await shot(page, '02-clusters-creating');
      await page.waitForSelector('tr[data-cluster="ui-e2e"] [data-phase="Ready"]', { timeout: READY_MS });
      await shot(page, '03-clusters-ready');
    });

    await step('filters narrow the list', async () => {
      await page.selectOption('#filter-phase', 'Deleted');
      await page.waitForFunction(() => document.location.hash.includes('phase=Deleted'));
      await page.waitForSelector('#clusters-status:has-text("0 clusters")');
      assert.equal(await page.locator('tr[data-cluster="ui-e2e"]').count(), 0);
      await page.selectOption('#filter-phase', 'Ready');
      await page.waitForSelector('tr[data-cluster="ui-e2e"]');
    });

    await step('the TTL is changed from the cluster page, and a bad one is refused', async () => {
      await page.click('tr[data-cluster="ui-e2e"] a');
      await page.waitForSelector('#ttl-form');
      await page.fill('#ttl', 'soon');
      await page.click('#ttl-form button[type=submit]');
      await page.waitForSelector('#flash:has-text("TTL refused: 422")');
      // The browser logs the refused request itself; that one is expected.
      problems.splice(0, problems.length, ...problems.filter((p) => !p.includes('status of 422')));
      await page.fill('#ttl', '2h');
      await page.click('#ttl-form button[type=submit]');
      await page.waitForSelector('#flash:has-text("TTL 2h")');
      await page.waitForSelector('dd[data-fact="TTL"]:text-is("2h")');
      await page.click('nav a[data-nav=clusters]');
      await page.waitForSelector('tr[data-cluster="ui-e2e"]');
    });

    let kubeconfig;
    await step('the cluster page shows events and usage, and gives a kubeconfig', async () => {
      await page.click('tr[data-cluster="ui-e2e"] a');
      await page.waitForSelector('#download-kubeconfig');
      await page.waitForFunction(() => document.querySelectorAll('#events tr').length >= 2);
      await page.waitForSelector('#usage-processes');
      assert.match(await page.textContent('#usage-processes'), /kube-apiserver/);
      await shot(page, '04-cluster');
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.click('#download-kubeconfig'),
      ]);
      assert.equal(download.suggestedFilename(), 'ui-e2e.kubeconfig.yaml');
      kubeconfig = path.join(artifacts, 'ui-e2e.kubeconfig.yaml');
      await download.saveAs(kubeconfig);
      // The real kubectl with what the browser saved.
      const out = execFileSync('kubectl', ['--kubeconfig', kubeconfig, 'get', 'namespace', 'default', '-o', 'name'], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(out.trim(), 'namespace/default');
    });

    await step('hosts show capacity and use', async () => {
      await page.click('nav a[data-nav=hosts]');
      await page.waitForSelector('tr[data-host]');
      await shot(page, '05-hosts');
    });

    await step('the audit view lists what happened', async () => {
      await page.click('nav a[data-nav=audit]');
      await page.waitForSelector('#audit tr');
      await page.waitForSelector('#audit tr:has-text("POST /v1/clusters/{id}/kubeconfig")');
      await shot(page, '06-audit');
    });

    await step('a viewer reads but may not change, and the server refuses anyway', async () => {
      const viewerContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const viewer = await viewerContext.newPage();
      watch(viewer, 'viewer');
      viewer.setDefaultTimeout(30_000);
      // Arriving signed out at a cluster's page (a commit status links there): sign-in leads
      // back to it.
      const team = process.env.VCM_TEAM_CLUSTER;
      await viewer.goto(`${url}/ui/#/clusters/${team}`);
      await viewer.waitForSelector('#signin');
      await viewer.fill('#token', process.env.VCM_VIEWER_TOKEN);
      await viewer.click('#signin button[type=submit]');
      await viewer.waitForSelector('#read-only');
      assert.match(await viewer.textContent('h1'), new RegExp(team));
      assert.match(await viewer.textContent('#me-role'), /viewer/);
      assert.ok(!(await viewer.isVisible('#nav-audit')), 'a viewer has no audit link');
      assert.equal(await viewer.locator('#delete-cluster').count(), 0, 'no delete button');
      assert.equal(await viewer.locator('#download-kubeconfig').count(), 0, 'no kubeconfig button');
      await shot(viewer, '07-viewer-cluster');
      await viewer.click('nav a[data-nav=clusters]');
      await viewer.waitForSelector(`tr[data-cluster="${team}"]`);
      assert.equal(await viewer.locator('tr[data-cluster="ui-e2e"]').count(), 0, 'not its team\'s');
      assert.equal(await viewer.locator('#create').count(), 0, 'a viewer has no create form');
      await viewer.click(`tr[data-cluster="${team}"] a`);
      await viewer.waitForSelector('#read-only');
      // What the page would not offer, asked of the server directly with the viewer's token.
      const id = (await viewer.textContent('dd[data-fact="Id"]')).trim();
      const refused = await viewer.evaluate(async (cluster) => {
        const r = await fetch(`/v1/clusters/${cluster}`, {
          method: 'DELETE',
          headers: { Authorization: `Bearer ${sessionStorage.getItem('vcm.token')}` },
        });
        return { status: r.status, body: await r.json() };
      }, id);
      assert.equal(refused.status, 403, JSON.stringify(refused));
      assert.equal(refused.body.error.code, 'forbidden', JSON.stringify(refused));
      await viewer.goto(`${url}/ui/#/audit`);
      await viewer.waitForSelector('#audit-error');
      assert.match(await viewer.textContent('#audit-error'), /^403 forbidden: /);
      await shot(viewer, '08-viewer-denied');
      problems.splice(0, problems.length, ...problems.filter((p) => !p.startsWith('viewer console: Failed to load resource: the server responded with a status of 403')));
      await viewerContext.close();
    });

    await step('the admin deletes the cluster', async () => {
      await page.click('nav a[data-nav=clusters]');
      await page.click('tr[data-cluster="ui-e2e"] a');
      await page.waitForSelector('#delete-cluster');
      page.once('dialog', (d) => d.accept());
      await page.click('#delete-cluster');
      await page.waitForSelector('h1 [data-phase="Deleted"]', { timeout: READY_MS });
      assert.equal(await page.locator('#delete-cluster').count(), 0, 'nothing left to delete');
      await shot(page, '09-deleted');
    });

    await step('signing out forgets the token', async () => {
      await page.click('#sign-out');
      await page.waitForSelector('#signin');
      assert.equal(await page.evaluate(() => sessionStorage.getItem('vcm.token')), null);
    });

    assert.deepEqual(problems, [], 'no console error, CSP violation or uncaught exception');
  } finally {
    await browser.close();
  }
  const total = Date.now() - started;
  process.stdout.write(`${JSON.stringify({ total_ms: total, steps: timings })}\n`);
})().catch((e) => {
  process.stderr.write(`ui: FAILED: ${e.stack || e}\n`);
  if (problems.length) process.stderr.write(`ui: page problems: ${JSON.stringify(problems, null, 1)}\n`);
  process.exit(1);
});
