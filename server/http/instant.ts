/**
 * The instants a client may send in `range`: epoch milliseconds (number or digit string),
 * an ISO-8601 time, or Grafana's relative time syntax, evaluated in UTC the way Grafana's
 * datemath evaluates it (`now-24h`, `now-7d/d`, `now/d`, `2024-05-01T00:00:00Z||+1d`; a
 * rounded `to` bound goes to the end of its unit, as Grafana's `roundUp` does). Mistakes
 * get a message saying what was wrong and what to send instead.
 */
import { LIMITS } from '../contract';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../query/range';

/** Grafana's fixed-length time units, in ms. */
export const FIXED_UNITS: Record<string, number> = { s: 1000, m: MINUTE_MS, h: HOUR_MS, d: DAY_MS, w: 7 * DAY_MS };
const MONTH_UNITS: Record<string, number> = { M: 1, Q: 3, y: 12 };
/** Grafana's datemath refuses more digits than this in one term. */
const MAX_TERM_DIGITS = 5;

export const INSTANT_FORMS =
  'epoch milliseconds, an ISO-8601 time such as 2024-05-01T00:00:00Z, or a relative time such as now-24h, now-7d/d or now/d (UTC)';

/** ISO-8601 date or date-time, optional fraction and offset. */
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

export type InstantResult = { ms: number } | { error: string };

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

/** 2001-01-01 and 2101-01-01 in epoch ms: a number too large for milliseconds that is a time of this century in a finer unit was sent in it. */
const THIS_CENTURY_MS = [Date.UTC(2001, 0, 1), Date.UTC(2101, 0, 1)] as const;

/** Epoch milliseconds, checked: whole, not before 1970, not past 9999, not evidently seconds or a finer unit. */
function fromNumber(value: number): InstantResult {
  if (!Number.isFinite(value)) {
    return { error: `must be ${INSTANT_FORMS}` };
  }
  // 10- and 11-digit numbers are 1970-01-12..1973-03-03 as milliseconds, but 2001..5138 as
  // seconds: no rule ran in 1972, so the client sent seconds and would get an empty answer.
  // (Seconds with a fraction too: first, as "send the whole milliseconds" would send seconds.)
  if (value >= 1e9 && value < 1e11) {
    const ms = Math.round(value * 1000);
    return { error: `${value} is epoch seconds (${iso(ms)}), but times are epoch milliseconds: send ${ms}` };
  }
  if (!Number.isInteger(value)) {
    // A range is read in whole milliseconds: cut silently, the rows of the cut fraction were
    // counted or not with nothing to say so.
    return {
      error: `${value} is not whole milliseconds: send ${Math.floor(value)} or ${Math.ceil(value)} (times are whole epoch milliseconds)`,
    };
  }
  if (value < 0) {
    return { error: 'must not be before 1970-01-01T00:00:00Z (epoch 0)' };
  }
  // Past 9999 as milliseconds, but this century as micro- or nanoseconds (another clock's unit).
  for (const [unit, per] of [
    ['microseconds', 1e3],
    ['nanoseconds', 1e6],
  ] as const) {
    // Nanoseconds of this century are past 2^53: a double holds them to 256 ns, so the nearest
    // millisecond (flooring one read a hair low gave the millisecond before, 1 time in 8).
    const ms = per === 1e6 ? Math.round(value / per) : Math.floor(value / per);
    if (value > LIMITS.maxInstantMs && ms >= THIS_CENTURY_MS[0] && ms < THIS_CENTURY_MS[1]) {
      return { error: `${value} is epoch ${unit} (${iso(ms)}), but times are epoch milliseconds: send ${ms}` };
    }
  }
  return withinLimits(value);
}

function withinLimits(ms: number): InstantResult {
  if (!Number.isFinite(ms) || ms < 0) {
    return { error: 'must not be before 1970-01-01T00:00:00Z (epoch 0)' };
  }
  if (ms > LIMITS.maxInstantMs) {
    return { error: `must not be after ${iso(LIMITS.maxInstantMs)} (epoch ms ${LIMITS.maxInstantMs})` };
  }
  return { ms };
}

function fromIso(text: string): InstantResult | null {
  const m = ISO.exec(text);
  if (!m) {
    return null;
  }
  // Without an offset the time is UTC (JavaScript alone would read a date-time as local time).
  const offset = m[8]
    ? m[8].toUpperCase() === 'Z'
      ? 'Z'
      : m[8].length === 5
        ? `${m[8].slice(0, 3)}:${m[8].slice(3)}`
        : m[8]
    : 'Z';
  if (m[7] && /[1-9]/.test(m[7].slice(3))) {
    return {
      error: `${JSON.stringify(text)} has a fraction of a millisecond: send at most three digits after the second (times are whole milliseconds)`,
    };
  }
  const fraction = m[7] ? `.${m[7].slice(0, 3).padEnd(3, '0')}` : '';
  // Date.parse rolls a day past the month's end over (February 30 read as March 2): refused instead.
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12) {
    return { error: `${JSON.stringify(text)} is not a valid date: there is no month ${m[2]}` };
  }
  if (day < 1 || day > daysInMonth(year, month - 1)) {
    return { error: `${JSON.stringify(text)} is not a valid date: ${m[1]}-${m[2]} has no day ${m[3]}` };
  }
  const ms = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4] ?? '00'}:${m[5] ?? '00'}:${m[6] ?? '00'}${fraction}${offset}`);
  if (!Number.isFinite(ms)) {
    return { error: `${JSON.stringify(text)} is not a valid date or time` };
  }
  return withinLimits(ms);
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

/** Adds whole months the way moment (Grafana's datemath) does: the day is clamped to the month's last. */
function addMonths(ms: number, months: number): number {
  const d = new Date(ms);
  const total = d.getUTCFullYear() * 12 + d.getUTCMonth() + months;
  const year = Math.floor(total / 12);
  const month = total - year * 12;
  const day = Math.min(d.getUTCDate(), daysInMonth(year, month));
  const date = new Date(ms);
  date.setUTCFullYear(year, month, day);
  return date.getTime();
}

function add(ms: number, n: number, unit: string): number {
  return unit in FIXED_UNITS ? ms + n * FIXED_UNITS[unit] : addMonths(ms, n * MONTH_UNITS[unit]);
}

function startOf(ms: number, unit: string): number {
  const d = new Date(ms);
  switch (unit) {
    case 's':
    case 'm':
    case 'h':
    case 'd':
      return Math.floor(ms / FIXED_UNITS[unit]) * FIXED_UNITS[unit];
    case 'w':
      // Sunday 00:00, as Grafana's default (English) locale starts weeks; 1970-01-04 was a Sunday.
      return Math.floor((ms - 3 * DAY_MS) / FIXED_UNITS.w) * FIXED_UNITS.w + 3 * DAY_MS;
    case 'M':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    case 'Q':
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - (d.getUTCMonth() % 3), 1);
    default:
      return Date.UTC(d.getUTCFullYear(), 0, 1);
  }
}

const RELATIVE_HELP =
  'relative times are now, now-24h, now-7d/d, now/d (terms +N or -N with a unit, /unit rounds; units s m h d w M Q y; UTC)';

/** Applies datemath terms (`-24h`, `/d`, `+1M`…) to `ms`; `roundUp` rounds to the end of the unit (a `to` bound). */
function applyMath(ms: number, math: string, roundUp: boolean, text: string): InstantResult {
  const s = math.replace(/\s/g, '');
  let i = 0;
  let t = ms;
  while (i < s.length) {
    const op = s[i++];
    if (op !== '/' && op !== '+' && op !== '-') {
      return { error: `${JSON.stringify(text)}: expected +, - or / at "${s.slice(i - 1)}"; ${RELATIVE_HELP}` };
    }
    const digits = /^\d*/.exec(s.slice(i))![0];
    if (digits.length > MAX_TERM_DIGITS) {
      return { error: `${JSON.stringify(text)}: at most ${MAX_TERM_DIGITS} digits per term` };
    }
    i += digits.length;
    const n = digits ? Number(digits) : 1;
    const unit = s[i++];
    if (unit === 'f') {
      return { error: `${JSON.stringify(text)}: fiscal units are not supported; ${RELATIVE_HELP}` };
    }
    if (unit === undefined || !(unit in FIXED_UNITS || unit in MONTH_UNITS)) {
      return {
        error: `${JSON.stringify(text)}: ${unit === undefined ? 'a unit is missing' : `unknown unit "${unit}"`}; ${RELATIVE_HELP}`,
      };
    }
    if (op === '/') {
      if (digits && n !== 1) {
        return { error: `${JSON.stringify(text)}: rounding takes no number (write /d, not /${digits}d)` };
      }
      t = roundUp ? add(startOf(t, unit), 1, unit) - 1 : startOf(t, unit);
    } else {
      t = add(t, op === '+' ? n : -n, unit);
    }
    if (!Number.isFinite(t) || Math.abs(t) > 8.64e15) {
      return { error: `${JSON.stringify(text)} is outside the representable dates` };
    }
  }
  return withinLimits(t);
}

/**
 * Resolves one bound of `range`. `bound` decides how rounding works (`to` rounds up, as in
 * Grafana); `now` is the request's instant, so both bounds use the same one.
 */
export function parseInstant(value: number | string, bound: 'from' | 'to', now: number): InstantResult {
  if (typeof value === 'number') {
    return fromNumber(value);
  }
  // Digits, as a number would be sent (a fraction gets the number's "not whole milliseconds").
  if (/^\d+(\.\d+)?$/.test(value)) {
    return fromNumber(Number(value));
  }
  if (value.startsWith('now')) {
    return applyMath(now, value.slice(3), bound === 'to', value);
  }
  const anchor = value.indexOf('||');
  if (anchor >= 0) {
    const base = fromIso(value.slice(0, anchor));
    if (!base) {
      return { error: `${JSON.stringify(value)}: the time before "||" must be ISO-8601, such as 2024-05-01T00:00:00Z` };
    }
    return 'error' in base ? base : applyMath(base.ms, value.slice(anchor + 2), bound === 'to', value);
  }
  return fromIso(value) ?? { error: `${JSON.stringify(value.slice(0, 64))} is not a time: send ${INSTANT_FORMS}` };
}
