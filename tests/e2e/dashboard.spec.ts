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

test('the provisioned Rule Performance dashboard renders every panel without errors', async ({ gotoDashboardPage }) => {
  const dashboard = ruleperfDashboard();
  test.skip(!dashboard, 'provisioning/dashboards has no "Rule Performance" dashboard yet');
  const page = await gotoDashboardPage({ uid: dashboard!.uid });
  const titled = dashboard!.panels.filter((p) => p.title && p.type !== 'row');
  expect(titled.length).toBeGreaterThan(0);
  for (const panel of titled) {
    await expect(page.getPanelByTitle(panel.title!).locator).toBeVisible();
  }
  await expect(page).toHavePanelErrors(0);
});
