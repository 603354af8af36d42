/**
 * Provisions a provisioning/ directory the way Grafana's code does, into an in-memory
 * Grafana, and reports what a real one would log or refuse. Written from
 * grafana/grafana pkg/services/provisioning:
 *
 *  - order (provisioning.go): datasources, plugins, alerting, then dashboards;
 *  - a missing sub-directory is logged as an error ("Failed to read plugin provisioning
 *    files from directory", "can't read … provisioning files from directory");
 *  - alerting (alerting/rules_provisioner.go getOrCreateFolderByTitle): a group's `folder`
 *    is a title path; each title is looked up under its parent and created with a
 *    generated UID when missing;
 *  - dashboards (dashboards/file_reader.go getOrCreateFolder): a provider's folder is
 *    looked up by `folderUid` when set, otherwise by title, and created (with that UID,
 *    or a generated one) when missing; the uid "general" is refused;
 *  - folders (folder service): two folders with the same title under one parent are
 *    refused ("a folder with the same name already exists");
 *  - dashboards: UIDs unique, titles unique within a folder.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { parse } from 'yaml';

export interface Folder {
  uid: string;
  title: string;
  parentUid: string;
  /** Which provisioner created it. */
  createdBy: 'alerting' | 'dashboards';
}

export interface GrafanaState {
  folders: Folder[];
  datasources: Array<{ uid: string; name: string; type: string }>;
  /** Alert rule uid → folder uid. */
  alertRules: Map<string, { title: string; folderUid: string }>;
  /** Dashboard uid → folder uid. */
  dashboards: Map<string, { title: string; folderUid: string }>;
}

export interface ProvisioningLog {
  errors: string[];
  steps: string[];
}

export const ORDER = ['datasources', 'plugins', 'alerting', 'dashboards'] as const;
export type Step = (typeof ORDER)[number];

export function emptyGrafana(): GrafanaState {
  return { folders: [], datasources: [], alertRules: new Map(), dashboards: new Map() };
}

let generated = 0;
/** util.GenerateShortUID stand-in: a fresh, random-looking uid. */
const generateUid = () => `gen${(++generated).toString(36).padStart(6, '0')}`;

function yamlDocs(dir: string): Array<{ file: string; doc: any }> {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((file) => ({ file, doc: parse(readFileSync(join(dir, file), 'utf8')) ?? {} }));
}

/** folderimpl.SplitFullpath: "a/b" → ["a", "b"]; "\/" escapes a slash inside a title. */
export function splitFullpath(fullpath: string): string[] {
  return fullpath
    .split(/(?<!\\)\//)
    .map((t) => t.replace(/\\\//g, '/').trim())
    .filter(Boolean);
}

function createFolder(state: GrafanaState, log: ProvisioningLog, folder: Folder): Folder | undefined {
  if (folder.uid === 'general') {
    log.errors.push(`dashboards: folder uid "general" is reserved`);
    return undefined;
  }
  const sameTitle = state.folders.find((f) => f.title === folder.title && f.parentUid === folder.parentUid);
  if (sameTitle) {
    log.errors.push(
      `${folder.createdBy}: cannot create folder "${folder.title}" (uid ${folder.uid}): a folder with the same name already exists (uid ${sameTitle.uid}, created by ${sameTitle.createdBy})`
    );
    return undefined;
  }
  if (state.folders.some((f) => f.uid === folder.uid)) {
    log.errors.push(`${folder.createdBy}: folder uid ${folder.uid} already exists`);
    return undefined;
  }
  state.folders.push(folder);
  return folder;
}

function provisionDatasources(dir: string, state: GrafanaState, log: ProvisioningLog) {
  for (const { file, doc } of yamlDocs(dir)) {
    for (const ds of doc.datasources ?? []) {
      const clash = state.datasources.find((d) => d.uid === ds.uid && d.name !== ds.name);
      if (clash) {
        log.errors.push(`datasources/${file}: uid ${ds.uid} is already used by "${clash.name}"`);
        continue;
      }
      if (!state.datasources.some((d) => d.uid === ds.uid)) {
        state.datasources.push({ uid: ds.uid, name: ds.name, type: ds.type });
      }
    }
  }
}

function provisionPlugins(dir: string, log: ProvisioningLog) {
  for (const { file, doc } of yamlDocs(dir)) {
    for (const [i, app] of (doc.apps ?? []).entries()) {
      if (!app.type) {
        log.errors.push(`plugins/${file}: app item ${i + 1} in configuration doesn't contain required field type`);
      }
    }
  }
}

function provisionAlerting(dir: string, state: GrafanaState, log: ProvisioningLog) {
  const known = new Set([...state.datasources.map((d) => d.uid), '__expr__']);
  for (const { file, doc } of yamlDocs(dir)) {
    for (const group of doc.groups ?? []) {
      const titles = splitFullpath(String(group.folder ?? ''));
      if (titles.length === 0) {
        log.errors.push(`alerting/${file}: rule group ${group.name} has no folder set`);
        continue;
      }
      let parentUid = '';
      for (const title of titles) {
        const found = state.folders.find((f) => f.title === title && f.parentUid === parentUid);
        const folder =
          found ?? createFolder(state, log, { uid: generateUid(), title, parentUid, createdBy: 'alerting' });
        if (!folder) {
          parentUid = '';
          break;
        }
        parentUid = folder.uid;
      }
      if (!parentUid) {
        continue;
      }
      for (const rule of group.rules ?? []) {
        const sameTitle = [...state.alertRules.entries()].find(
          ([uid, r]) => uid !== rule.uid && r.title === rule.title && r.folderUid === parentUid
        );
        if (sameTitle) {
          log.errors.push(
            `alerting/${file}: rule "${rule.title}" has the title of rule ${sameTitle[0]} in the same folder`
          );
        }
        for (const query of rule.data ?? []) {
          if (!known.has(query.datasourceUid)) {
            log.errors.push(
              `alerting/${file}: rule "${rule.title}" queries unknown data source ${query.datasourceUid}`
            );
          }
        }
        state.alertRules.set(rule.uid, { title: rule.title, folderUid: parentUid });
      }
    }
  }
}

function provisionDashboards(dir: string, state: GrafanaState, log: ProvisioningLog, root: string) {
  for (const { file, doc } of yamlDocs(dir)) {
    for (const provider of doc.providers ?? []) {
      const title = String(provider.folder ?? '');
      const uid = provider.folderUid ? String(provider.folderUid) : '';
      let folder: Folder | undefined;
      if (title === '' && uid === '') {
        folder = undefined; // the General folder
      } else if (uid) {
        folder = state.folders.find((f) => f.uid === uid);
        if (folder && folder.title !== title) {
          log.errors.push(
            `dashboards/${file}: provider ${provider.name} names folder "${title}" but uid ${uid} is the folder "${folder.title}"`
          );
        }
      } else {
        folder = state.folders.find((f) => f.title === title && f.parentUid === '');
      }
      if (!folder && (title || uid)) {
        folder = createFolder(state, log, { uid: uid || generateUid(), title, parentUid: '', createdBy: 'dashboards' });
        if (!folder) {
          log.errors.push(
            `dashboards/${file}: provider ${provider.name}: failed to get or create folder; its dashboards are not loaded`
          );
          continue;
        }
      }
      // Provisioning paths are container paths; read them from the repository's provisioning/.
      const path = String(provider.options?.path ?? '').replace(/^\/etc\/grafana\/provisioning/, root);
      if (!existsSync(path)) {
        log.errors.push(
          `dashboards/${file}: provider ${provider.name}: cannot read directory ${provider.options?.path}`
        );
        continue;
      }
      for (const json of readdirSync(path)
        .filter((f) => f.endsWith('.json'))
        .sort()) {
        const dashboard = JSON.parse(readFileSync(join(path, json), 'utf8'));
        const folderUid = folder?.uid ?? '';
        const other = state.dashboards.get(dashboard.uid);
        if (other && other.folderUid !== folderUid) {
          log.errors.push(`dashboards: uid ${dashboard.uid} (${json}) is already provisioned in another folder`);
          continue;
        }
        const sameTitle = [...state.dashboards.entries()].find(
          ([u, d]) => u !== dashboard.uid && d.title === dashboard.title && d.folderUid === folderUid
        );
        if (sameTitle) {
          log.errors.push(
            `dashboards: "${dashboard.title}" (${json}) has the title of dashboard ${sameTitle[0]} in the same folder`
          );
          continue;
        }
        state.dashboards.set(dashboard.uid, { title: dashboard.title, folderUid });
      }
    }
  }
}

/**
 * Runs the provisioners over `root` (a provisioning/ directory) in `order`, on `state`
 * (a fresh Grafana by default; pass the previous state to model a restart).
 */
export function provision(
  root: string,
  state: GrafanaState = emptyGrafana(),
  order: readonly Step[] = ORDER
): { state: GrafanaState; log: ProvisioningLog } {
  const log: ProvisioningLog = { errors: [], steps: [] };
  for (const step of order) {
    const dir = join(root, step);
    log.steps.push(step);
    if (!existsSync(dir)) {
      log.errors.push(`${step}: can't read provisioning files from directory ${dir}`);
      continue;
    }
    if (step === 'datasources') {
      provisionDatasources(dir, state, log);
    }
    if (step === 'plugins') {
      provisionPlugins(dir, log);
    }
    if (step === 'alerting') {
      provisionAlerting(dir, state, log);
    }
    if (step === 'dashboards') {
      provisionDashboards(dir, state, log, root);
    }
  }
  return { state, log };
}
