// plugin.json is read by Grafana before any code runs: a wrong field means the
// plugin does not load, or loads and cannot reach the service.
import fs from 'fs';
import path from 'path';

const root = path.resolve(__dirname, '..');
const pluginJson = JSON.parse(fs.readFileSync(path.join(root, 'plugin.json'), 'utf8'));

describe('plugin.json', () => {
  it('has the id Grafana accepts: <org>-<name>-<type>, lower case', () => {
    expect(pluginJson.id).toBe('seed-ruleperf-datasource');
    expect(pluginJson.id).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*-datasource$/);
  });

  it('is a frontend data source for metrics', () => {
    expect(pluginJson.type).toBe('datasource');
    expect(pluginJson.metrics).toBe(true);
    expect(pluginJson.backend).toBeFalsy();
    expect(typeof pluginJson.name).toBe('string');
  });

  it('has the info block Grafana shows in the catalogue', () => {
    const { info } = pluginJson;
    expect(info.author.name).toBeTruthy();
    expect(info.description.length).toBeGreaterThan(10);
    expect(info.version).toBe('%VERSION%'); // replaced by the build from package.json
    expect(info.updated).toBe('%TODAY%');
    for (const logo of [info.logos.small, info.logos.large]) {
      expect(fs.existsSync(path.join(root, 'src', logo))).toBe(true);
    }
  });

  it('declares the Grafana versions it supports, 12 and later', () => {
    expect(pluginJson.dependencies.grafanaDependency).toBe('>=12.0.0');
  });

  interface Route {
    path: string;
    method?: string;
    url: string;
    reqRole?: string;
    reqAction?: string;
    headers?: Array<{ name: string; content: string }>;
  }
  const routes: Route[] = pluginJson.routes;
  const route = (path: string) => routes.find((r) => r.path === path)!;
  const READ = [{ name: 'Authorization', content: 'Bearer {{ .SecureJsonData.apiToken }}' }];
  const guarded = (r: Route) => Boolean(r.reqRole || r.reqAction);

  it('opens only what the plugin uses to data-source users: queries, variables and readiness', () => {
    const open = routes.filter((r) => !guarded(r)).map((r) => `${r.method} ${r.path}`);
    expect(open.sort()).toEqual(['GET api/v1/variables', 'GET readyz', 'POST api/v1/query']);
    expect(route('api/v1/query').url).toBe('{{ .JsonData.serviceUrl }}/api/v1/query');
    expect(route('api/v1/query').headers).toEqual(READ);
    expect(route('api/v1/variables').url).toBe('{{ .JsonData.serviceUrl }}/api/v1/variables');
    expect(route('api/v1/variables').headers).toEqual(READ);
    // /readyz needs no token, so none is sent.
    expect(route('readyz')).toEqual({ path: 'readyz', method: 'GET', url: '{{ .JsonData.serviceUrl }}/readyz' });
  });

  it('lets only admins invalidate, with the admin token when one is set and the API token otherwise', () => {
    const invalidate = route('api/v1/invalidate');
    expect(invalidate.method).toBe('POST');
    expect(invalidate.reqRole).toBe('Admin');
    // Grafana versions that evaluate reqAction use it instead of reqRole: org admins (and, in Enterprise,
    // whoever may edit this data source) hold datasources:write on it.
    expect(invalidate.reqAction).toBe('datasources:write');
    expect(invalidate.url).toBe('{{ .JsonData.serviceUrl }}/api/v1/invalidate');
    expect(invalidate.headers).toEqual([
      {
        name: 'Authorization',
        content:
          'Bearer {{ if .SecureJsonData.adminToken }}{{ .SecureJsonData.adminToken }}{{ else }}{{ .SecureJsonData.apiToken }}{{ end }}',
      },
    ]);
  });

  it('gives every route one method, so a path is never reachable with a method its guard did not consider', () => {
    for (const r of routes) {
      expect(['GET', 'POST']).toContain(r.method);
    }
  });

  it('lists guarded routes before any open route that would match their paths first', () => {
    // Grafana takes the FIRST route, in plugin.json order, whose method matches and whose
    // path is a prefix of the requested one (ds_proxy.go validateRequest).
    routes.forEach((r, i) => {
      if (!guarded(r)) {
        return;
      }
      for (const earlier of routes.slice(0, i)) {
        const sameMethod = !earlier.method || earlier.method === '*' || earlier.method === r.method;
        if (sameMethod && r.path.startsWith(earlier.path)) {
          expect(`${earlier.path} shadows ${r.path}`).toBe('no open route shadows a guarded one');
        }
      }
    });
  });

  it('reads only serviceUrl, apiToken and adminToken, the keys ConfigEditor writes (ConfigEditor.test.tsx checks that side)', () => {
    const text = JSON.stringify(routes);
    const jsonKeys = [...text.matchAll(/\.JsonData\.(\w+)/g)].map((m) => m[1]);
    const secureKeys = [...text.matchAll(/\.SecureJsonData\.(\w+)/g)].map((m) => m[1]);
    expect(new Set(jsonKeys)).toEqual(new Set(['serviceUrl']));
    expect(new Set(secureKeys)).toEqual(new Set(['apiToken', 'adminToken']));
  });

  it('lists screenshots that exist and are copied into dist/, and links that are absolute URLs', () => {
    const { screenshots, links } = pluginJson.info;
    expect(screenshots.length).toBeGreaterThanOrEqual(2);
    for (const shot of screenshots) {
      expect(shot.name).toBeTruthy();
      // The build copies each screenshot from src/ to the same path in dist/.
      expect(shot.path).not.toMatch(/^\/|\.\./);
      expect(fs.existsSync(path.join(root, 'src', shot.path))).toBe(true);
    }
    for (const link of links) {
      expect(link.name).toBeTruthy();
      expect(link.url).toMatch(/^https:\/\//);
    }
  });

  it("has a README whose images and links stay inside the plugin's folder", () => {
    const readme = fs.readFileSync(path.join(root, 'src', 'README.md'), 'utf8');
    const targets = [...readme.matchAll(/!?\[[^\]]*\]\(([^)\s]+)[^)]*\)/g)].map((m) => m[1]);
    const shipped = [...pluginJson.info.screenshots.map((s: { path: string }) => s.path), 'CHANGELOG.md', 'LICENSE'];
    for (const target of targets.filter((t) => !/^(https:|#)/.test(t))) {
      // Grafana shows dist/README.md on the plugin page: a relative link must name a file the build ships.
      expect(shipped).toContain(target);
    }
    expect(targets.filter((t) => t.startsWith('img/')).sort()).toEqual([
      'img/config-editor.png',
      'img/query-editor.png',
    ]);
  });

  it('is the single copy: src/plugin.json points at it', () => {
    const linked = path.join(root, 'src', 'plugin.json');
    expect(fs.lstatSync(linked).isSymbolicLink()).toBe(true);
    expect(fs.realpathSync(linked)).toBe(fs.realpathSync(path.join(root, 'plugin.json')));
  });
});
