/**
 * Every provisioned dashboard against @grafana/schema's `Dashboard` type, checked by the
 * TypeScript compiler: each file becomes `export const d = <its JSON> satisfies
 * AsJson<Dashboard>`, so a missing required field (a link without `tooltip`), a wrong type
 * or an unknown key (object literals get excess-property checks) is a compile error.
 * AsJson only turns the schema's TypeScript string enums (FieldColorModeId, ThresholdsMode,
 * MappingType, …) into the strings JSON holds. Plus the current schemaVersion, so Grafana
 * does not migrate the files on every load.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import ts from 'typescript';

import { dashboards, PROVISIONING, ROOT } from './files';

/** The dashboard schemaVersion of Grafana 12.2+ (and @grafana/schema 13.2's migrations). */
const CURRENT_SCHEMA_VERSION = 42;

// A string enum E becomes `${E}`, the union of its values; everything else keeps its shape.
const AS_JSON = `type AsJson<T> = 0 extends 1 & T ? T
  : T extends string ? (string extends T ? string : \`\${T}\`)
  : T extends Array<infer U> ? Array<AsJson<U>>
  : T extends object ? { [K in keyof T]: AsJson<T[K]> }
  : T;`;

/** Compiles `{name: json}` as typed dashboards; returns the diagnostics as text, per file. */
function checkAgainstSchema(files: Record<string, string>): Record<string, string[]> {
  const dir = join(ROOT, 'tests', 'provisioning', '.schema-check');
  const sources = new Map(
    Object.entries(files).map(([name, json]) => [
      join(dir, `${name}.ts`),
      `import type { Dashboard } from '@grafana/schema';\n${AS_JSON}\nexport const d = ${json.trim()} satisfies AsJson<Dashboard>;\n`,
    ])
  );
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (file, language, ...rest) =>
    sources.has(file)
      ? ts.createSourceFile(file, sources.get(file)!, language)
      : getSourceFile(file, language, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (file) => sources.has(file) || fileExists(file);
  const readFile = host.readFile.bind(host);
  host.readFile = (file) => sources.get(file) ?? readFile(file);
  const program = ts.createProgram([...sources.keys()], options, host);
  const out: Record<string, string[]> = Object.fromEntries(Object.keys(files).map((n) => [n, []]));
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const file = diagnostic.file?.fileName ?? '';
    const name = Object.keys(files).find((n) => file === join(dir, `${n}.ts`));
    const text = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    if (name) {
      out[name].push(text);
    } else {
      throw new Error(`the schema check itself does not compile: ${text}`);
    }
  }
  return out;
}

test('every provisioned dashboard is a @grafana/schema Dashboard at the current schemaVersion', () => {
  const all = dashboards();
  assert.ok(all.length >= 2);
  const files = Object.fromEntries(
    all.map((d) => [d.uid, readFileSync(join(PROVISIONING, 'dashboards', d.file), 'utf8')])
  );
  assert.deepEqual(checkAgainstSchema(files), Object.fromEntries(all.map((d) => [d.uid, []])));
  for (const d of all) {
    assert.equal((d as unknown as { schemaVersion: number }).schemaVersion, CURRENT_SCHEMA_VERSION, d.file);
  }
});

test('the schema check fails on the mistakes it is there for', () => {
  const [d] = dashboards();
  const base = JSON.parse(readFileSync(join(PROVISIONING, 'dashboards', d.file), 'utf8'));
  const broken = {
    linkWithoutTooltip: { ...base, links: [{ ...base.links[0], tooltip: undefined }] },
    wrongType: { ...base, graphTooltip: 'shared' },
    unknownKey: { ...base, schemaVersoin: 42 },
    unknownPanelKey: { ...base, panels: [{ ...base.panels[0], titel: 'x' }] },
    wrongEnumValue: {
      ...base,
      panels: [{ ...base.panels[0], fieldConfig: { defaults: { color: { mode: 'rainbow' } }, overrides: [] } }],
    },
  };
  const result = checkAgainstSchema(
    Object.fromEntries(
      Object.entries(broken).map(([n, v]) => [n, JSON.stringify(v, (_k, x) => (x === undefined ? undefined : x))])
    )
  );
  assert.match(result.linkWithoutTooltip.join('\n'), /tooltip/);
  assert.match(result.wrongType.join('\n'), /graphTooltip|DashboardCursorSync|not assignable/);
  assert.match(result.unknownKey.join('\n'), /schemaVersoin/);
  assert.match(result.unknownPanelKey.join('\n'), /titel/);
  assert.match(result.wrongEnumValue.join('\n'), /rainbow/);
});

test('dashboard links are complete: title, tooltip, type, url and the link options', () => {
  for (const d of dashboards()) {
    const links = (d as unknown as { links: Array<Record<string, unknown>> }).links;
    assert.ok(links.length >= 1, d.title);
    for (const link of links) {
      for (const key of [
        'title',
        'tooltip',
        'type',
        'url',
        'icon',
        'asDropdown',
        'includeVars',
        'keepTime',
        'tags',
        'targetBlank',
      ]) {
        assert.ok(key in link, `${d.title}: link ${link.title} has ${key}`);
      }
      assert.ok(String(link.tooltip).length > 10, `${d.title}: link ${link.title} says where it goes`);
    }
  }
});
