/**
 * provisioning/ as Grafana reads it on start (see grafana-provisioning.ts for what is
 * modelled from Grafana's source): one "ruleperf" folder holding the alert rules and
 * the dashboards, however the provisioners are ordered and on every restart, no
 * directory missing, and no title/UID mismatch between what the two provisioners name.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { stringify } from 'yaml';

import { alertRules, dashboards, PROVISIONING, readYaml } from './files';
import { emptyGrafana, ORDER, provision, splitFullpath } from './grafana-provisioning';

function assertOneRuleperfFolder(state: ReturnType<typeof emptyGrafana>) {
  const folders = state.folders.filter((f) => f.title === 'ruleperf');
  assert.equal(folders.length, 1, `one "ruleperf" folder: ${JSON.stringify(state.folders)}`);
  const [folder] = folders;
  assert.deepEqual(
    [...state.alertRules.values()].map((r) => r.folderUid),
    alertRules().map(() => folder.uid),
    'every alert rule in it'
  );
  assert.deepEqual(
    [...state.dashboards.values()].map((d) => d.folderUid),
    dashboards().map(() => folder.uid),
    'every dashboard in it'
  );
}

test("Grafana's order (datasources, plugins, alerting, dashboards) on a fresh Grafana: one folder, no error", () => {
  const { state, log } = provision(PROVISIONING);
  assert.deepEqual(log.steps, [...ORDER]);
  assert.deepEqual(log.errors, []);
  assertOneRuleperfFolder(state);
  assert.equal(state.folders.length, 1);
  assert.equal(state.folders[0].createdBy, 'alerting', 'the alert rules provisioner, running first, creates it');
});

test('a restart finds the folder again and creates nothing', () => {
  const first = provision(PROVISIONING);
  const again = provision(PROVISIONING, first.state);
  assert.deepEqual(again.log.errors, []);
  assert.equal(again.state.folders.length, 1);
  assertOneRuleperfFolder(again.state);
});

test('dashboards provisioned before alerting (a dashboards reload, another Grafana version) end in the same folder', () => {
  const { state, log } = provision(PROVISIONING, emptyGrafana(), ['datasources', 'plugins', 'dashboards', 'alerting']);
  assert.deepEqual(log.errors, []);
  assertOneRuleperfFolder(state);
  assert.equal(state.folders[0].createdBy, 'dashboards');
});

test('the check fails on the collision it guards against: a folderUid on the dashboards provider', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ruleperf-provisioning-'));
  try {
    cpSync(PROVISIONING, dir, { recursive: true });
    const providers = readYaml(join(PROVISIONING, 'dashboards', 'dashboards.yaml'));
    providers.providers[0].folderUid = 'ruleperf';
    writeFileSync(join(dir, 'dashboards', 'dashboards.yaml'), stringify(providers));
    const { log } = provision(dir);
    assert.ok(
      log.errors.some((e) =>
        /cannot create folder "ruleperf" \(uid ruleperf\): a folder with the same name already exists/.test(e)
      ),
      log.errors.join('\n')
    );
    assert.ok(log.errors.some((e) => /its dashboards are not loaded/.test(e)));

    // And on a UID whose folder has another title.
    providers.providers[0].folder = 'ruleperf dashboards';
    writeFileSync(join(dir, 'dashboards', 'dashboards.yaml'), stringify(providers));
    const first = provision(dir);
    assert.deepEqual(first.log.errors, [], 'two distinct folders are fine');
    providers.providers[0].folder = 'ruleperf';
    writeFileSync(join(dir, 'dashboards', 'dashboards.yaml'), stringify(providers));
    const renamed = provision(dir, first.state);
    assert.ok(
      renamed.log.errors.some((e) =>
        /names folder "ruleperf" but uid ruleperf is the folder "ruleperf dashboards"/.test(e)
      )
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every directory Grafana reads exists, so mounting provisioning/ logs no error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ruleperf-provisioning-'));
  try {
    cpSync(PROVISIONING, dir, { recursive: true });
    rmSync(join(dir, 'plugins'), { recursive: true });
    const { log } = provision(dir);
    assert.deepEqual(log.errors, [`plugins: can't read provisioning files from directory ${join(dir, 'plugins')}`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(provision(PROVISIONING).log.errors, []);
});

test('folder paths split the way Grafana splits them', () => {
  assert.deepEqual(splitFullpath('ruleperf'), ['ruleperf']);
  assert.deepEqual(splitFullpath('ops/ruleperf'), ['ops', 'ruleperf']);
  assert.deepEqual(splitFullpath('a\\/b'), ['a/b']);
});
