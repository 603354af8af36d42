/**
 * Serves the harness page and plays Grafana's server-side parts for it:
 *  - /dist/*    the built plugin (dist/module.js is loaded as Grafana loads it, through AMD)
 *  - /settings  "saves" the data source: jsonData plus secureJsonData, kept server-side
 *  - /api/datasources/proxy/uid/ruleperf/*
 *               Grafana's data proxy (data-proxy.ts) over dist/plugin.json's routes, with
 *               the saved settings and the signed-in user's role (`signInAs`)
 * So the browser test exercises the built plugin.json's routes the way Grafana applies them.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

import * as esbuild from 'esbuild';

import { createDataProxy, type GrafanaUser, type OrgRole, type PluginRoute } from './data-proxy';

const ROOT = path.resolve(__dirname, '..', '..');
const DIST = path.join(ROOT, 'dist');
// Grafana serves @grafana/ui's icons from /public/build/img/icons; the package ships them.
const ICONS = path.join(ROOT, 'node_modules', '@grafana', 'ui', 'dist', 'public', 'img', 'icons');

export const DATASOURCE_UID = 'ruleperf';

export interface SavedSettings {
  jsonData: Record<string, string>;
  secureJsonData: Record<string, string>;
}

export interface HarnessServer {
  url: string;
  settings: SavedSettings;
  /** The Grafana user the page acts as from now on (the harness starts as Admin, who configures). */
  signInAs(role: OrgRole): void;
  close(): Promise<void>;
}

async function bundleHarness(): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [path.join(__dirname, 'harness', 'harness.tsx')],
    bundle: true,
    write: false,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    minify: true,
    jsx: 'automatic',
    logLevel: 'error',
    define: { 'process.env.NODE_ENV': '"production"', global: 'window' },
    loader: {
      '.svg': 'dataurl',
      '.png': 'dataurl',
      '.woff': 'empty',
      '.woff2': 'empty',
      '.ttf': 'empty',
      '.css': 'empty',
    },
  });
  return result.outputFiles[0].text;
}

export async function startHarnessServer(): Promise<HarnessServer> {
  if (!fs.existsSync(path.join(DIST, 'module.js'))) {
    throw new Error('dist/module.js is missing: run `npm run build` first');
  }
  const routes: PluginRoute[] = JSON.parse(fs.readFileSync(path.join(DIST, 'plugin.json'), 'utf8')).routes ?? [];
  const harnessJs = await bundleHarness();
  const settings: SavedSettings = { jsonData: {}, secureJsonData: {} };
  let user: GrafanaUser = { login: 'admin', role: 'Admin' };
  const dataProxy = createDataProxy({
    routes,
    datasource: () => ({ uid: DATASOURCE_UID, jsonData: settings.jsonData, secureJsonData: settings.secureJsonData }),
    user: () => user,
  });

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://harness');
    const body = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
    });

    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(
        '<!doctype html><html><head><meta charset="utf-8"><title>ruleperf plugin harness</title>' +
          // @grafana/runtime reads its config from the boot data Grafana inlines into every page.
          '<script>window.grafanaBootData = { settings: {}, user: {}, navTree: [] };</script></head>' +
          '<body><div id="root"></div><script src="/harness.js"></script></body></html>'
      );
      return;
    }
    if (url.pathname === '/harness.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(harnessJs);
      return;
    }
    const statics: Array<[string, string]> = [
      ['/dist/', DIST],
      ['/public/build/img/icons/', ICONS],
    ];
    const mount = statics.find(([prefix]) => url.pathname.startsWith(prefix));
    if (mount) {
      const [prefix, dir] = mount;
      const file = path.join(dir, path.normalize(url.pathname.slice(prefix.length)));
      if (!file.startsWith(dir) || !fs.existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      const type = file.endsWith('.js')
        ? 'text/javascript'
        : file.endsWith('.svg')
          ? 'image/svg+xml'
          : 'application/octet-stream';
      res.writeHead(200, { 'content-type': type });
      res.end(fs.readFileSync(file));
      return;
    }
    if (url.pathname === '/settings' && req.method === 'POST') {
      // Like Grafana: secrets are write-only and kept unless replaced or reset.
      const saved = JSON.parse(body.toString() || '{}') as {
        jsonData?: Record<string, string>;
        secureJsonData?: Record<string, string>;
        secureJsonFields?: Record<string, boolean>;
      };
      settings.jsonData = saved.jsonData ?? {};
      for (const [key, value] of Object.entries(saved.secureJsonData ?? {})) {
        if (value) {
          settings.secureJsonData[key] = value;
        } else if (saved.secureJsonFields?.[key] === false) {
          delete settings.secureJsonData[key];
        }
      }
      const secureJsonFields = Object.fromEntries(Object.keys(settings.secureJsonData).map((k) => [k, true]));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonData: settings.jsonData, secureJsonFields }));
      return;
    }
    if (await dataProxy(req, res, body)) {
      return;
    }
    res.writeHead(404).end();
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    settings,
    signInAs(role) {
      user = { login: role.toLowerCase(), role };
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
