/**
 * @grafana/plugin-e2e specs. They need a Grafana with this plugin loaded (for
 * example the docker-compose stack) and run only when GRAFANA_URL points at it:
 *
 *   GRAFANA_URL=http://localhost:3000 RULEPERF_URL=http://ruleperf:8080 RULEPERF_TOKEN=... npm run e2e
 *
 * RULEPERF_URL is the service URL as Grafana's server reaches it. Playwright's own
 * browser downloads are not used: Chromium comes from CHROMIUM_PATH (default: Debian's).
 */
import { dirname } from 'node:path';

import type { PluginOptions } from '@grafana/plugin-e2e';
import { defineConfig, devices } from '@playwright/test';

const grafanaUrl = process.env.GRAFANA_URL;
const pluginE2eAuth = `${dirname(require.resolve('@grafana/plugin-e2e'))}/auth`;
const launchOptions = { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' };

if (!grafanaUrl) {
  console.log('e2e specs skipped: GRAFANA_URL is not set (no Grafana server can run on this machine)');
}

export default defineConfig<PluginOptions>({
  testDir: '.',
  testMatch: /.*\.spec\.ts$/,
  fullyParallel: false,
  forbidOnly: Boolean(process.env.CI),
  retries: process.env.CI ? 1 : 0,
  reporter: [['list']],
  outputDir: '../../test-results/e2e',
  use: {
    baseURL: grafanaUrl ?? 'http://localhost:3000',
    trace: 'retain-on-failure',
    launchOptions,
  },
  projects: grafanaUrl
    ? [
        // Logs in once as the admin user and stores the session for the specs.
        { name: 'auth', testDir: pluginE2eAuth, testMatch: [/.*\.js/], use: { launchOptions } },
        {
          name: 'chromium',
          use: { ...devices['Desktop Chrome'], launchOptions, storageState: 'playwright/.auth/admin.json' },
          dependencies: ['auth'],
        },
      ]
    : // Without Grafana every spec skips itself (see skipWithoutGrafana) and no browser starts.
      [{ name: 'chromium' }],
});
