/**
 * Real-browser test of the BUILT plugin: Debian's Chromium loads dist/module.js in
 * the harness page (tests/browser/harness), and the test drives the ConfigEditor and
 * QueryEditor against a service through plugin.json's proxy routes.
 *
 *   SERVICE_URL=http://127.0.0.1:8080 SERVICE_TOKEN=... npm run test:browser   (a running ruleperf service)
 *   npm run test:browser                                                        (no SERVICE_URL: the stub in stub-service.ts)
 *
 * It saves a screenshot of the query editor to test-results/browser/query-editor.png, or,
 * with UPDATE_SCREENSHOT=1, to docs/img/query-editor.png for the README.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium, type Browser, type Page } from 'playwright-core';

import { startHarnessServer, type HarnessServer } from './harness-server';
import { startStubService, type StubService } from './stub-service';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The README's picture is refreshed on request only, so ordinary runs leave the work tree clean.
const SCREENSHOT = process.env.UPDATE_SCREENSHOT
  ? path.resolve(__dirname, '..', '..', 'docs', 'img', 'query-editor.png')
  : path.resolve(__dirname, '..', '..', 'test-results', 'browser', 'query-editor.png');
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
  let harness: HarnessServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  before(async () => {
    if (process.env.SERVICE_URL) {
      serviceUrl = process.env.SERVICE_URL.replace(/\/+$/, '');
      token = process.env.SERVICE_TOKEN ?? '';
      console.log(`browser tests use the ruleperf service at ${serviceUrl}`);
    } else {
      stub = await startStubService();
      serviceUrl = stub.url;
      token = stub.token;
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
      assert.match(rejected, /rejected the API token \(HTTP 401\)/);
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

    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.getByRole('region', { name: 'Query editor' }).screenshot({ path: SCREENSHOT });
    assert.ok(fs.statSync(SCREENSHOT).size > 10_000, 'screenshot written');
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
});
