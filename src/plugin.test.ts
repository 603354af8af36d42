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

  it('routes /api through the data proxy with the URL from jsonData and a Bearer token from secureJsonData', () => {
    const api = pluginJson.routes.find((r: { path: string }) => r.path === 'api');
    expect(api.url).toBe('{{ .JsonData.serviceUrl }}/api');
    expect(api.headers).toEqual([{ name: 'Authorization', content: 'Bearer {{ .SecureJsonData.apiToken }}' }]);
  });

  it('routes /readyz for "Save & test"', () => {
    const ready = pluginJson.routes.find((r: { path: string }) => r.path === 'readyz');
    expect(ready.url).toBe('{{ .JsonData.serviceUrl }}/readyz');
  });

  it('reads only serviceUrl and apiToken, the keys ConfigEditor writes (ConfigEditor.test.tsx checks that side)', () => {
    const text = JSON.stringify(pluginJson.routes);
    const jsonKeys = [...text.matchAll(/\.JsonData\.(\w+)/g)].map((m) => m[1]);
    const secureKeys = [...text.matchAll(/\.SecureJsonData\.(\w+)/g)].map((m) => m[1]);
    expect(new Set(jsonKeys)).toEqual(new Set(['serviceUrl']));
    expect(new Set(secureKeys)).toEqual(new Set(['apiToken']));
  });

  it('is the single copy: src/plugin.json points at it', () => {
    const linked = path.join(root, 'src', 'plugin.json');
    expect(fs.lstatSync(linked).isSymbolicLink()).toBe(true);
    expect(fs.realpathSync(linked)).toBe(fs.realpathSync(path.join(root, 'plugin.json')));
  });
});
