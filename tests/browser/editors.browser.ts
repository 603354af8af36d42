/**
 * Real-browser test of the BUILT plugin: Debian's Chromium loads dist/module.js in
 * the harness page (tests/browser/harness), and the test drives the ConfigEditor,
 * QueryEditor and a dashboard variable against a service through an emulator of
 * Grafana's data proxy (data-proxy.ts) applying dist/plugin.json's routes, as a
 * Grafana Viewer, Editor or Admin.
 *
 *   SERVICE_URL=http://127.0.0.1:8080 SERVICE_TOKEN=... [SERVICE_ADMIN_TOKEN=...] npm run test:browser
 *   npm run test:browser            (no SERVICE_URL: the stub in stub-service.ts)
 *
 * It saves screenshots of both editors to test-results/browser/, or, with
 * UPDATE_SCREENSHOT=1, to src/img/ for the plugin's README and plugin.json.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium, type Browser, type Page } from 'playwright-core';

import { DATASOURCE_UID, startHarnessServer, type HarnessServer } from './harness-server';
import { OVERDUE_NOTICE, STALE_NOTICE, startStubService, type StubService } from './stub-service';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The README's pictures are refreshed on request only, so ordinary runs leave the work tree clean.
const SCREENSHOTS = process.env.UPDATE_SCREENSHOT
  ? path.resolve(__dirname, '..', '..', 'src', 'img')
  : path.resolve(__dirname, '..', '..', 'test-results', 'browser');
const skipReason = fs.existsSync(CHROMIUM)
  ? undefined
  : `Chromium not found at ${CHROMIUM}: install Debian's package (apt-get install chromium) or set CHROMIUM_PATH`;
if (skipReason) {
  console.log(`browser tests skipped: ${skipReason}`);
}

describe('plugin editors in Chromium', { skip: skipReason, timeout: 180_000 }, () => {
  let stub: StubService | undefined;
  let serviceUrl: string;
  let token: string;
  let adminToken: string | undefined;
  let harness: HarnessServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    if (process.env.SERVICE_URL) {
      serviceUrl = process.env.SERVICE_URL.replace(/\/+$/, '');
      token = process.env.SERVICE_TOKEN ?? '';
      adminToken = process.env.SERVICE_ADMIN_TOKEN;
      console.log(`browser tests use the ruleperf service at ${serviceUrl}`);
    } else {
      stub = await startStubService();
      serviceUrl = stub.url;
      token = stub.token;
      adminToken = stub.adminToken;
      console.log('SERVICE_URL is not set: browser tests use the stub service in tests/browser/stub-service.ts');
    }
    harness = await startHarnessServer();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(harness.url);
  });

  after(async () => {
    await browser?.close();
    await harness?.close();
    await stub?.close();
  });

  // The alert after Save & test also mentions "API token", so the fields are found by role and name.
  const urlField = () => page.getByRole('textbox', { name: /^Service URL/ });
  const tokenField = () => page.getByRole('textbox', { name: /^API token/ });
  const adminTokenField = () => page.getByRole('textbox', { name: /^Admin token/ });

  async function screenshot(region: string, file: string) {
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    const target = path.join(SCREENSHOTS, file);
    await page.getByRole('region', { name: region }).screenshot({ path: target });
    assert.ok(fs.statSync(target).size > 10_000, `${file} written`);
  }

  /** POST /api/v1/invalidate through the data proxy from the page, as a user (or a script in their session) would. */
  async function invalidateAllFromThePage(): Promise<{ status: number; body: string }> {
    return page.evaluate(async (uid) => {
      const res = await fetch(`/api/datasources/proxy/uid/${uid}/api/v1/invalidate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ all: true }),
      });
      return { status: res.status, body: await res.text() };
    }, DATASOURCE_UID);
  }

  /** Opens a Grafana Select by its label and picks the option with exactly this text. */
  async function choose(label: string, option: string) {
    await page.getByLabel(label, { exact: true }).click();
    await page.getByLabel('Select options menu').getByText(option, { exact: true }).click();
  }

  async function saveAndTest(): Promise<string> {
    await page.getByRole('button', { name: 'Save & test' }).click();
    return (await page.getByTestId('test-result').textContent()) ?? '';
  }

  test('the built module loads through AMD and renders both editors', async () => {
    // The contract reaches the bundle only as types: zod must not be in it.
    const moduleJs = fs.readFileSync(path.resolve(__dirname, '..', '..', 'dist', 'module.js'), 'utf8');
    assert.doesNotMatch(moduleJs, /ZodError|invalid_type_error/);
    await urlField().waitFor();
    await page.getByLabel('Query type', { exact: true }).waitFor();
    assert.deepEqual(pageErrors, []);
  });

  test('Save & test rejects a wrong token, and passes after Reset and the right token', async (t) => {
    await urlField().fill(`${serviceUrl}/`);
    await urlField().blur();
    assert.equal(await urlField().inputValue(), serviceUrl, 'trailing slash dropped');

    if (token) {
      await tokenField().fill('not-the-token');
      const rejected = await saveAndTest();
      // The service's 401 reaches the plugin as Grafana's 400 "Authentication to data source failed".
      assert.match(rejected, /^The API token was rejected by the ruleperf service/);
      assert.match(rejected, /reset the API token, enter the service's API_TOKEN, and click Save & test/);
      // Saved: the secret is now write-only and shown as configured.
      assert.equal(await tokenField().inputValue(), 'configured');
      await page.getByRole('button', { name: 'Reset' }).click();
      await tokenField().fill(token);
    } else {
      t.diagnostic('SERVICE_TOKEN not set: the wrong-token case is not exercised');
    }
    const message = await saveAndTest();
    assert.match(message, /^Connected to ruleperf\. Database connected/);
    assert.match(message, /Redis cache is up\.|Redis cache is degraded|Caching is off/);
    if (stub) {
      assert.equal(stub.authorizations.at(-1), `Bearer ${stub.token}`, 'the route adds the saved token');
    }
    await screenshot('Data source settings', 'config-editor.png');
  });

  test('the query editor offers service values and dashboard variables, runs, and shows rollup and cache', async () => {
    // Rule options come from /api/v1/variables/rules through the proxy route.
    await page.getByLabel('Rule', { exact: true }).click();
    const menu = page.getByLabel('Select options menu');
    await menu.getByText('$rule', { exact: true }).waitFor();
    await menu.getByText('$category', { exact: true }).waitFor();
    const serviceOptions = (await menu.locator('[role="option"]').allTextContents()).filter((o) => !o.startsWith('$'));
    assert.ok(serviceOptions.length > 0, 'rules listed by the service');
    const ruleName = stub ? 'Port scan' : serviceOptions[0];
    await menu.getByText(ruleName, { exact: true }).first().click();
    await page.keyboard.press('Escape');

    await choose('Category', '$category');
    await choose('Query type', 'Time series');
    await choose('Metrics', 'p95 time (ms)');
    await choose('Metrics', 'Error rate');
    await page.keyboard.press('Escape');

    await page.getByRole('button', { name: 'Run query' }).click();
    await page.getByTestId('result-frame').first().waitFor();
    const status = page.getByRole('status', { name: 'Last run' });
    assert.match((await status.textContent()) ?? '', /^Answered from the .*rollup.* · cache /);

    if (stub) {
      const sent = stub.queries.at(-1)!;
      assert.deepEqual(sent.queries, [
        {
          refId: 'A',
          kind: 'timeseries',
          granularity: 'auto',
          ruleId: 'r-102',
          // $category is set to "All" on the harness dashboard: no category filter is sent.
          metrics: ['p95ExecutionTimeMs', 'errorRate'],
        },
      ]);
      assert.match((await status.textContent()) ?? '', /cache miss/);
      await page.getByRole('button', { name: 'Run query' }).click();
      await page.getByText(/· cache hit/).waitFor();
    }
    const header = await page.getByTestId('result-frame').first().locator('th').allTextContents();
    assert.ok(header.includes('p95ExecutionTimeMs') || header.some((h) => /p95/i.test(h)), `fields: ${header}`);
    // The time column came as steps (compactTime) and was written out by the plugin before Grafana read
    // the frame: hours apart, as the buckets are (left as sent, the cells would all be one instant).
    const times = await page.getByTestId('result-frame').first().locator('tbody tr td:first-child').allTextContents();
    assert.equal(times.length, 3, `rows: ${times}`);
    const instants = times.map((t) => Date.parse(t.replace(' ', 'T')));
    const steps = instants.slice(1).map((t, i) => t - instants[i]);
    assert.ok(steps[0] > 0 && steps[1] === steps[0], `time cells: ${times}`);
    if (stub) {
      assert.equal(steps[0], 3_600_000, `the stub's buckets are hours: ${times}`);
      assert.equal(stub.queries.at(-1)!.compactTime, true, 'the plugin asks for compact time columns');
    }

    await screenshot('Query editor', 'query-editor.png');
  });

  test("the service's notices reach the panel header, and the last-run line says what the answer covers", async (t) => {
    if (!stub) {
      return t.skip('needs the stub service, which can be told to serve stale answers while a refresh is overdue');
    }
    stub.stale = true;
    stub.refreshOverdue = true;
    try {
      await page.getByRole('button', { name: 'Run query' }).click();
      const status = page.getByRole('status', { name: 'Last run' });
      await page.getByText(/stale cache entry, refreshing in the background/).waitFor();
      // The harness asks for the last 24 hours up to now; the stub answers whole hours, as the service does today.
      assert.match((await status.textContent()) ?? '', / · covers .* to .*, the panel asked for .* to .*$/);
      const header = page.getByLabel('Panel header');
      const notices = header.getByRole('note');
      await notices.first().waitFor();
      const shown = await notices.evaluateAll((els) =>
        els.map((e) => [e.getAttribute('data-severity'), e.getAttribute('aria-label')])
      );
      // Grafana shows one notice per severity; both warnings are in it, each text unchanged.
      assert.deepEqual(
        shown.map(([severity]) => severity),
        ['warning', 'info']
      );
      assert.equal(shown[0][1], `${STALE_NOTICE} ${OVERDUE_NOTICE}`);
      assert.match(shown[1][1] ?? '', /^The answer covers .* \(whole hours\), not .* as asked\.$/);
    } finally {
      stub.stale = false;
      stub.refreshOverdue = false;
    }
  });

  test('a dashboard variable lists the service values, and an unknown variable query says what is accepted', async () => {
    const variable = page.getByRole('region', { name: 'Variable query' });
    await variable.getByLabel('Variable query').fill('rules');
    await variable.getByRole('button', { name: 'Run variable query' }).click();
    const values = variable.getByRole('list', { name: 'Variable values' }).getByRole('listitem');
    await values.first().waitFor();
    if (stub) {
      assert.deepEqual(await values.allTextContents(), [
        'Brute force login (r-101)',
        'Port scan (r-102)',
        'Impossible travel (r-103)',
      ]);
    } else {
      assert.ok((await values.count()) > 0, 'rules listed');
    }
    await variable.getByLabel('Variable query').fill('SELECT rules');
    await variable.getByRole('button', { name: 'Run variable query' }).click();
    await variable
      .getByText(/Unknown variable query "SELECT rules"\. Use one of: rules, parsers, categories/)
      .waitFor();
  });

  test('top rules: a limit outside 1..1000 is refused, a valid one is sent', async () => {
    // Clear the filters set above (Backspace removes the last chip, as a user would).
    for (const label of ['Rule', 'Category']) {
      await page.getByLabel(label, { exact: true }).focus();
      await page.keyboard.press('Backspace');
      await page.keyboard.press('Escape');
    }
    await choose('Query type', 'Top rules');
    await page.getByLabel('Limit').fill('5000');
    await page.getByLabel('Limit').blur();
    await page.getByText('Enter a whole number from 1 to 1000.').waitFor();
    await page.getByLabel('Limit').fill('2');
    await page.getByLabel('Limit').press('Enter');
    await page.getByRole('button', { name: 'Run query' }).click();
    const table = page.getByTestId('result-frame').filter({ has: page.locator('th', { hasText: /^ruleId$/ }) });
    await table.waitFor();
    assert.equal(await table.locator('tbody tr').count(), 2, 'two rows for limit 2');
    if (stub) {
      assert.equal(stub.queries.at(-1)!.queries[0].limit, 2);
    }
    assert.deepEqual(pageErrors, []);
  });

  test('roles: a Viewer and an Editor query but cannot invalidate; an Admin invalidates with the admin token', async (t) => {
    for (const role of ['Viewer', 'Editor'] as const) {
      harness.signInAs(role);
      await page.getByRole('button', { name: 'Run query' }).click();
      await page.getByTestId('result-frame').first().waitFor();
      const refused = await invalidateAllFromThePage();
      assert.equal(refused.status, 403, `${role}: ${refused.body}`);
      assert.deepEqual(JSON.parse(refused.body), { message: 'plugin proxy route access denied' });
    }
    if (stub) {
      assert.deepEqual(stub.invalidations, [], 'nothing reached the service');
    }

    harness.signInAs('Admin');
    if (!adminToken) {
      // A service without an admin token accepts the API token the route sends when no admin token is set.
      const res = await invalidateAllFromThePage();
      assert.equal(res.status, 200, res.body);
      return t.diagnostic('SERVICE_ADMIN_TOKEN not set: the admin-token case is not exercised');
    }
    // No admin token stored in Grafana: the route sends the API token, which the service refuses.
    const withReadToken = await invalidateAllFromThePage();
    assert.equal(withReadToken.status, 403, withReadToken.body);
    assert.match(JSON.parse(withReadToken.body).error, /admin token|API_ADMIN_TOKEN|not allowed|forbidden/i);

    await adminTokenField().fill(adminToken);
    assert.match(await saveAndTest(), /^Connected to ruleperf\./);
    assert.equal(await adminTokenField().inputValue(), 'configured');
    const res = await invalidateAllFromThePage();
    assert.equal(res.status, 200, res.body);
    if (stub) {
      assert.deepEqual(stub.invalidations, [{ authorization: `Bearer ${stub.adminToken}`, body: { all: true } }]);
    }
    assert.deepEqual(pageErrors, []);
  });
});
