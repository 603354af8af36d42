import fs from 'node:fs';
import path from 'node:path';

import { expect, test } from '@grafana/plugin-e2e';

import { skipWithoutGrafana } from './env';

skipWithoutGrafana();

/** The provisioned "Rule Performance" dashboard, found by title so its file name may change. */
function ruleperfDashboard(): { uid: string; panels: Array<{ title?: string; type?: string }> } | undefined {
  const dir = path.resolve(__dirname, '..', '..', 'provisioning', 'dashboards');
  if (!fs.existsSync(dir)) {
    return undefined;
  }
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const json = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
    if (json.title === 'Rule Performance') {
      return json;
    }
  }
  return undefined;
}

test('the provisioned Rule Performance dashboard renders every panel without errors', async ({
  gotoDashboardPage,
  page,
}) => {
  const dashboard = ruleperfDashboard();
  test.skip(!dashboard, 'provisioning/dashboards has no "Rule Performance" dashboard yet');
  const dashboardPage = await gotoDashboardPage({ uid: dashboard!.uid });
  const titled = dashboard!.panels.filter((p) => p.title && p.type !== 'row');
  expect(titled.length).toBeGreaterThan(0);
  // Grafana renders panels lazily: bring each into view so that it queries.
  for (const panel of titled) {
    const rendered = dashboardPage.getPanelByTitle(panel.title!);
    await rendered.scrollIntoView();
    await expect(rendered.locator).toBeVisible();
  }
  // The plugin's queries go through the data proxy, so wait for the network, not for /api/ds/query.
  await page.waitForLoadState('networkidle');
  await expect(dashboardPage).toHavePanelErrors(0);
});
