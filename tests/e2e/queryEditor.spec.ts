import { expect, test } from '@grafana/plugin-e2e';

import { PROVISIONED_NAME, skipWithoutGrafana } from './env';

skipWithoutGrafana();

test('a time series query in panel edit returns data and shows which rollup answered', async ({
  panelEditPage,
  page,
}) => {
  await panelEditPage.datasource.set(PROVISIONED_NAME);
  await panelEditPage.setVisualization('Table');
  const row = panelEditPage.getQueryEditorRow('A');
  await row.getByLabel('Query type', { exact: true }).click();
  await page.getByLabel('Select options menu').getByText('Time series', { exact: true }).click();

  // The plugin calls the service through the data proxy, not /api/ds/query.
  await expect(
    panelEditPage.refreshPanel({ waitForResponsePredicateCallback: (r) => r.url().includes('/api/v1/query') })
  ).toBeOK();
  await expect(panelEditPage.panel.fieldNames).toContainText(['p95ExecutionTimeMs']);
  await expect(row.getByRole('status', { name: 'Last run' })).toContainText(/Answered from the .*rollup/);
});
