import { expect, test } from '@grafana/plugin-e2e';
import { request as playwrightRequest } from '@playwright/test';

import { PLUGIN_ID, RULEPERF_TOKEN, RULEPERF_URL, skipWithoutGrafana } from './env';

skipWithoutGrafana();

/** The provisioned ruleperf data source's uid (provisioning/datasources). */
const DATASOURCE_UID = process.env.RULEPERF_DATASOURCE_UID ?? 'ruleperf';
const INVALIDATE = `/api/datasources/proxy/uid/${DATASOURCE_UID}/api/v1/invalidate`;

test('Save & test says the API token was rejected when it is wrong', async ({ createDataSourceConfigPage, page }) => {
  test.skip(!RULEPERF_TOKEN, 'RULEPERF_TOKEN is not set: the service may run without a token');
  const configPage = await createDataSourceConfigPage({ type: PLUGIN_ID });
  await page.getByRole('textbox', { name: /^Service URL/ }).fill(RULEPERF_URL);
  await page.getByRole('textbox', { name: /^API token/ }).fill('not-the-token');
  // Grafana's data proxy answers the service's 401 with 400 "Authentication to data source failed".
  await configPage.saveAndTest({ path: '/readyz' });
  await expect(configPage).toHaveAlert('error', { hasText: /The API token was rejected/ });
});

test('a Viewer cannot flush the cache through Grafana; Grafana refuses before the service sees it', async ({
  request,
  baseURL,
}) => {
  // The test session is Grafana's admin: create a Viewer (idempotent: an existing one is reused).
  const login = 'ruleperf-e2e-viewer';
  const password = 'ruleperf-e2e-viewer-password';
  const created = await request.post('/api/admin/users', { data: { name: login, login, password } });
  expect([200, 412]).toContain(created.status());

  const viewer = await playwrightRequest.newContext({ baseURL, httpCredentials: { username: login, password } });
  try {
    const refused = await viewer.post(INVALIDATE, { data: { all: true } });
    expect(refused.status()).toBe(403);
    expect(await refused.json()).toEqual(expect.objectContaining({ message: 'plugin proxy route access denied' }));
    // Queries stay open to the Viewer.
    const now = Date.now();
    const query = await viewer.post(`/api/datasources/proxy/uid/${DATASOURCE_UID}/api/v1/query`, {
      data: { range: { from: now - 3_600_000, to: now }, queries: [{ refId: 'A', kind: 'stats' }] },
    });
    expect(query.status()).toBe(200);
  } finally {
    await viewer.dispose();
  }

  // The admin gets through Grafana; the service then decides by the token the route sends
  // (the admin token when the data source has one; a service with API_ADMIN_TOKEN refuses the read token).
  const admin = await request.post(INVALIDATE, { data: { all: true } });
  expect(await admin.text()).not.toContain('plugin proxy route access denied');
});
