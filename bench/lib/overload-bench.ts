/**
 * The overload section (issue 15): what one instance does with requests that would cost too
 * much, with the heaviest request it accepts, and with a burst of distinct uncached requests.
 * Figures are client-side (what a user sees) and the service process's resident memory, read
 * from /proc while it works.
 */
import { startServiceProcess, type ServiceProcess } from '../../testkit/service-process';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { post } from '../../testkit/http';
import { summarize, type Summary } from './stats';
import { ms, table } from './report';
import { crashProbe, heaviestAccepted, heaviestValues } from '../../testkit/probes';
import { startFloorServer } from './floor-bench';
import { rssMb } from './proc';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Samples a process's RSS every 20 ms while `work` runs; the peak and the growth over the start. */
async function watchRss<T>(
  pid: number,
  work: () => Promise<T>
): Promise<{ result: T; startMb: number; peakMb: number }> {
  const startMb = rssMb(pid);
  let peakMb = startMb;
  const timer = setInterval(() => (peakMb = Math.max(peakMb, rssMb(pid))), 20);
  try {
    const result = await work();
    peakMb = Math.max(peakMb, rssMb(pid));
    return { result, startMb, peakMb };
  } finally {
    clearInterval(timer);
  }
}

/** Starts bench/lib/prober.mjs and waits for its first probes; stop() returns its times. */
async function startProber(
  url: string,
  body: unknown
): Promise<{ stop(): Promise<{ healthz: number[]; cached: number[] }> }> {
  const child = spawn(process.execPath, [join(__dirname, 'prober.mjs'), url, JSON.stringify(body)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (c) => {
      err += c;
      if (/probing/.test(err)) {
        resolve();
      }
    });
    void exited.then((code) => reject(new Error(`the prober exited (${code}): ${err}`)));
  });
  return {
    async stop() {
      child.stdin.end();
      const code = await exited;
      if (code !== 0) {
        throw new Error(`the prober failed (${code}): ${err}`);
      }
      return JSON.parse(out);
    },
  };
}

export interface OverloadFigures {
  probe: { status: number; client: Summary; rssGrowthMb: number };
  heaviest: {
    days: number;
    status: number;
    clientMs: number;
    bytes: number;
    values: number;
    rssGrowthMb: number;
    peakRssMb: number;
  };
  burst: BurstFigures;
  /** Distinct answers at the top of the value budget (heaviestValues), all at once. */
  heavyBurst: BurstFigures & { bytes: number; values: number };
}

export interface BurstFigures {
  requests: number;
  answered: number;
  busy: number;
  unavailable: number;
  other: number;
  healthz: Summary;
  cached: Summary;
  /** The same probes, in the same run, against a bare Node server answering at once (the machine's floor). */
  floor: { healthz: Summary; cached: Summary };
  peakRssMb: number;
  seconds: number;
}

type Reply = Awaited<ReturnType<typeof post>>;

/**
 * Sends `n` requests at once while another process (another user) asks /healthz and a cached
 * question every 10 ms, of the service and of a bare Node server answering a body of the same
 * size at once: what that one sees is what the burst does to any process here (two cores
 * shared with PostgreSQL and the load generator), so ruleperf's figure reads beside it.
 */
async function burstWithProbes(
  svc: ServiceProcess,
  cachedBody: unknown,
  n: number,
  request: (i: number) => unknown
): Promise<{ figures: BurstFigures; replies: Reply[] }> {
  const cachedBytes = (await post(`${svc.url}/api/v1/query`, cachedBody, false)).bytes;
  const floorServer = await startFloorServer(cachedBytes);
  const prober = await startProber(svc.url, cachedBody);
  const floorProber = await startProber(floorServer.url, cachedBody);
  const started = performance.now();
  const burst = await watchRss(svc.child.pid!, () =>
    Promise.all(
      Array.from({ length: n }, (_, i) =>
        post(`${svc.url}/api/v1/query`, request(i), false).then(
          (r) => r,
          (): Reply => ({ status: 0, body: '', clientMs: 0, serverMs: 0, bytes: 0 })
        )
      )
    )
  );
  const seconds = (performance.now() - started) / 1000;
  const { healthz, cached } = await prober.stop();
  const floor = await floorProber.stop();
  await floorServer.stop();
  const replies = burst.result;
  return {
    replies,
    figures: {
      requests: n,
      answered: replies.filter((r) => r.status === 200).length,
      busy: replies.filter((r) => r.status === 503 && /busy/.test(String(r.body))).length,
      unavailable: replies.filter((r) => /unavailable/.test(String(r.body))).length,
      other: replies.filter((r) => r.status !== 200 && r.status !== 503).length,
      healthz: summarize(healthz),
      cached: summarize(cached),
      floor: { healthz: summarize(floor.healthz), cached: summarize(floor.cached) },
      peakRssMb: burst.peakMb,
      seconds,
    },
  };
}

export async function overloadBench(o: {
  dbUrl: string;
  redisUrl: string;
  prefix: string;
  quick: boolean;
  say: (s?: string) => void;
}): Promise<OverloadFigures> {
  const svc: ServiceProcess = await startServiceProcess({
    DATABASE_URL: o.dbUrl,
    REDIS_URL: o.redisUrl,
    CACHE_PREFIX: o.prefix,
    REFRESH_SCHEDULER: 'off',
    WARM_ON_START: 'false',
  });
  const pid = svc.child.pid!;
  try {
    // Warm the process (first requests compile code paths) so memory growth is the request's own.
    for (let i = 0; i < 20; i++) {
      await post(`${svc.url}/api/v1/query`, {
        range: { from: Date.now() - DAY, to: Date.now() },
        queries: [{ refId: 'A', kind: 'stats' }],
      });
    }

    const probeTimes: number[] = [];
    let probeStatus = 0;
    const probe = await watchRss(pid, async () => {
      for (let i = 0; i < (o.quick ? 5 : 20); i++) {
        const r = await post(`${svc.url}/api/v1/query`, crashProbe());
        probeStatus = r.status;
        probeTimes.push(r.clientMs);
      }
    });

    // The heaviest request accepted: the budget-edge panel over 30 days, or, where the work
    // limit refuses that, over the longest range it accepts (the refusal names its estimate,
    // which grows with the range, so one step from it lands under the limit).
    let days = 30;
    let heaviestStatus = 0;
    let bytes = 0;
    let values = 0;
    let clientMs = 0;
    const heavy = await watchRss(pid, async () => {
      let r = await post(`${svc.url}/api/v1/query`, heaviestAccepted(Date.now(), days), false);
      const lowered = /would take about ([\d.]+) s, more than 60 % of the (\d+) ms statement timeout/;
      for (
        let tries = 0;
        tries < 5 && (r.status === 400 || /took too long/.test(String(r.body)) || lowered.test(String(r.body)));
        tries++
      ) {
        const slow = lowered.exec(String(r.body));
        if (slow) {
          // The service lowered its limit to what this machine merges in time: as many days as fit.
          const fits = (0.6 * Number(slow[2])) / 1000 / Number(slow[1]);
          days = Math.max(1, Math.min(days - 1, Math.floor(days * fits)));
          r = await post(`${svc.url}/api/v1/query`, heaviestAccepted(Date.now(), days), false);
          continue;
        }
        if (r.status !== 400) {
          // Cancelled by the statement timeout on a machine slower than the limit's calibration:
          // the service has lowered its limit from that answer's cost, so asking again names it.
          r = await post(`${svc.url}/api/v1/query`, heaviestAccepted(Date.now(), days), false);
          continue;
        }
        const estimate = /about ([\d,]+) latency-histogram values \(limit ([\d,]+)/.exec(String(r.body));
        if (!estimate) {
          break;
        }
        const [merged, limit] = [estimate[1], estimate[2]].map((s) => Number(s.replace(/,/g, '')));
        days = Math.max(1, Math.min(days - 1, Math.floor((days * limit) / merged)));
        r = await post(`${svc.url}/api/v1/query`, heaviestAccepted(Date.now(), days), false);
      }
      heaviestStatus = r.status;
      clientMs = r.clientMs;
      bytes = Buffer.byteLength(r.body as string);
      const parsed = JSON.parse(r.body as string);
      values = (parsed.results?.A?.frames ?? []).reduce(
        (n: number, f: { data: { values: unknown[][] } }) => n + f.data.values.reduce((k, c) => k + c.length, 0),
        0
      );
    });

    // The burst: distinct uncached month-long questions all at once.
    const cachedBody = {
      range: { from: Date.now() - 30 * DAY, to: Date.now() - DAY },
      queries: [{ refId: 'A', kind: 'stats' }],
    };
    const n = o.quick ? 100 : 300;
    const burstNow = Date.now();
    const { figures: burst } = await burstWithProbes(svc, cachedBody, n, (i) => ({
      range: { from: burstNow - i * 60_000 - 9 * DAY, to: burstNow - i * 60_000 },
      queries: [{ refId: 'A', kind: i % 2 ? 'topRules' : 'errorBreakdown', limit: 10 + (i % 7) }],
    }));
    // The heaviest burst: distinct answers at the top of the value budget, each tens of
    // milliseconds of frames and JSON in the service (issue 18: /healthz p99 during it).
    const heavyN = o.quick ? 12 : 50;
    const heavyNow = Date.now();
    const heaviest = await burstWithProbes(svc, cachedBody, heavyN, (i) => heaviestValues(heavyNow, i * 60_000));
    const sample = heaviest.replies.find((r) => r.status === 200);
    const sampleFrames = sample ? (JSON.parse(String(sample.body)).results?.A?.frames ?? []) : [];
    const figures: OverloadFigures = {
      probe: { status: probeStatus, client: summarize(probeTimes), rssGrowthMb: probe.peakMb - probe.startMb },
      heaviest: {
        days,
        status: heaviestStatus,
        clientMs,
        bytes,
        values,
        rssGrowthMb: heavy.peakMb - heavy.startMb,
        peakRssMb: heavy.peakMb,
      },
      burst,
      heavyBurst: {
        ...heaviest.figures,
        bytes: sample ? Buffer.byteLength(String(sample.body)) : 0,
        values: sampleFrames.reduce(
          (k: number, f: { data: { values: unknown[][] } }) => k + f.data.values.reduce((m, c) => m + c.length, 0),
          0
        ),
      },
    };
    const h = figures.heavyBurst;
    o.say(`\n### Overload: bounded work per request, busy rather than down (one instance, client-side figures)\n`);
    o.say(
      table(
        ['case', 'figure', 'target'],
        [
          [
            'crash probe (400 days, 1 ms interval, 10 grouped series of 12 metrics)',
            `HTTP ${figures.probe.status}, p50 ${ms(figures.probe.client.p50)}, max ${ms(figures.probe.client.max)}, RSS +${figures.probe.rssGrowthMb.toFixed(1)} MB`,
            '400 in < 100 ms, RSS < +50 MB',
          ],
          [
            `heaviest accepted (${days} days hourly, 100 rules + other, 12 metrics)`,
            `HTTP ${heaviestStatus}, ${ms(clientMs)}, ${(bytes / 1e6).toFixed(1)} MB, ${values.toLocaleString('en')} values, RSS +${figures.heaviest.rssGrowthMb.toFixed(0)} MB (peak ${figures.heaviest.peakRssMb.toFixed(0)} MB)`,
            'RSS growth ≤ 256 MB',
          ],
          [
            `${n} concurrent distinct uncached 9-day requests`,
            `${burst.answered} answered, ${burst.busy} busy (503 + Retry-After), ${burst.unavailable} "unavailable", ${burst.other} other, in ${burst.seconds.toFixed(1)} s`,
            '0 "unavailable"',
          ],
          [
            '… /healthz during the burst',
            `p50 ${ms(figures.burst.healthz.p50)}, p99 ${ms(figures.burst.healthz.p99)} (${figures.burst.healthz.n} probes); floor p99 ${ms(figures.burst.floor.healthz.p99)}`,
            'p99 ≤ 50 ms',
          ],
          [
            '… a cached request during the burst',
            `p50 ${ms(figures.burst.cached.p50)}, p99 ${ms(figures.burst.cached.p99)}; floor p50 ${ms(figures.burst.floor.cached.p50)}, p99 ${ms(figures.burst.floor.cached.p99)}`,
            'p99 ≤ 10 ms',
          ],
          ['… peak RSS during the burst', `${figures.burst.peakRssMb.toFixed(0)} MB`, ''],
          [
            `${heavyN} concurrent distinct answers at the value budget's top (90 days of 3-hour points, 100 rules + other, 9 metrics)`,
            `${h.answered} answered (${(h.bytes / 1e6).toFixed(1)} MB, ${h.values.toLocaleString('en')} values each), ${h.busy} busy, ${h.unavailable} "unavailable", ${h.other} other, in ${h.seconds.toFixed(1)} s; peak RSS ${h.peakRssMb.toFixed(0)} MB`,
            '0 "unavailable", 0 other',
          ],
          [
            '… /healthz during it',
            `p50 ${ms(h.healthz.p50)}, p99 ${ms(h.healthz.p99)} (${h.healthz.n} probes); floor p99 ${ms(h.floor.healthz.p99)}`,
            'p99 ≤ 50 ms',
          ],
          [
            '… a cached request during it',
            `p50 ${ms(h.cached.p50)}, p99 ${ms(h.cached.p99)}; floor p50 ${ms(h.floor.cached.p50)}, p99 ${ms(h.floor.cached.p99)}`,
            '',
          ],
        ]
      )
    );
    return figures;
  } finally {
    await svc.stop();
  }
}
