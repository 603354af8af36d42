import { expect, test } from '@grafana/plugin-e2e';

import { PLUGIN_ID, RULEPERF_TOKEN, RULEPERF_URL, skipWithoutGrafana } from './env';

skipWithoutGrafana();

test('Save & test reports the database and cache state of a running service', async ({
  createDataSourceConfigPage,
  page,
}) => {
  const configPage = await createDataSourceConfigPage({ type: PLUGIN_ID });
  await page.getByRole('textbox', { name: /^Service URL/ }).fill(RULEPERF_URL);
  if (RULEPERF_TOKEN) {
    await page.getByRole('textbox', { name: /^API token/ }).fill(RULEPERF_TOKEN);
  }
  // A frontend data source has no /health endpoint: wait for the data proxy call to /readyz.
  await expect(configPage.saveAndTest({ path: '/readyz' })).toBeOK();
  await expect(configPage).toHaveAlert('success', { hasText: /Connected to ruleperf\. Database connected/ });
});

test('Save & test explains an unreachable service', async ({ createDataSourceConfigPage, page }) => {
  const configPage = await createDataSourceConfigPage({ type: PLUGIN_ID });
  await page.getByRole('textbox', { name: /^Service URL/ }).fill('http://127.0.0.1:9');
  await configPage.saveAndTest({ path: '/readyz' });
  await expect(configPage).toHaveAlert('error', { hasText: /could not reach the ruleperf service/ });
});
