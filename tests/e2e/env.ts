import { test } from '@grafana/plugin-e2e';

export const PLUGIN_ID = 'seed-ruleperf-datasource';
/** The service URL as Grafana's server reaches it. */
export const RULEPERF_URL = process.env.RULEPERF_URL ?? 'http://ruleperf:8080';
export const RULEPERF_TOKEN = process.env.RULEPERF_TOKEN ?? '';
/** The provisioned data source's name (provisioning/datasources). */
export const PROVISIONED_NAME = process.env.RULEPERF_DATASOURCE_NAME ?? 'ruleperf';

/** Called at the top of each spec file: without a Grafana there is nothing to drive. */
export function skipWithoutGrafana() {
  test.skip(!process.env.GRAFANA_URL, 'GRAFANA_URL is not set: these specs need a Grafana with the plugin loaded');
}
